import Foundation

/// Where a delivery stands. `pending` rows are retried until they are
/// `delivered` or, after the last allowed attempt, `failed`.
public enum NotificationDeliveryStatus: String, Sendable, Codable, CaseIterable {
    case pending, delivered, failed
}

/// One message to one channel: a row of the outbox, which is also the delivery log.
///
/// Rows are written in the same transaction as what caused them (an expiry mark,
/// the audit cursor's advance), so an event is never lost between the two; the
/// `(eventID, channel)` pair is unique, so it is never queued twice either.
public struct NotificationDelivery: Sendable, Equatable, Codable {
    /// Sent as the idempotency key (`Sigil-Delivery`): the same on every retry.
    public var id: String
    /// The event this delivers; the same for every channel it goes to.
    public var eventID: String
    /// `expiring`, `issued`, `revoked`, `renewal_failed`, `approval_pending`, `test`.
    public var event: String
    public var channel: String
    /// The URL or the mail recipients, as configured when the row was queued.
    public var target: String
    /// The event as JSON (the webhook body; the mail is written from it).
    public var payload: String
    public var status: NotificationDeliveryStatus
    public var attempts: Int
    public var nextAttempt: Date
    public var lastError: String?
    public var createdAt: Date
    public var deliveredAt: Date?

    public init(id: String, eventID: String, event: String, channel: String, target: String, payload: String,
                status: NotificationDeliveryStatus = .pending, attempts: Int = 0, nextAttempt: Date, lastError: String? = nil,
                createdAt: Date, deliveredAt: Date? = nil) {
        self.id = id
        self.eventID = eventID
        self.event = event
        self.channel = channel
        self.target = target
        self.payload = payload
        self.status = status
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.lastError = lastError
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }
}

/// Filters for the delivery log; nil means no filter.
public struct NotificationDeliveryFilter: Sendable {
    public var status: NotificationDeliveryStatus?
    public var channel: String?
    public var event: String?
    /// Rows created before this row (keyset pagination, newest first).
    public var before: (createdAt: Date, id: String)?
    public var limit: Int

    public init(status: NotificationDeliveryStatus? = nil, channel: String? = nil, event: String? = nil,
                before: (createdAt: Date, id: String)? = nil, limit: Int = 100) {
        self.status = status
        self.channel = channel
        self.event = event
        self.before = before
        self.limit = limit
    }
}

/// A certificate inside the notice window, with what was already noticed about it.
public struct ExpiryCandidate: Sendable, Equatable {
    public var certificate: CertificateRecord
    /// The smallest threshold (days) already noticed, if any.
    public var noticedThreshold: Int?
    /// A later active certificate from the same issuer carries the same names (it was renewed).
    public var superseded: Bool

    public init(certificate: CertificateRecord, noticedThreshold: Int?, superseded: Bool) {
        self.certificate = certificate
        self.noticedThreshold = noticedThreshold
        self.superseded = superseded
    }
}
