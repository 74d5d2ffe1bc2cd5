import Foundation
import SigilCore
import Yams

/// Where one deployed file goes and who may read it.
public struct DeployTarget: Sendable, Equatable {
    public var path: String
    /// User name or numeric id; nil keeps the agent's own.
    public var owner: String?
    public var group: String?
    public var mode: mode_t

    public init(path: String, owner: String? = nil, group: String? = nil, mode: mode_t) {
        self.path = path
        self.owner = owner
        self.group = group
        self.mode = mode
    }
}

/// The command run after a deployment. Without a shell by default, so names with
/// spaces or quotes in the configuration cannot turn into shell syntax.
public struct ReloadCommand: Sendable, Equatable {
    public var argv: [String]
    public var timeout: ValidityPeriod

    public init(argv: [String], timeout: ValidityPeriod = ValidityPeriod(seconds: 60)) {
        self.argv = argv
        self.timeout = timeout
    }
}

/// An ACME directory (RFC 8555) the agent orders from.
public struct ACMEAuthority: Sendable, Equatable {
    public var directory: String
    /// RFC 8555 §7.3.4 External Account Binding: key id and the file holding the base64url HMAC key.
    public var eabKeyID: String?
    public var eabHMACFile: String?
    public var email: String?
    /// PEM file of the roots that may sign the ACME server's TLS certificate; nil: the system's.
    public var caBundle: String?
    /// The ACME profile to order (draft-ietf-acme-profiles); nil: the server's default.
    public var profile: String?
    /// The address the built-in http-01 responder binds (host:port).
    public var http01Listen: String
    /// The document root of the web server that already answers http-01 on port 80; when
    /// set, challenges are files there and the built-in responder does not listen.
    public var http01Webroot: String?
    /// dns-01 instead of http-01: the command that presents and cleans up the TXT record.
    public var dns01Hook: ReloadCommand?
    /// How long to wait after the hook presented a record before asking the CA to look.
    public var dns01Wait: ValidityPeriod = ValidityPeriod(seconds: 0)

    public init(directory: String, eabKeyID: String? = nil, eabHMACFile: String? = nil, email: String? = nil, caBundle: String? = nil,
                profile: String? = nil, http01Listen: String = "0.0.0.0:80") {
        self.directory = directory
        self.eabKeyID = eabKeyID
        self.eabHMACFile = eabHMACFile
        self.email = email
        self.caBundle = caBundle
        self.profile = profile
        self.http01Listen = http01Listen
    }
}

/// Sigil's REST API (`POST /api/v1/certificates`) as the CA.
public struct SigilAuthorityEndpoint: Sendable, Equatable {
    public var url: String
    public var tokenFile: String?
    public var tokenEnv: String?
    public var profile: String
    public var caBundle: String?

    public init(url: String, tokenFile: String? = nil, tokenEnv: String? = nil, profile: String = "tls-server", caBundle: String? = nil) {
        self.url = url
        self.tokenFile = tokenFile
        self.tokenEnv = tokenEnv
        self.profile = profile
        self.caBundle = caBundle
    }
}

/// The CA one certificate comes from.
public enum AuthorityChoice: Sendable, Equatable {
    case acme(ACMEAuthority)
    case sigil(SigilAuthorityEndpoint)
}

/// One certificate the agent keeps valid and deployed.
public struct ManagedCertificate: Sendable, Equatable {
    public var name: String
    /// DNS names and IP addresses, in the order given (the first is the CN).
    public var names: [String]
    public var keyType: KeyType
    public var reuseKey: Bool
    public var key: DeployTarget
    public var certificate: DeployTarget
    public var chain: DeployTarget?
    public var fullchain: DeployTarget?
    public var reload: ReloadCommand?
    public var authority: AuthorityChoice

    public init(name: String, names: [String], keyType: KeyType = .default, reuseKey: Bool = false, key: DeployTarget,
                certificate: DeployTarget, chain: DeployTarget? = nil, fullchain: DeployTarget? = nil, reload: ReloadCommand? = nil,
                authority: AuthorityChoice) {
        self.name = name
        self.names = names
        self.keyType = keyType
        self.reuseKey = reuseKey
        self.key = key
        self.certificate = certificate
        self.chain = chain
        self.fullchain = fullchain
        self.reload = reload
        self.authority = authority
    }

    /// Every deployed file, in the order the deployment renames them.
    public var targets: [(role: FileRole, target: DeployTarget)] {
        var list: [(role: FileRole, target: DeployTarget)] = []
        if let chain { list.append((.chain, chain)) }
        list.append((.key, key))
        list.append((.certificate, certificate))
        if let fullchain { list.append((.fullchain, fullchain)) }
        return list
    }
}

/// What a deployed file holds.
public enum FileRole: String, Sendable, Codable, CaseIterable {
    case key, certificate, chain, fullchain
}

/// Retry timing after a failure: exponential from `base`, capped at `cap`, full jitter.
public struct BackoffSettings: Sendable, Equatable {
    public var base: ValidityPeriod
    public var cap: ValidityPeriod

    public init(base: ValidityPeriod = ValidityPeriod(seconds: 60), cap: ValidityPeriod = ValidityPeriod(seconds: 3_600)) {
        self.base = base
        self.cap = cap
    }
}

/// The whole `sigil agent` configuration file.
public struct AgentConfiguration: Sendable, Equatable {
    /// The file it was read from (relative paths inside it are resolved against its directory).
    public var file: String
    public var stateDirectory: String
    public var backoff: BackoffSettings
    /// The longest the daemon sleeps between two passes, even when nothing is due.
    public var checkInterval: ValidityPeriod
    public var certificates: [ManagedCertificate]

    public init(file: String, stateDirectory: String, backoff: BackoffSettings = BackoffSettings(),
                checkInterval: ValidityPeriod = ValidityPeriod(seconds: 3_600), certificates: [ManagedCertificate]) {
        self.file = file
        self.stateDirectory = stateDirectory
        self.backoff = backoff
        self.checkInterval = checkInterval
        self.certificates = certificates
    }

    public func certificate(named name: String) throws -> ManagedCertificate {
        guard let found = certificates.first(where: { $0.name == name }) else {
            throw SigilError.badInput("\(file): no certificate named '\(name)' (configured: \(certificates.map(\.name).joined(separator: ", ")))")
        }
        return found
    }
}
