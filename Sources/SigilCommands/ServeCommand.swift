import ArgumentParser
import Foundation
import Logging
import SigilACME
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import X509
import Yams

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the CA as a service: REST API, ACME and the dashboard over HTTPS; CA certificates, CRLs and OCSP over HTTP.",
        discussion: """
            On a fresh SIGIL_HOME it creates the SQLite database, a root and an intermediate CA, \
            and an admin token, printed once on standard output as `admin token: TOKEN`. Without \
            --passphrase-file/--passphrase-env the CA passphrase is generated into \
            SIGIL_HOME/ca-passphrase (mode 0600). Settings come from sigil.yaml, then SIGIL_* \
            environment variables (SIGIL_LISTEN, SIGIL_HTTP_LISTEN, SIGIL_HTTP_PUBLIC_URL, \
            SIGIL_TLS_NAMES, SIGIL_OCSP_SIGNER, SIGIL_LOG_FORMAT, SIGIL_LOG_LEVEL, SIGIL_PUBLIC_URL, SIGIL_DATABASE), then flags; \
            each overrides the one before. The HTTPS listener also serves the dashboard at / (sign in with a token) and \
            ACME at /acme/acme/directory (the acme: section of sigil.yaml; External Account Binding keys from \
            `sigil acme eab create`). SIGTERM finishes in-flight requests and closes the database.
            """
    )

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("HTTPS listener (default 127.0.0.1:8443).", valueName: "host:port")) var listen: String?
    @Option(name: .customLong("http-listen"), help: ArgumentHelp("Plain HTTP listener for relying parties (default 127.0.0.1:8080).", valueName: "host:port"))
    var httpListen: String?
    @Option(name: .customLong("public-url"), help: ArgumentHelp("The HTTPS base URL clients use (ACME URLs are built from it; nodes behind one load balancer share it).", valueName: "url")) var publicURL: String?
    @Option(name: .customLong("http-public-url"), help: ArgumentHelp("The HTTP base URL written into certificates.", valueName: "url"))
    var httpPublicURL: String?
    @Option(name: .customLong("tls-name"), help: ArgumentHelp("A name for the server's own certificate. Repeatable.", valueName: "name"))
    var tlsNames: [String] = []
    @Option(help: ArgumentHelp("The database: a SQLite path (default SIGIL_HOME/sigil.db) or postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=… shared by several nodes ($SIGIL_DATABASE, sigil.yaml `database`).", valueName: "url")) var database: String?
    @Option(name: .customLong("config"), help: ArgumentHelp("A configuration file (default SIGIL_HOME/sigil.yaml).", valueName: "file"))
    var config: String?
    @Option(name: .customLong("ocsp-signer"), help: ArgumentHelp("Who signs OCSP responses: ca (the issuing CA) or delegated (an ocsp-signing certificate).", valueName: "mode"))
    var ocspSigner: String?
    @Option(name: .customLong("log-format"), help: ArgumentHelp("text or json.", valueName: "format")) var logFormat: String?
    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error.", valueName: "level")) var logLevel: String?
    @OptionGroup var passphrase: PassphraseSource

    func run() async throws {
        let env = Console.current.environment
        let homePath = home.path
        try FileManager.default.createDirectory(atPath: homePath, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let lock = try InstanceLock(path: "\(homePath)/serve.lock")
        defer { lock.release() }

        let file = try SigilConfiguration.load(home: homePath, file: config)
        func setting(_ flag: String?, _ variable: String, _ fromFile: String?, _ fallback: String) -> String {
            flag ?? env[variable].flatMap { $0.isEmpty ? nil : $0 } ?? fromFile ?? fallback
        }
        let listenAddress = try ListenAddress(parsing: setting(listen, "SIGIL_LISTEN", file.listen, "127.0.0.1:8443"))
        let httpAddress = try ListenAddress(parsing: setting(httpListen, "SIGIL_HTTP_LISTEN", file.httpListen, "127.0.0.1:8080"))
        let format = setting(logFormat, "SIGIL_LOG_FORMAT", file.logFormat, "text")
        let level = Logger.Level(rawValue: setting(logLevel, "SIGIL_LOG_LEVEL", file.logLevel, "info")) ?? .info
        guard ["text", "json"].contains(format) else { throw SigilError.badInput("log format must be text or json") }
        guard let ocspMode = OCSPResponder.SignerMode(rawValue: setting(ocspSigner, "SIGIL_OCSP_SIGNER", file.ocspSigner, "ca")) else {
            throw SigilError.badInput("the OCSP signer must be ca or delegated")
        }
        var names = tlsNames
        if names.isEmpty, let fromEnv = env["SIGIL_TLS_NAMES"], !fromEnv.isEmpty { names = fromEnv.split(separator: ",").map(String.init) }
        if names.isEmpty { names = file.tlsNames ?? [] }
        if names.isEmpty {
            names = ["localhost", "127.0.0.1"]
            if !["0.0.0.0", "::", "127.0.0.1", "localhost"].contains(listenAddress.host) { names.insert(listenAddress.host, at: 0) }
        }
        var settings = file
        settings.httpListen = httpAddress.description
        if let url = httpPublicURL ?? env["SIGIL_HTTP_PUBLIC_URL"].flatMap({ $0.isEmpty ? nil : $0 }) { settings.httpPublicURL = url }

        ServeCommand.bootstrapLogging(format: format, level: level)
        var logger = Logger(label: "sigil")
        logger.logLevel = level

        // ACME is on unless `acme: {enabled: false}`; its configuration is checked before anything starts.
        let acmeSettings = file.acme ?? ACMESettings()
        let acme = try (acmeSettings.enabled ?? true)
            ? acmeSettings.configuration(knownProfiles: Set(try settings.authorityConfiguration().profiles.keys)) : nil
        let configuredPublicURL = publicURL ?? env["SIGIL_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? file.publicURL

        _ = try file.discovery?.validated()
        let workspace = try await Workspace.open(home, configuration: settings, databasePath: database)
        do {
            try await serve(workspace: workspace, listen: listenAddress, http: httpAddress, names: names, ocspMode: ocspMode, logger: logger,
                            json: format == "json", acme: acme, publicURL: configuredPublicURL, httpPublicURLGiven: settings.httpPublicURL != nil,
                            discovery: file.discovery)
        } catch {
            await workspace.close()
            throw error
        }
        await workspace.close()
        logger.info("stopped; the database is closed")
    }

    private func serve(workspace: Workspace, listen: ListenAddress, http: ListenAddress, names: [String], ocspMode: OCSPResponder.SignerMode,
                       logger: Logger, json: Bool, acme acmeConfiguration: ACMEConfiguration?, publicURL: String?,
                       httpPublicURLGiven: Bool, discovery: DiscoverySchedule?) async throws {
        let console = Console.current
        // With JSON logs, everything on standard error is a JSON log line.
        let notice: (String) -> Void = { message in
            if json { logger.notice("\(message)") } else { console.error(message) }
        }
        let authority = workspace.authority
        let secret = try caPassphrase(home: workspace.home, notice: notice)
        // Nodes starting together on an empty shared database: one creates the CA and the admin
        // token, the others wait for it and then find both. (If this node fails meanwhile, its
        // process ends and PostgreSQL frees the lock with its connection.)
        let firstStart = workspace.store.schedulerLock(named: "first-start")
        let waitUntil = Date().addingTimeInterval(120)
        while !(await firstStart.acquire()) {
            guard Date() < waitUntil else { throw SigilError(.io, "another node has been initializing the database for 2 minutes; try again") }
            try await Task.sleep(for: .milliseconds(200))
        }
        if try await authority.issuers().isEmpty {
            _ = try await authority.createRoot(
                NewCAOptions(name: "root", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Sigil/CN=Sigil Root CA"), keyType: .ecP384, days: 3650),
                passphrase: secret, actor: "sigil-server")
            _ = try await authority.createIntermediate(
                NewCAOptions(name: "intermediate", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Sigil/CN=Sigil Intermediate CA"),
                             keyType: .ecP256, days: 1825, pathLength: 0, extendedKeyUsage: ["serverAuth", "clientAuth"]),
                parent: "root", passphrase: secret, actor: "sigil-server")
            notice("Created a root and an intermediate CA in \(workspace.home)")
        }
        for issuer in try await authority.issuers() where issuer.status != .external {
            do {
                try await authority.unlock(issuer.name, passphrase: secret)
            } catch let error as SigilError where error.kind == .wrongPassphrase {
                throw SigilError(.wrongPassphrase, "the CA passphrase does not unlock CA '\(issuer.name)'")
            }
        }
        let tokens = AccessTokens(store: workspace.store)
        if try await tokens.list().isEmpty {
            let (_, token) = try await tokens.create(name: "admin", role: .admin, expiresIn: nil, allowedNames: [], actor: "sigil-server")
            console.print("admin token: \(token)")
        }
        await firstStart.release()
        if let root = try await authority.issuers().first(where: { $0.isRoot && !$0.certificatePEM.isEmpty }) {
            var transaction = FileTransaction()
            try transaction.stage(Array(root.certificatePEM.utf8), to: "\(workspace.home)/root.pem", mode: 0o644, overwrite: true)
            try transaction.commit()
        }
        let metrics = SigilMetrics()
        var environment = ServerEnvironment(authority: authority, metrics: metrics, ocspSigner: ocspMode)
        if let acmeConfiguration {
            // One node on SQLite: used nonces are kept in memory (a restart turns old ones into badNonce).
            // Several nodes on PostgreSQL: the nonce key and the used nonces live in the database, so a
            // nonce one node issued is accepted once by any node.
            let nonces = try await NonceLedger.make(store: workspace.store, mode: workspace.store is SQLiteStore ? .memory : .store,
                                                    clock: authority.clock)
            environment.acme = ACMEServer(authority: authority, configuration: acmeConfiguration, nonces: nonces,
                                          baseURL: publicURL ?? "https://\(listen)", logger: logger)
            if acmeConfiguration.insecureSkipValidation {
                notice("WARNING: acme.insecure_skip_validation is on: ACME challenges are NOT validated. Use this only in tests.")
            }
        }
        let acme = environment.acme
        let httpPublicURLConfigured = httpPublicURLGiven
        let identity = try await ServerIdentity(authority: authority, names: names)
        var runner = SigilServerRunner(
            environment: environment, identity: identity, listen: listen, httpListen: http, logger: logger,
            onListening: { https, httpPort in
                // With --http-listen HOST:0 and no http_public_url, certificates name the port actually bound.
                if httpPublicURLConfigured == false && http.port == 0 {
                    authority.setHTTPPublicURL("http://\(http.host.contains(":") ? "[\(http.host)]" : http.host):\(httpPort)")
                }
                if publicURL == nil { acme?.setBaseURL("https://\(listen.host.contains(":") ? "[\(listen.host)]" : listen.host):\(https)") }
                console.print("listening: https://\(listen.host):\(https) (API) and http://\(http.host):\(httpPort) (CA certificates, CRLs, OCSP); root certificate: \(workspace.home)/root.pem")
                if let acme {
                    for name in acme.configuration.provisioners.keys.sorted() { console.print("acme directory: \(acme.baseURL)/acme/\(name)/directory") }
                }
            })
        if let seconds = Console.current.environment["SIGIL_SCHEDULER_INTERVAL"].flatMap(Double.init), seconds > 0 {
            runner.schedulerInterval = .milliseconds(Int(seconds * 1000))
        }
        runner.discovery = discovery
        try await runner.run()
    }

    /// The CA passphrase: given, or kept in SIGIL_HOME/ca-passphrase, or made there now.
    private func caPassphrase(home: String, notice: (String) -> Void) throws -> [UInt8] {
        if let given = try passphrase.read() { return given }
        let path = "\(home)/ca-passphrase"
        if FileManager.default.fileExists(atPath: path) {
            return try PassphraseSource(passphraseFile: path, passphraseEnv: nil).read()!
        }
        let generated = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var transaction = FileTransaction()
        try transaction.stage(Array((generated + "\n").utf8), to: path, mode: 0o600, overwrite: false)
        try transaction.commit()
        notice("""
            WARNING: no CA passphrase was given, so Sigil generated one into \(path) (mode 0600).
            WARNING: anyone who can read that file can unlock your CA keys. Move it to a secret store
            WARNING: and start Sigil with --passphrase-file or --passphrase-env instead.
            """)
        return Array(generated.utf8)
    }

    static func bootstrapLogging(format: String, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// One `sigil serve` per SIGIL_HOME: SQLite has a single writer, and two servers
/// would each think they own the scheduled work.
final class InstanceLock {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw SigilError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw SigilError(.alreadyExists, "another sigil serve is already running on \(URL(fileURLWithPath: path).deletingLastPathComponent().path)\(holder.isEmpty ? "" : " (pid \(holder))"); stop it first")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
