import Foundation
import SigilCore
import SigilStore

/// What Sigil notifies about. The raw values are the names in `sigil.yaml`
/// (`events:`), in the webhook body (`type`) and in the `Sigil-Event` header.
public enum NotificationEventType: String, Sendable, Codable, CaseIterable {
    /// A certificate passed one of the expiry thresholds (`threshold_days`).
    case expiring
    case issued
    case revoked
    /// An agent reported that it could not renew or deploy a certificate.
    case renewalFailed = "renewal_failed"
    /// A request waits for a person's approval (its profile requires it).
    case approvalPending = "approval_pending"
    /// `sigil notify test`: always delivered, whatever a channel's filters say.
    case test
}

/// The certificate an event is about, as the webhook body carries it.
public struct NotificationCertificate: Sendable, Codable, Equatable {
    public var serial: String
    public var fingerprint: String
    public var subject: String
    public var commonName: String?
    public var names: [String]
    public var notBefore: String
    public var notAfter: String
    public var issuer: String
    public var profile: String?
    public var owner: String?
    public var tags: [String]
    public var status: String

    public init(_ record: CertificateRecord, now: Date) {
        serial = record.serial
        fingerprint = record.fingerprint
        subject = record.subject
        commonName = record.commonName
        names = record.sans
        notBefore = RFC3339.string(record.notBefore)
        notAfter = RFC3339.string(record.notAfter)
        issuer = record.issuer
        profile = record.profile
        owner = record.owner
        tags = record.tags
        status = record.status(at: now).rawValue
    }

    enum CodingKeys: String, CodingKey {
        case serial, fingerprint, subject, names, issuer, profile, owner, tags, status
        case commonName = "common_name", notBefore = "not_before", notAfter = "not_after"
    }
}

/// A request waiting for approval.
public struct NotificationRequest: Sendable, Codable, Equatable {
    public var id: String
    public var profile: String
    public var subject: String
    public var names: [String]
    public var requester: String
    public var owner: String?
    public var tags: [String]

    public init(id: String, profile: String, subject: String, names: [String], requester: String, owner: String?, tags: [String]) {
        self.id = id
        self.profile = profile
        self.subject = subject
        self.names = names
        self.requester = requester
        self.owner = owner
        self.tags = tags
    }
}

/// One event, as delivered: the webhook's JSON body, and what the mail is written from.
/// Fields that do not apply to an event are left out.
public struct NotificationEvent: Sendable, Codable, Equatable {
    /// The same for every channel and every retry (`audit-SEQ`, `expiring-FINGERPRINT-7d`, ...).
    public var id: String
    public var type: NotificationEventType
    /// When it happened (RFC 3339, UTC).
    public var time: String
    /// One line a person can read.
    public var summary: String
    public var certificate: NotificationCertificate?
    public var request: NotificationRequest?
    /// For `expiring`: whole days left (rounded down) and the threshold passed.
    public var daysLeft: Int?
    public var thresholdDays: Int?
    /// For `revoked`: the RFC 5280 §5.3.1 reason name.
    public var reason: String?
    /// For `renewal_failed`: what the agent said went wrong, and its name for the certificate.
    public var error: String?
    public var agentCertificate: String?
    /// Who did it (the audit trail's actor).
    public var actor: String?

    public init(id: String, type: NotificationEventType, time: Date, summary: String, certificate: NotificationCertificate? = nil,
                request: NotificationRequest? = nil, daysLeft: Int? = nil, thresholdDays: Int? = nil, reason: String? = nil,
                error: String? = nil, agentCertificate: String? = nil, actor: String? = nil) {
        self.id = id
        self.type = type
        self.time = RFC3339.string(time)
        self.summary = summary
        self.certificate = certificate
        self.request = request
        self.daysLeft = daysLeft
        self.thresholdDays = thresholdDays
        self.reason = reason
        self.error = error
        self.agentCertificate = agentCertificate
        self.actor = actor
    }

    enum CodingKeys: String, CodingKey {
        case id, type, time, summary, certificate, request, reason, error, actor
        case daysLeft = "days_left", thresholdDays = "threshold_days", agentCertificate = "agent_certificate"
    }

    /// Who routing looks at: the certificate's owner, else the request's.
    public var owner: String? { certificate?.owner ?? request?.owner }
    public var tags: [String] { certificate?.tags ?? request?.tags ?? [] }

    /// The JSON body: sorted keys, so the bytes (and the signature over them) are stable.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public static func decode(_ json: String) throws -> NotificationEvent {
        try JSONDecoder().decode(NotificationEvent.self, from: Data(json.utf8))
    }
}
