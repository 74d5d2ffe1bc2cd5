import Foundation
import SigilAuthority
import SigilCore
import SigilStore

// The JSON shapes of Sigil's records, shared by the REST API and `--json`
// output so that scripts see one stable shape everywhere. Absent values are
// written as null, never left out.

/// The JSON shape of an inventory record.
public struct CertificateReport: Encodable, Sendable {
    var record: CertificateRecord
    var now: Date

    public init(_ record: CertificateRecord, now: Date) {
        self.record = record
        self.now = now
    }

    enum Keys: String, CodingKey {
        case serial, issuer, subject, sans, status, source, profile, owner, tags, fingerprint
        case commonName = "common_name", notBefore = "not_before", notAfter = "not_after", keyType = "key_type"
        case keyAlgorithm = "key_algorithm", keySize = "key_size", signatureAlgorithm = "signature_algorithm"
        case revokedAt = "revoked_at", revocationReason = "revocation_reason", requestID = "request_id", daysLeft = "days_left"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(record.serial, forKey: .serial)
        try c.encode(record.issuer, forKey: .issuer)
        try c.encode(record.subject, forKey: .subject)
        try c.encode(record.commonName, forKey: .commonName)
        try c.encode(record.sans, forKey: .sans)
        try c.encode(iso(record.notBefore), forKey: .notBefore)
        try c.encode(iso(record.notAfter), forKey: .notAfter)
        try c.encode(Int((record.notAfter.timeIntervalSince(now) / 86_400).rounded(.down)), forKey: .daysLeft)
        try c.encode(record.status(at: now).rawValue, forKey: .status)
        try c.encode(record.source.rawValue, forKey: .source)
        try c.encode(record.profile, forKey: .profile)
        try c.encode(record.owner, forKey: .owner)
        try c.encode(record.tags, forKey: .tags)
        try c.encode(record.keyType, forKey: .keyType)
        try c.encode(record.keyAlgorithm, forKey: .keyAlgorithm)
        try c.encode(record.keySize, forKey: .keySize)
        try c.encode(record.signatureAlgorithm, forKey: .signatureAlgorithm)
        try c.encode(record.fingerprint, forKey: .fingerprint)
        try c.encode(record.revokedAt.map(iso), forKey: .revokedAt)
        try c.encode(record.revocationReason, forKey: .revocationReason)
        try c.encode(record.requestID, forKey: .requestID)
    }
}

public struct RequestReport: Encodable, Sendable {
    var record: RequestRecord
    public init(record: RequestRecord) { self.record = record }
    enum Keys: String, CodingKey {
        case id, profile, issuer, days, requester, subject, names, status, reasons
        case createdAt = "created_at", decidedAt = "decided_at", decidedBy = "decided_by", certificateSerial = "certificate_serial", csr
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(record.id, forKey: .id)
        try c.encode(record.profile, forKey: .profile)
        try c.encode(record.issuer, forKey: .issuer)
        try c.encode(record.days, forKey: .days)
        try c.encode(record.requester, forKey: .requester)
        try c.encode(record.subject, forKey: .subject)
        try c.encode(record.names, forKey: .names)
        try c.encode(record.status.rawValue, forKey: .status)
        try c.encode(record.reasons, forKey: .reasons)
        try c.encode(iso(record.createdAt), forKey: .createdAt)
        try c.encode(record.decidedAt.map(iso), forKey: .decidedAt)
        try c.encode(record.decidedBy, forKey: .decidedBy)
        try c.encode(record.certificateSerial, forKey: .certificateSerial)
        try c.encode(record.csrPEM, forKey: .csr)
    }
}

public struct AuditEntryReport: Encodable, Sendable {
    var entry: AuditEntry
    public init(entry: AuditEntry) { self.entry = entry }
    enum Keys: String, CodingKey { case seq, time, actor, action, object, details, prevHash = "prev_hash", hash }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(entry.seq, forKey: .seq)
        try c.encode(entry.time.formatted(.iso8601), forKey: .time)
        try c.encode(entry.actor, forKey: .actor)
        try c.encode(entry.action, forKey: .action)
        try c.encode(entry.object, forKey: .object)
        let details = (try? JSONDecoder().decode([String: String].self, from: Data(entry.details.utf8))) ?? [:]
        try c.encode(details, forKey: .details)
        try c.encode(entry.prevHash, forKey: .prevHash)
        try c.encode(entry.hash, forKey: .hash)
    }
}

public struct TokenReport: Encodable, Sendable {
    var record: TokenRecord
    var token: String?
    public init(record: TokenRecord, token: String?) {
        self.record = record
        self.token = token
    }
    enum Keys: String, CodingKey {
        case id, name, role, token
        case allowedNames = "allowed_names", createdAt = "created_at", createdBy = "created_by", expiresAt = "expires_at"
        case revokedAt = "revoked_at", lastUsedAt = "last_used_at"
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(record.id, forKey: .id)
        try c.encode(record.name, forKey: .name)
        try c.encode(record.role, forKey: .role)
        if let token { try c.encode(token, forKey: .token) }
        try c.encode(record.allowedNames, forKey: .allowedNames)
        try c.encode(iso(record.createdAt), forKey: .createdAt)
        try c.encode(record.createdBy, forKey: .createdBy)
        try c.encode(record.expiresAt.map(iso), forKey: .expiresAt)
        try c.encode(record.revokedAt.map(iso), forKey: .revokedAt)
        try c.encode(record.lastUsedAt.map(iso), forKey: .lastUsedAt)
    }
}

/// RFC 3339 in UTC, whole seconds.
public func iso(_ date: Date) -> String {
    RFC3339.string(date)
}

public struct IssuerReport: Encodable, Sendable {
    public var name: String
    public var status: String
    public var kind: String
    public var parent: String?
    public var subject: String
    public var keyType: String
    public var notBefore: String
    public var notAfter: String
    public var serial: String?
    public var fingerprint: String?
    public var crlNumber: Int64

    public init(_ record: IssuerRecord) {
        name = record.name
        status = record.status.rawValue
        kind = record.isRoot ? "root" : "intermediate"
        parent = record.parentName
        subject = record.subject
        keyType = record.keyType
        notBefore = iso(record.notBefore)
        notAfter = iso(record.notAfter)
        let certificate = try? X509Certificate(pemOrDER: Array(record.certificatePEM.utf8))
        serial = certificate?.serialHex
        fingerprint = certificate?.sha256Fingerprint
        crlNumber = record.crlNumber
    }

    enum CodingKeys: String, CodingKey {
        case name, status, kind, parent, subject, serial, fingerprint
        case keyType = "key_type", notBefore = "not_before", notAfter = "not_after", crlNumber = "crl_number"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(status, forKey: .status)
        try c.encode(kind, forKey: .kind)
        try c.encode(parent, forKey: .parent)
        try c.encode(subject, forKey: .subject)
        try c.encode(keyType, forKey: .keyType)
        try c.encode(notBefore, forKey: .notBefore)
        try c.encode(notAfter, forKey: .notAfter)
        try c.encode(serial, forKey: .serial)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(crlNumber, forKey: .crlNumber)
    }
}
