import Foundation

/// A certificate authority Sigil holds: its certificate and its encrypted key.
public struct IssuerRecord: Sendable, Equatable, Codable {
    public var name: String
    /// The issuer that signed this one; nil for a root or an intermediate signed outside Sigil.
    public var parentName: String?
    public var certificatePEM: String
    /// The private key, encrypted (see `KeyVault`); never plaintext.
    public var keyBlob: String
    public var keyType: String
    public var subject: String
    public var notBefore: Date
    public var notAfter: Date
    public var isRoot: Bool
    public var createdAt: Date
    /// The last CRL number used (RFC 5280 §5.2.3); monotonic.
    public var crlNumber: Int64
    public var status: IssuerStatus

    public init(name: String, parentName: String?, certificatePEM: String, keyBlob: String, keyType: String, subject: String,
                notBefore: Date, notAfter: Date, isRoot: Bool, createdAt: Date, crlNumber: Int64 = 0, status: IssuerStatus = .active) {
        self.name = name
        self.parentName = parentName
        self.certificatePEM = certificatePEM
        self.keyBlob = keyBlob
        self.keyType = keyType
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.isRoot = isRoot
        self.createdAt = createdAt
        self.crlNumber = crlNumber
        self.status = status
    }
}

public enum IssuerStatus: String, Sendable, Codable {
    /// Holds a certificate and a key: can sign.
    case active
    /// A key waiting for the certificate an outside CA will sign (`sigil ca csr`).
    case pending
    /// A certificate only (an offline root held elsewhere), for chains.
    case external
}

/// How a certificate came to be in the inventory.
public enum CertificateSource: String, Sendable, Codable, CaseIterable {
    case issued, imported, discovered
}

/// The stored part of a certificate's status; `expired` is derived from the
/// clock at read time, never stored (it would go stale).
public enum StoredCertificateStatus: String, Sendable, Codable {
    case active, revoked
}

/// A certificate's status as users see it.
public enum CertificateStatus: String, Sendable, Codable, CaseIterable {
    case active, revoked, expired
}

/// One certificate in the inventory.
public struct CertificateRecord: Sendable, Equatable, Codable {
    /// Lowercase hex.
    public var serial: String
    /// The name of the Sigil issuer, or the issuer's distinguished name for certificates from elsewhere.
    public var issuer: String
    public var subject: String
    public var commonName: String?
    public var sans: [String]
    public var notBefore: Date
    public var notAfter: Date
    public var keyType: String
    public var keyAlgorithm: String
    public var keySize: Int
    public var signatureAlgorithm: String
    /// SHA-256 of the DER certificate, lowercase hex.
    public var fingerprint: String
    public var storedStatus: StoredCertificateStatus
    public var source: CertificateSource
    public var profile: String?
    public var owner: String?
    public var tags: [String]
    public var pem: String
    public var requestID: String?
    public var revokedAt: Date?
    public var revocationReason: Int?
    /// When the key is known or suspected to have been compromised (RFC 5280 §5.3.2).
    public var invalidityDate: Date?
    /// The CRL shard chosen at issuance (its URL is in the certificate), or nil.
    public var crlShard: Int?
    public var createdAt: Date
    /// SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex: finds one key in several certificates.
    /// nil: not known yet (the store fills it from `pem` on insert).
    public var publicKeySHA256: String?
    /// basicConstraints cA (RFC 5280 §4.2.1.9); nil: not known yet (filled on insert).
    public var isCA: Bool?

    public init(serial: String, issuer: String, subject: String, commonName: String?, sans: [String], notBefore: Date, notAfter: Date,
                keyType: String, keyAlgorithm: String, keySize: Int, signatureAlgorithm: String, fingerprint: String,
                storedStatus: StoredCertificateStatus = .active, source: CertificateSource, profile: String?, owner: String? = nil,
                tags: [String] = [], pem: String, requestID: String? = nil, revokedAt: Date? = nil, revocationReason: Int? = nil,
                invalidityDate: Date? = nil, crlShard: Int? = nil, createdAt: Date, publicKeySHA256: String? = nil, isCA: Bool? = nil) {
        self.serial = serial
        self.issuer = issuer
        self.subject = subject
        self.commonName = commonName
        self.sans = sans
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.keyType = keyType
        self.keyAlgorithm = keyAlgorithm
        self.keySize = keySize
        self.signatureAlgorithm = signatureAlgorithm
        self.fingerprint = fingerprint
        self.storedStatus = storedStatus
        self.source = source
        self.profile = profile
        self.owner = owner
        self.tags = tags
        self.pem = pem
        self.requestID = requestID
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
        self.invalidityDate = invalidityDate
        self.crlShard = crlShard
        self.createdAt = createdAt
        self.publicKeySHA256 = publicKeySHA256
        self.isCA = isCA
    }

    public func status(at now: Date) -> CertificateStatus {
        if storedStatus == .revoked { return .revoked }
        return notAfter <= now ? .expired : .active
    }
}

public enum RequestStatus: String, Sendable, Codable, CaseIterable {
    case pending, issued, rejected
}

/// A certificate request kept for a person's decision (or as the record of one).
public struct RequestRecord: Sendable, Equatable, Codable {
    public var id: String
    public var csrPEM: String
    public var profile: String
    public var issuer: String?
    public var days: Int?
    public var requester: String
    public var subject: String
    public var names: [String]
    public var status: RequestStatus
    /// Why it waits, or why it was rejected.
    public var reasons: [String]
    public var createdAt: Date
    public var decidedAt: Date?
    public var decidedBy: String?
    public var certificateSerial: String?

    public init(id: String, csrPEM: String, profile: String, issuer: String?, days: Int?, requester: String, subject: String,
                names: [String], status: RequestStatus, reasons: [String], createdAt: Date, decidedAt: Date? = nil,
                decidedBy: String? = nil, certificateSerial: String? = nil) {
        self.id = id
        self.csrPEM = csrPEM
        self.profile = profile
        self.issuer = issuer
        self.days = days
        self.requester = requester
        self.subject = subject
        self.names = names
        self.status = status
        self.reasons = reasons
        self.createdAt = createdAt
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.certificateSerial = certificateSerial
    }
}

/// What a caller says happened; the store assigns the sequence number and hashes.
public struct AuditDraft: Sendable, Equatable {
    public var time: Date
    public var actor: String
    public var action: String
    public var object: String
    /// Key-value details, written as canonical JSON (sorted keys).
    public var details: [String: String]

    public init(time: Date, actor: String, action: String, object: String, details: [String: String] = [:]) {
        self.time = time
        self.actor = actor
        self.action = action
        self.object = object
        self.details = details
    }
}

/// One entry of the hash-chained audit log.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var seq: Int64
    public var time: Date
    public var actor: String
    public var action: String
    public var object: String
    public var details: String
    public var prevHash: String
    public var hash: String

    public init(seq: Int64, time: Date, actor: String, action: String, object: String, details: String, prevHash: String, hash: String) {
        self.seq = seq
        self.time = time
        self.actor = actor
        self.action = action
        self.object = object
        self.details = details
        self.prevHash = prevHash
        self.hash = hash
    }
}

/// Filters for the inventory; nil means no filter.
public struct CertificateQuery: Sendable {
    public var status: CertificateStatus?
    /// Matches the CN or any SAN; `*` is a wildcard.
    public var namePattern: String?
    public var owner: String?
    public var issuer: String?
    public var profile: String?
    public var source: CertificateSource?
    /// Active certificates whose notAfter is before this time.
    public var expiringBefore: Date?
    /// The time that decides `expired`.
    public var now: Date
    public var limit: Int
    /// Continue after this (notAfter, fingerprint) position.
    public var after: (notAfter: Date, fingerprint: String)?

    /// A tag the certificate carries.
    public var tag: String?
    /// `RSA`, `EC`, `Ed25519`, `ML-DSA` (the key_algorithm column).
    public var keyAlgorithm: String?
    public var sort: CertificateSort = .notAfter
    /// Rows to skip. Prefer `cursor`: skipping costs as many rows as it skips.
    public var offset: Int = 0
    /// Keyset pagination in any sort: rows after (or before) this one.
    public var cursor: CertificateCursor?
    /// Indexed search: a name or name prefix, `*.suffix`, a serial or a fingerprint.
    public var search: String?
    /// Set by the store: the search matches most of the inventory.
    var broadSearch = false

    public init(now: Date, status: CertificateStatus? = nil, namePattern: String? = nil, owner: String? = nil, issuer: String? = nil,
                profile: String? = nil, source: CertificateSource? = nil, expiringBefore: Date? = nil, limit: Int = 1000,
                after: (notAfter: Date, fingerprint: String)? = nil) {
        self.now = now
        self.status = status
        self.namePattern = namePattern
        self.owner = owner
        self.issuer = issuer
        self.profile = profile
        self.source = source
        self.expiringBefore = expiringBefore
        self.limit = limit
        self.after = after
    }
}

/// An API token as stored: the secret itself is never kept, only its SHA-256.
public struct TokenRecord: Sendable, Equatable, Codable {
    /// The public part of the token, used to find the record.
    public var id: String
    public var name: String
    public var role: String
    /// SHA-256 of the secret part, lowercase hex.
    public var secretHash: String
    /// Name patterns a requester token may ask for; empty means any.
    public var allowedNames: [String]
    public var createdAt: Date
    public var createdBy: String
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    public init(id: String, name: String, role: String, secretHash: String, allowedNames: [String], createdAt: Date, createdBy: String,
                expiresAt: Date?, revokedAt: Date? = nil, lastUsedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.role = role
        self.secretHash = secretHash
        self.allowedNames = allowedNames
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }

    public func isUsable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }
}

/// A revoked certificate as a CRL or OCSP responder needs it.
public struct RevokedEntry: Sendable, Equatable {
    public var fingerprint: String
    public var serial: String
    public var revokedAt: Date
    public var reason: Int?
    public var invalidityDate: Date?

    public init(fingerprint: String, serial: String, revokedAt: Date, reason: Int?, invalidityDate: Date?) {
        self.fingerprint = fingerprint
        self.serial = serial
        self.revokedAt = revokedAt
        self.reason = reason
        self.invalidityDate = invalidityDate
    }
}

/// The latest CRL of an issuer.
public struct CRLRecord: Sendable, Equatable {
    public var issuer: String
    public var number: Int64
    public var thisUpdate: Date
    public var nextUpdate: Date
    public var entries: Int
    public var der: [UInt8]

    public init(issuer: String, number: Int64, thisUpdate: Date, nextUpdate: Date, entries: Int, der: [UInt8]) {
        self.issuer = issuer
        self.number = number
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.entries = entries
        self.der = der
    }
}

/// Orders of the inventory; each is served by an index, ties broken by fingerprint.
public enum CertificateSort: String, Sendable, CaseIterable {
    case notAfter = "not_after", notAfterDescending = "-not_after", commonName = "common_name", createdDescending = "-created_at", serial

    /// The SQL expression sorted on (the same expression as its index).
    var column: String {
        switch self {
        case .notAfter, .notAfterDescending: return "not_after"
        case .commonName: return "COALESCE(common_name, '')"
        case .createdDescending: return "created_at"
        case .serial: return "serial"
        }
    }

    var descending: Bool { self == .notAfterDescending || self == .createdDescending }
    var numeric: Bool { self == .notAfter || self == .notAfterDescending || self == .createdDescending }


    /// The value a row is positioned by, as a cursor carries it.
    public func value(of record: CertificateRecord) -> String {
        switch self {
        case .notAfter, .notAfterDescending: return String(Int64(record.notAfter.timeIntervalSince1970.rounded(.down)))
        case .commonName: return record.commonName ?? ""
        case .createdDescending: return String(Int64(record.createdAt.timeIntervalSince1970.rounded(.down)))
        case .serial: return record.serial
        }
    }
}

/// A position in a sorted inventory: the sort value and fingerprint of a row.
public struct CertificateCursor: Sendable, Equatable {
    public var value: String
    public var fingerprint: String
    /// Rows before the position (the previous page) instead of after it.
    public var backward: Bool

    public init(value: String, fingerprint: String, backward: Bool = false) {
        self.value = value
        self.fingerprint = fingerprint
        self.backward = backward
    }
}

/// A signed-in dashboard session. `id` is the SHA-256 of the cookie's secret, so the
/// database never holds a usable session.
public struct DashboardSessionRecord: Sendable, Equatable {
    public var id: String
    public var tokenID: String
    public var name: String
    public var role: String
    /// The session's anti-CSRF token, sent back in every state-changing form.
    public var csrf: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(id: String, tokenID: String, name: String, role: String, csrf: String, createdAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.tokenID = tokenID
        self.name = name
        self.role = role
        self.csrf = csrf
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// The inventory in numbers, for the overview.
public struct CertificateStatistics: Sendable, Equatable {
    public var active = 0
    public var expired = 0
    public var revoked = 0
    public var expiring7 = 0
    public var expiring30 = 0
    public var expiring90 = 0
    /// Active certificates by week of expiry, from now, 26 weeks.
    public var expiryByWeek = [Int](repeating: 0, count: 26)
    /// Certificates recorded per day, the last 30 days, oldest first.
    public var issuedByDay = [Int](repeating: 0, count: 30)
    /// Active certificates by key algorithm and size.
    public var algorithms: [AlgorithmCount] = []
    public var byIssuer: [String: Int] = [:]

    public init() {}
    public var total: Int { active + expired + revoked }
}

public struct AlgorithmCount: Sendable, Equatable {
    public var algorithm: String
    public var size: Int
    public var count: Int
    public init(algorithm: String, size: Int, count: Int) {
        self.algorithm = algorithm
        self.size = size
        self.count = count
    }
}

/// What the audit view filters on.
public struct AuditFilter: Sendable {
    public var actor: String?
    /// Matches an action or an action prefix (`certificate.` matches every certificate action).
    public var action: String?
    public var object: String?
    public var since: Date?
    public var until: Date?
    /// Newest first, entries before this sequence number.
    public var beforeSeq: Int64?
    public var limit: Int

    public init(actor: String? = nil, action: String? = nil, object: String? = nil, since: Date? = nil, until: Date? = nil, beforeSeq: Int64? = nil, limit: Int = 100) {
        self.actor = actor
        self.action = action
        self.object = object
        self.since = since
        self.until = until
        self.beforeSeq = beforeSeq
        self.limit = limit
    }
}

/// Where and when a certificate was seen: served by a TLS endpoint (`kind == .tls`) or
/// found in a file (`kind == .file`). One row per certificate, location and SNI name;
/// seeing it again moves `lastSeen` and keeps `firstSeen`.
public struct CertificateSighting: Sendable, Equatable {
    public enum Kind: String, Sendable { case tls, file }

    public var fingerprint: String
    /// `host:port` for an endpoint (as the user named it), an absolute path for a file.
    public var location: String
    /// The SNI name sent, or empty.
    public var serverName: String
    public var kind: Kind
    public var host: String?
    public var port: Int?
    /// The IP address actually connected to.
    public var address: String?
    public var path: String?
    /// `TLSv1.3`, `TLSv1.2`, ...
    public var tlsVersion: String?
    public var cipher: String?
    /// 0 for the certificate the endpoint or file presents first (the leaf), then up the chain.
    public var chainPosition: Int
    public var firstSeen: Date
    public var lastSeen: Date

    public init(fingerprint: String, location: String, serverName: String = "", kind: Kind, host: String? = nil, port: Int? = nil,
                address: String? = nil, path: String? = nil, tlsVersion: String? = nil, cipher: String? = nil, chainPosition: Int = 0,
                firstSeen: Date, lastSeen: Date) {
        self.fingerprint = fingerprint
        self.location = location
        self.serverName = serverName
        self.kind = kind
        self.host = host
        self.port = port
        self.address = address
        self.path = path
        self.tlsVersion = tlsVersion
        self.cipher = cipher
        self.chainPosition = chainPosition
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}
