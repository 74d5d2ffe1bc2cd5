import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import Yams

/// `SIGIL_HOME` and what lives in it: `sigil.yaml`, the SQLite database.
struct HomeOptions: ParsableArguments {
    @Option(name: .customLong("home"), help: ArgumentHelp("Sigil's home directory (default: $SIGIL_HOME or ~/.sigil).", valueName: "dir"))
    var home: String?

    var path: String {
        if let home { return home }
        if let env = Console.current.environment["SIGIL_HOME"], !env.isEmpty { return env }
        let user = Console.current.environment["HOME"] ?? NSHomeDirectory()
        return "\(user)/.sigil"
    }
}

/// `sigil.yaml`.
struct SigilConfiguration: Decodable {
    var httpPublicURL: String?
    var httpListen: String?
    var listen: String?
    var publicURL: String?
    var tlsNames: [String]?
    var logFormat: String?
    var logLevel: String?
    var database: String?
    var ocspSigner: String?
    var crlShards: Int?
    var profiles: [String: ProfileOverride]?
    var acme: ACMESettings?
    var discovery: DiscoverySchedule?
    var notifications: NotificationSettings?

    enum CodingKeys: String, CodingKey {
        case httpPublicURL = "http_public_url", httpListen = "http_listen", listen, publicURL = "public_url", tlsNames = "tls_names"
        case logFormat = "log_format", logLevel = "log_level", database, profiles, ocspSigner = "ocsp_signer", crlShards = "crl_shards"
        case acme, discovery, notifications
    }

    static func load(home: String, file: String? = nil) throws -> SigilConfiguration {
        let path = file ?? "\(home)/sigil.yaml"
        guard FileManager.default.fileExists(atPath: path) else {
            if file != nil { throw SigilError.badInput("configuration file \(path) does not exist") }
            return SigilConfiguration()
        }
        do {
            return try YAMLDecoder().decode(SigilConfiguration.self, from: String(decoding: try Files.read(path, what: "configuration"), as: UTF8.self))
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("\(path) is not valid: \(error)")
        }
    }

    func authorityConfiguration() throws -> AuthorityConfiguration {
        var profiles = CertificateProfile.builtIn
        for (name, override) in (self.profiles ?? [:]).sorted(by: { $0.key < $1.key }) {
            profiles[name] = try override.apply(name: name, profiles: profiles)
        }
        let publicURL = httpPublicURL ?? "http://\(httpListen ?? "127.0.0.1:8080")"
        if let shards = crlShards, !(1...1024).contains(shards) { throw SigilError.badInput("crl_shards must be between 1 and 1024") }
        return AuthorityConfiguration(httpPublicURL: publicURL, profiles: profiles, crlShards: crlShards ?? 1)
    }
}

/// An open home: the store and the CA over it. Close it when done.
struct Workspace {
    let home: String
    let store: any Store
    let authority: CertificateAuthority

    static func open(_ options: HomeOptions, create: Bool = true, configuration: SigilConfiguration? = nil, databasePath: String? = nil) async throws -> Workspace {
        let home = options.path
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: home, isDirectory: &isDirectory) {
            guard create else { throw SigilError.badInput("\(home) does not exist; run `sigil ca init` first") }
            do {
                try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SigilError(.io, "cannot create \(home): \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw SigilError.badInput("\(home) is not a directory")
        }
        let settings = try configuration ?? SigilConfiguration.load(home: home)
        let authorityConfiguration = try settings.authorityConfiguration()
        let store = try await openStore(databaseLocation(home: home, flag: databasePath, file: settings.database))
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        return Workspace(home: home, store: store, authority: CertificateAuthority(store: store, configuration: authorityConfiguration))
    }

    func close() async {
        try? await store.close()
    }

    /// The database to use: the flag, else $SIGIL_DATABASE, else sigil.yaml's `database`, else SIGIL_HOME/sigil.db.
    static func databaseLocation(home: String, flag: String?, file: String?) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = Console.current.environment["SIGIL_DATABASE"], !env.isEmpty { return env }
        if let file, !file.isEmpty { return file }
        return "\(home)/sigil.db"
    }

    /// Opens (not migrates) the store a location names: a SQLite path or sqlite:// URL, or postgres://….
    static func openStore(_ location: String, mustExist: Bool = false) async throws -> any Store {
        let url: DatabaseURL
        do {
            url = try DatabaseURL.parse(location)
        } catch let error as StoreError {
            throw SigilError.badInput(error.message)
        }
        if mustExist, case .sqlite(let path) = url, !FileManager.default.fileExists(atPath: path) {
            throw SigilError.badInput("there is no SQLite database at \(path)")
        }
        do {
            return try await url.open()
        } catch let error as StoreError {
            throw SigilError(.io, error.message)
        }
    }

    /// Runs `body` and closes the workspace whatever happens.
    static func with<T>(_ options: HomeOptions, create: Bool = true, databasePath: String? = nil, _ body: (Workspace) async throws -> T) async throws -> T {
        let workspace = try await open(options, create: create, databasePath: databasePath)
        do {
            let result = try await body(workspace)
            await workspace.close()
            return result
        } catch {
            await workspace.close()
            throw error
        }
    }
}

/// Who the audit trail names for a command-line action.
var commandLineActor: String {
    "cli:\(Console.current.environment["USER"] ?? Console.current.environment["LOGNAME"] ?? "uid\(getuid())")"
}

extension PassphraseSource {
    /// A CA passphrase: given, or asked at a terminal (twice when `confirm`).
    /// CA keys are never stored unencrypted, so there is no way around it.
    func caPassphrase(for name: String, confirm: Bool) throws -> [UInt8] {
        if let given = try read() {
            guard !confirm || given.count >= NewKeyProtection.minimumPassphraseLength else {
                throw SigilError.badInput("the passphrase is too short: use at least \(NewKeyProtection.minimumPassphraseLength) characters")
            }
            return given
        }
        guard Console.current.isInteractive else {
            throw SigilError.badInput("CA '\(name)' needs a passphrase: give --passphrase-file FILE or --passphrase-env VAR")
        }
        let first = try Terminal.readSecret(prompt: "Passphrase for CA '\(name)': ")
        if confirm {
            let second = try Terminal.readSecret(prompt: "Repeat the passphrase: ")
            guard first == second else { throw SigilError.badInput("the passphrases do not match") }
            guard first.count >= NewKeyProtection.minimumPassphraseLength else {
                throw SigilError.badInput("the passphrase is too short: use at least \(NewKeyProtection.minimumPassphraseLength) characters")
            }
        }
        return first
    }
}

/// A command-line duration (`30d`, `12h`, `2w`; a bare number is days, as in `--days`).
func parseDuration(_ text: String, what: String = "duration") throws -> TimeInterval {
    try DurationText.parse(text, what: what, bare: .days)
}

