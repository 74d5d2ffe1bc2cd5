import Foundation

/// An identifier an ACME order names (RFC 8555 §9.7.7): `dns` or `ip` (RFC 8738).
public struct ACMEIdentifier: Sendable, Hashable, Codable, CustomStringConvertible {
    public var type: String
    public var value: String

    public init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    public var description: String { "\(type):\(value)" }
}

/// RFC 8555 §7.1.6 statuses, shared by accounts, orders, authorizations and challenges.
public enum ACMEStatus: String, Sendable, Codable {
    case pending, ready, processing, valid, invalid, expired, deactivated, revoked
}

/// An ACME account: the JWK that signs its requests, and its state.
public struct ACMEAccountRecord: Sendable, Equatable, Codable {
    public var id: String
    public var provisioner: String
    /// RFC 7638 thumbprint of the account key (base64url): one account per key per provisioner.
    public var thumbprint: String
    /// The account key as a JWK JSON object (canonical member order).
    public var jwk: String
    public var status: ACMEStatus
    public var contact: [String]
    public var termsAgreed: Bool
    /// The External Account Binding key that created the account (RFC 8555 §7.3.4).
    public var eabKeyID: String?
    public var createdAt: Date

    public init(id: String, provisioner: String, thumbprint: String, jwk: String, status: ACMEStatus, contact: [String], termsAgreed: Bool,
                eabKeyID: String?, createdAt: Date) {
        self.id = id
        self.provisioner = provisioner
        self.thumbprint = thumbprint
        self.jwk = jwk
        self.status = status
        self.contact = contact
        self.termsAgreed = termsAgreed
        self.eabKeyID = eabKeyID
        self.createdAt = createdAt
    }
}

/// A problem document as stored on an order, authorization or challenge.
public struct ACMEStoredProblem: Sendable, Equatable, Codable {
    public var type: String
    public var detail: String
    public var status: Int
    public var subproblems: [ACMEStoredSubproblem]

    public init(type: String, detail: String, status: Int, subproblems: [ACMEStoredSubproblem] = []) {
        self.type = type
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
    }
}

public struct ACMEStoredSubproblem: Sendable, Equatable, Codable {
    public var type: String
    public var detail: String
    public var identifier: ACMEIdentifier?

    public init(type: String, detail: String, identifier: ACMEIdentifier?) {
        self.type = type
        self.detail = detail
        self.identifier = identifier
    }
}

public struct ACMEOrderRecord: Sendable, Equatable, Codable {
    public var id: String
    public var accountID: String
    public var provisioner: String
    public var status: ACMEStatus
    public var identifiers: [ACMEIdentifier]
    /// The ACME profile asked for (or the provisioner's default).
    public var profile: String
    public var notBefore: Date?
    public var notAfter: Date?
    public var expires: Date
    public var authorizationIDs: [String]
    public var error: ACMEStoredProblem?
    /// SHA-256 fingerprint of the issued certificate.
    public var certificateFingerprint: String?
    /// RFC 9773 `replaces`: the ARI certificate identifier of the certificate this order renews.
    public var replaces: String?
    public var createdAt: Date

    public init(id: String, accountID: String, provisioner: String, status: ACMEStatus, identifiers: [ACMEIdentifier], profile: String,
                notBefore: Date? = nil, notAfter: Date? = nil, expires: Date, authorizationIDs: [String], error: ACMEStoredProblem? = nil,
                certificateFingerprint: String? = nil, replaces: String? = nil, createdAt: Date) {
        self.id = id
        self.accountID = accountID
        self.provisioner = provisioner
        self.status = status
        self.identifiers = identifiers
        self.profile = profile
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.expires = expires
        self.authorizationIDs = authorizationIDs
        self.error = error
        self.certificateFingerprint = certificateFingerprint
        self.replaces = replaces
        self.createdAt = createdAt
    }
}

public struct ACMEChallengeRecord: Sendable, Equatable, Codable {
    public var id: String
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    public var type: String
    /// At least 128 bits of entropy, base64url (RFC 8555 §8.1).
    public var token: String
    public var status: ACMEStatus
    public var validated: Date?
    public var error: ACMEStoredProblem?

    public init(id: String, type: String, token: String, status: ACMEStatus, validated: Date? = nil, error: ACMEStoredProblem? = nil) {
        self.id = id
        self.type = type
        self.token = token
        self.status = status
        self.validated = validated
        self.error = error
    }
}

public struct ACMEAuthorizationRecord: Sendable, Equatable, Codable {
    public var id: String
    public var accountID: String
    public var provisioner: String
    /// For a wildcard order, the base domain without `*.` (RFC 8555 §7.1.4).
    public var identifier: ACMEIdentifier
    public var wildcard: Bool
    public var status: ACMEStatus
    public var expires: Date
    public var challenges: [ACMEChallengeRecord]
    public var createdAt: Date

    public init(id: String, accountID: String, provisioner: String, identifier: ACMEIdentifier, wildcard: Bool, status: ACMEStatus,
                expires: Date, challenges: [ACMEChallengeRecord], createdAt: Date) {
        self.id = id
        self.accountID = accountID
        self.provisioner = provisioner
        self.identifier = identifier
        self.wildcard = wildcard
        self.status = status
        self.expires = expires
        self.challenges = challenges
        self.createdAt = createdAt
    }

    /// The key authorizations are matched on this: `dns:example.com` or `dns:*.example.com`.
    public var lookupKey: String { "\(identifier.type):\(wildcard ? "*." : "")\(identifier.value)" }
}

/// An External Account Binding key (RFC 8555 §7.3.4), made by `sigil acme eab create`.
public struct ACMEEABKeyRecord: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The HMAC key, base64url. The server must know it to check the binding's MAC.
    public var hmacKey: String
    /// Name patterns the bound account may order; empty means the provisioner's policy alone.
    public var allowedNames: [String]
    public var createdAt: Date
    public var createdBy: String
    /// The account this key was bound to; a key binds one account.
    public var accountID: String?
    public var revokedAt: Date?

    public init(id: String, name: String, hmacKey: String, allowedNames: [String], createdAt: Date, createdBy: String,
                accountID: String? = nil, revokedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.hmacKey = hmacKey
        self.allowedNames = allowedNames
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.accountID = accountID
        self.revokedAt = revokedAt
    }
}
