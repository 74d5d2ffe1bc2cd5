import Hummingbird
import Logging
import NIOCore
import SigilAuthority
import SigilStore

/// Who is calling: a token, or a client certificate from Sigil's own tls-client profile.
public struct Identity: Sendable {
    public var name: String
    public var role: Role
    /// Name patterns a requester may ask for; nil means no limit.
    public var allowedNames: [String]?
    public var token: TokenRecord?

    /// The actor written into the audit trail.
    public var actor: String { token != nil ? "token:\(name)" : "mtls:\(name)" }
}

/// Hummingbird's request context plus the caller's identity and connection.
public struct SigilRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    /// The connection, for the TLS client certificate.
    let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// JSON bodies are small; a CSR with ML-DSA-87 fits easily in 64 KiB.
    public var maxUploadSize: Int { 256 * 1024 }
}
