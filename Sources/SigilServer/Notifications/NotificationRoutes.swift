import Foundation
import Hummingbird
import SigilAuthority
import SigilCore
import SigilStore

/// `POST /api/v1/agent/reports` and `GET /api/v1/notifications/deliveries`.
enum NotificationRoutes {
    /// The statuses an agent may report; each is a failure that becomes a `renewal_failed` event.
    static let failureStatuses: Set<String> = ["renewal_failed"]

    /// An agent says it could not renew a certificate. The report is an audit entry
    /// (`renewal.failed`), which the notifier turns into a `renewal_failed` event: 202.
    static func agentReport(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["certificate", "names", "serial", "status", "error"],
                                           required: ["certificate", "status", "error"])
        let certificate = try body.string("certificate").trimmingCharacters(in: .whitespaces)
        guard !certificate.isEmpty, certificate.count <= 256, !certificate.contains(where: \.isNewline) else {
            throw Problem(.malformedRequest, "certificate must be a name of 1 to 256 characters on one line")
        }
        let status = try body.string("status")
        guard failureStatuses.contains(status) else {
            throw Problem(.malformedRequest, "status must be one of: \(failureStatuses.sorted().joined(separator: ", "))")
        }
        let names = try body.optionalStrings("names") ?? []
        guard names.count <= 100, names.allSatisfy({ !$0.isEmpty && $0.count <= 253 && !$0.contains(where: \.isNewline) }) else {
            throw Problem(.malformedRequest, "names must be at most 100 names of 1 to 253 characters")
        }
        var serial = try body.optionalString("serial")?.filter { $0 != ":" }.lowercased()
        if serial?.isEmpty == true { serial = nil }
        if let serial, !(serial.count <= 64 && serial.allSatisfy(\.isHexDigit)) {
            throw Problem(.malformedRequest, "serial must be hexadecimal (or null)")
        }
        let text = try body.string("error")
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw Problem(.malformedRequest, "error must say what went wrong")
        }
        // An agent's error can quote a long server answer; the first 4096 characters say enough.
        let error = String(text.prefix(4096))
        let identity = context.identity!
        // A token limited to some names reports on those names only.
        if let allowed = identity.allowedNames {
            let patterns = try allowed.map(NamePattern.init)
            for name in names {
                let san = (try? SubjectAltName(parsing: name)) ?? (NameRules.parseIPAddress(name).map(SubjectAltName.ip) ?? .dns(name.lowercased()))
                guard patterns.contains(where: { $0.matches(san) }) else {
                    throw Problem(.forbidden, "this token may not report on \(name)")
                }
            }
        }
        let now = env.clock.now()
        let object = serial.map { "certificate:\($0)" } ?? "agent-certificate:\(certificate)"
        let details = ["certificate": certificate, "names": names.joined(separator: ","), "serial": serial ?? "", "status": status, "error": error]
        let entry = try await env.authority.store.write { session in
            try await session.appendAudit(AuditDraft(time: now, actor: identity.actor, action: AuditEvents.renewalFailedAction, object: object, details: details))
        }
        return try json(.accepted, ["status": "recorded", "audit_seq": entry.seq])
    }

    /// The delivery log, newest first; `before` continues a page.
    static func listDeliveries(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let q = try Query(request, allowed: ["status", "channel", "event", "limit", "before"])
        var filter = NotificationDeliveryFilter(limit: try q.int("limit", default: 100, range: 1...1000))
        if let text = q["status"] {
            guard let status = NotificationDeliveryStatus(rawValue: text) else { throw Problem(.malformedRequest, "status must be pending, delivered or failed") }
            filter.status = status
        }
        filter.channel = q["channel"]
        if let text = q["event"] {
            guard NotificationEventType(rawValue: text) != nil else {
                throw Problem(.malformedRequest, "event must be one of: \(NotificationEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.event = text
        }
        if let before = q["before"] {
            // The `next_before` of the previous page: CREATED_AT_SECONDS:ID.
            let parts = before.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let seconds = Int64(parts[0]) else { throw Problem(.malformedRequest, "before must be a next_before value") }
            filter.before = (Date(timeIntervalSince1970: Double(seconds)), String(parts[1]))
        }
        let query = filter
        let rows = try await env.authority.store.read { try await $0.notificationDeliveries(query) }
        return try encodable(.ok, DeliveryPage(items: rows.map(DeliveryReport.init), next: rows.count == query.limit ? rows.last.map { "\(Int64($0.createdAt.timeIntervalSince1970)):\($0.id)" } : nil))
    }
}

/// One row of the delivery log, as the API and `sigil notify log --json` show it.
public struct DeliveryReport: Encodable, Sendable {
    public var delivery: NotificationDelivery

    public init(_ delivery: NotificationDelivery) {
        self.delivery = delivery
    }

    enum Keys: String, CodingKey {
        case id, event, channel, target, status, attempts
        case eventID = "event_id", nextAttempt = "next_attempt", lastError = "last_error", createdAt = "created_at", deliveredAt = "delivered_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(delivery.id, forKey: .id)
        try c.encode(delivery.eventID, forKey: .eventID)
        try c.encode(delivery.event, forKey: .event)
        try c.encode(delivery.channel, forKey: .channel)
        try c.encode(delivery.target, forKey: .target)
        try c.encode(delivery.status.rawValue, forKey: .status)
        try c.encode(delivery.attempts, forKey: .attempts)
        try c.encode(delivery.status == .pending ? iso(delivery.nextAttempt) : nil, forKey: .nextAttempt)
        try c.encode(delivery.lastError, forKey: .lastError)
        try c.encode(iso(delivery.createdAt), forKey: .createdAt)
        try c.encode(delivery.deliveredAt.map(iso), forKey: .deliveredAt)
    }
}

struct DeliveryPage: Encodable {
    var items: [DeliveryReport]
    var next: String?
    enum Keys: String, CodingKey { case items, next = "next_before" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(items, forKey: .items)
        try c.encode(next, forKey: .next)
    }
}
