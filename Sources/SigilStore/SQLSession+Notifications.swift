import Foundation
import SQLKit

/// Notifications: the audit cursor, expiry marks and the outbox. Every
/// "only once" rule is a key or a conditional statement in the database, so it
/// holds across restarts and when scheduler leadership moves between nodes.
extension SQLSession {
    // MARK: Cursor

    public func notificationCursor(_ name: String) async throws -> Int64? {
        try await db.raw("SELECT seq FROM notification_cursors WHERE name = \(bind: name)").first()?.decode(column: "seq", as: Int64.self)
    }

    public func advanceNotificationCursor(_ name: String, from: Int64?, to: Int64) async throws -> Bool {
        let rows: [any SQLRow]
        if let from {
            // Compare-and-set: a node that read an old position moves nothing.
            rows = try await db.raw("""
                UPDATE notification_cursors SET seq = \(bind: to) WHERE name = \(bind: name) AND seq = \(bind: from) RETURNING seq
                """).all()
        } else {
            rows = try await db.raw("""
                INSERT INTO notification_cursors (name, seq) VALUES (\(bind: name), \(bind: to)) ON CONFLICT (name) DO NOTHING RETURNING seq
                """).all()
        }
        return !rows.isEmpty
    }

    // MARK: Expiry

    /// "Replaced" is looked up through the name index (the certificate's own names, then the other
    /// certificates with those names), so it costs a few index probes per candidate, not a scan.
    public func expiryCandidates(now: Date, horizon: Date, after: (notAfter: Date, fingerprint: String)?, limit: Int) async throws -> [ExpiryCandidate] {
        var sql = SQLQueryString("""
            SELECT c.*,
                (SELECT MIN(m.threshold_days) FROM notification_marks m WHERE m.fingerprint = c.fingerprint) AS noticed,
                CASE WHEN EXISTS (SELECT 1 FROM certificate_names mine
                    JOIN certificate_names other ON other.name = mine.name
                    JOIN certificates n ON n.fingerprint = other.fingerprint
                    WHERE mine.fingerprint = c.fingerprint AND n.issuer = c.issuer AND n.sans = c.sans AND n.status = 'active'
                    AND n.not_after > c.not_after) THEN 1 ELSE 0 END AS newer
            FROM certificates c WHERE c.status = 'active' AND c.not_after > 
            """)
        sql.appendInterpolation(bind: seconds(now))
        sql.appendLiteral(" AND c.not_after <= ")
        sql.appendInterpolation(bind: seconds(horizon))
        if let after {
            sql.appendLiteral(" AND (c.not_after > ")
            sql.appendInterpolation(bind: seconds(after.notAfter))
            sql.appendLiteral(" OR (c.not_after = ")
            sql.appendInterpolation(bind: seconds(after.notAfter))
            sql.appendLiteral(" AND c.fingerprint > ")
            sql.appendInterpolation(bind: after.fingerprint)
            sql.appendLiteral("))")
        }
        sql.appendLiteral(" ORDER BY c.not_after, c.fingerprint LIMIT ")
        sql.appendInterpolation(bind: limit)
        return try await db.raw(sql).all().map { row in
            ExpiryCandidate(certificate: try decodeCertificate(row),
                            noticedThreshold: try row.decode(column: "noticed", as: Int64?.self).map(Int.init),
                            superseded: try row.decode(column: "newer", as: Int64.self) > 0)
        }
    }

    public func markExpiryNotice(fingerprint: String, thresholdDays: Int, at time: Date) async throws -> Bool {
        // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed
        // statement would abort the whole transaction.
        !(try await db.raw("""
            INSERT INTO notification_marks (fingerprint, threshold_days, created_at)
            VALUES (\(bind: fingerprint.lowercased()), \(bind: thresholdDays), \(bind: seconds(time)))
            ON CONFLICT (fingerprint, threshold_days) DO NOTHING RETURNING threshold_days
            """).all().isEmpty)
    }

    // MARK: Outbox

    public func enqueueNotification(_ d: NotificationDelivery) async throws -> Bool {
        !(try await db.raw("""
            INSERT INTO notification_outbox (id, event_id, event, channel, target, payload, status, attempts, next_attempt, last_error,
                created_at, delivered_at)
            VALUES (\(bind: d.id), \(bind: d.eventID), \(bind: d.event), \(bind: d.channel), \(bind: d.target), \(bind: d.payload),
                \(bind: d.status.rawValue), \(bind: d.attempts), \(bind: seconds(d.nextAttempt)), \(bind: d.lastError),
                \(bind: seconds(d.createdAt)), \(bind: d.deliveredAt.map(seconds)))
            ON CONFLICT (event_id, channel) DO NOTHING RETURNING id
            """).all().isEmpty)
    }

    public func dueNotifications(now: Date, channel: String?, limit: Int) async throws -> [NotificationDelivery] {
        var sql = SQLQueryString("SELECT * FROM notification_outbox WHERE status = 'pending' AND next_attempt <= ")
        sql.appendInterpolation(bind: seconds(now))
        if let channel { sql.appendLiteral(" AND channel = "); sql.appendInterpolation(bind: channel) }
        sql.appendLiteral(" ORDER BY next_attempt, created_at, id LIMIT ")
        sql.appendInterpolation(bind: limit)
        return try await db.raw(sql).all().map(decodeDelivery)
    }

    public func claimNotification(id: String, now: Date, until: Date) async throws -> Bool {
        !(try await db.raw("""
            UPDATE notification_outbox SET next_attempt = \(bind: seconds(until))
            WHERE id = \(bind: id) AND status = 'pending' AND next_attempt <= \(bind: seconds(now)) RETURNING id
            """).all().isEmpty)
    }

    public func updateNotification(_ d: NotificationDelivery) async throws {
        try await db.raw("""
            UPDATE notification_outbox SET status = \(bind: d.status.rawValue), attempts = \(bind: d.attempts),
                next_attempt = \(bind: seconds(d.nextAttempt)), last_error = \(bind: d.lastError), delivered_at = \(bind: d.deliveredAt.map(seconds))
            WHERE id = \(bind: d.id)
            """).run()
    }

    public func notificationDeliveries(_ filter: NotificationDeliveryFilter) async throws -> [NotificationDelivery] {
        var sql = SQLQueryString("SELECT * FROM notification_outbox WHERE 1 = 1")
        if let status = filter.status { sql.appendLiteral(" AND status = "); sql.appendInterpolation(bind: status.rawValue) }
        if let channel = filter.channel { sql.appendLiteral(" AND channel = "); sql.appendInterpolation(bind: channel) }
        if let event = filter.event { sql.appendLiteral(" AND event = "); sql.appendInterpolation(bind: event) }
        if let before = filter.before {
            sql.appendLiteral(" AND (created_at < ")
            sql.appendInterpolation(bind: seconds(before.createdAt))
            sql.appendLiteral(" OR (created_at = ")
            sql.appendInterpolation(bind: seconds(before.createdAt))
            sql.appendLiteral(" AND id < ")
            sql.appendInterpolation(bind: before.id)
            sql.appendLiteral("))")
        }
        sql.appendLiteral(" ORDER BY created_at DESC, id DESC LIMIT ")
        sql.appendInterpolation(bind: filter.limit)
        return try await db.raw(sql).all().map(decodeDelivery)
    }

    private func decodeDelivery(_ row: any SQLRow) throws -> NotificationDelivery {
        NotificationDelivery(
            id: try row.decode(column: "id", as: String.self),
            eventID: try row.decode(column: "event_id", as: String.self),
            event: try row.decode(column: "event", as: String.self),
            channel: try row.decode(column: "channel", as: String.self),
            target: try row.decode(column: "target", as: String.self),
            payload: try row.decode(column: "payload", as: String.self),
            status: NotificationDeliveryStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .failed,
            attempts: Int(try row.decode(column: "attempts", as: Int64.self)),
            nextAttempt: date(try row.decode(column: "next_attempt", as: Int64.self)),
            lastError: try row.decode(column: "last_error", as: String?.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            deliveredAt: try row.decode(column: "delivered_at", as: Int64?.self).map(date))
    }
}
