import Foundation
import SigilCore
import SigilStore
import X509

/// What the CA needs from configuration.
public struct AuthorityConfiguration: Sendable {
    /// Base of the URLs written into certificates (CRL distribution point, AIA).
    public var httpPublicURL: String
    /// Profiles by name: the built-ins with the configuration's overrides applied.
    public var profiles: [String: CertificateProfile]
    /// CRL shards per issuer (1: one CRL). With more, each end-entity certificate is
    /// assigned a shard at issuance and carries that shard's URL, so no relying party
    /// downloads every revocation (as Let's Encrypt partitions its CRLs).
    public var crlShards: Int

    public init(httpPublicURL: String = "http://127.0.0.1:8080", profiles: [String: CertificateProfile] = CertificateProfile.builtIn, crlShards: Int = 1) {
        self.crlShards = max(1, crlShards)
        self.httpPublicURL = httpPublicURL.hasSuffix("/") ? String(httpPublicURL.dropLast()) : httpPublicURL
        self.profiles = profiles
    }

    public func crlURL(issuer: String) -> String { "\(httpPublicURL)/crl/\(issuer).crl" }
    public func crlURL(issuer: String, shard: Int?) -> String {
        guard let shard else { return crlURL(issuer: issuer) }
        return "\(httpPublicURL)/crl/\(issuer)/\(shard).crl"
    }
    public var ocspURL: String { "\(httpPublicURL)/ocsp" }
    public func caIssuersURL(issuer: String) -> String { "\(httpPublicURL)/ca/\(issuer).crt" }

    public func profile(_ name: String) throws -> CertificateProfile {
        guard let profile = profiles[name] else {
            throw SigilError.badInput("unknown profile '\(name)': known profiles are \(profiles.keys.sorted().joined(separator: ", "))")
        }
        return profile
    }
}

/// A new CA's parameters.
public struct NewCAOptions: Sendable {
    public var name: String
    public var subject: DistinguishedName
    public var keyType: KeyType
    public var days: Int
    public var pathLength: Int?
    /// Extended key usages for an intermediate (empty: none, any purpose).
    public var extendedKeyUsage: [String]

    public init(name: String, subject: DistinguishedName, keyType: KeyType, days: Int, pathLength: Int? = nil, extendedKeyUsage: [String] = []) {
        self.name = name
        self.subject = subject
        self.keyType = keyType
        self.days = days
        self.pathLength = pathLength
        self.extendedKeyUsage = extendedKeyUsage
    }
}

/// A request for a certificate, from any front end.
public struct IssuanceRequest: Sendable {
    public var csr: CertificationRequest
    public var profile: String
    public var issuer: String?
    public var days: Int?
    /// Who asks (a token name, `cli:USER`, an ACME account): recorded in the audit trail.
    public var requester: String
    public var owner: String?
    public var tags: [String]
    /// The requester's own name limits; nil means none.
    public var allowedNames: [NamePattern]?
    /// Runs inside the transaction that records the certificate (an ACME order marked valid,
    /// say): throwing rolls the issuance back, so neither is recorded without the other.
    public var inTransaction: (@Sendable (any StoreSession, CertificateRecord) async throws -> Void)?
    /// What the certificate is recorded as coming from (an ACME order: `acme-order:ID`).
    public var requestID: String?
    /// Refuse instead of queueing when the profile needs a person's approval (ACME cannot wait for one).
    public var refuseApproval: Bool = false

    public init(csr: CertificationRequest, profile: String, issuer: String? = nil, days: Int? = nil, requester: String,
                owner: String? = nil, tags: [String] = [], allowedNames: [NamePattern]? = nil) {
        self.csr = csr
        self.profile = profile
        self.issuer = issuer
        self.days = days
        self.requester = requester
        self.owner = owner
        self.tags = tags
        self.allowedNames = allowedNames
    }
}
