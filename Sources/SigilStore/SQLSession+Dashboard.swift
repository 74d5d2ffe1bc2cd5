import Foundation
import SQLKit

/// What the dashboard reads: sessions, inventory statistics, the filtered audit trail.
extension SQLSession {
    // MARK: Sessions

    public func insertDashboardSession(_ s: DashboardSessionRecord) async throws {
        try await db.raw("""
            INSERT INTO dashboard_sessions (id, token_id, name, role, csrf, created_at, expires_at, revoked_at)
            VALUES (\(bind: s.id), \(bind: s.tokenID), \(bind: s.name), \(bind: s.role), \(bind: s.csrf), \(bind: seconds(s.createdAt)),
                    \(bind: seconds(s.expiresAt)), \(bind: s.revokedAt.map(seconds)))
            """).run()
    }

    public func dashboardSession(id: String) async throws -> DashboardSessionRecord? {
        guard let row = try await db.raw("SELECT * FROM dashboard_sessions WHERE id = \(bind: id)").first() else { return nil }
        return DashboardSessionRecord(
            id: try row.decode(column: "id", as: String.self),
            tokenID: try row.decode(column: "token_id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            role: try row.decode(column: "role", as: String.self),
            csrf: try row.decode(column: "csrf", as: String.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: date(try row.decode(column: "expires_at", as: Int64.self)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(date))
    }

    public func revokeDashboardSession(id: String, at time: Date) async throws {
        try await db.raw("UPDATE dashboard_sessions SET revoked_at = \(bind: seconds(time)) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
        // Sessions that ended long ago are of no use to anyone.
        try await db.raw("DELETE FROM dashboard_sessions WHERE expires_at < \(bind: seconds(time) - 86_400)").run()
    }

    // MARK: Statistics

    public func certificateStatistics(now: Date) async throws -> CertificateStatistics {
        var stats = CertificateStatistics()
        let t = seconds(now)
        for row in try await db.raw("""
            SELECT status, CASE WHEN not_after > \(bind: t) THEN 1 ELSE 0 END AS live, COUNT(*) AS n FROM certificates GROUP BY status, live
            """).all() {
            let n = Int(try row.decode(column: "n", as: Int64.self))
            let status = try row.decode(column: "status", as: String.self)
            let live = try row.decode(column: "live", as: Int64.self) == 1
            if status == "revoked" { stats.revoked += n } else if live { stats.active += n } else { stats.expired += n }
        }
        // Active certificates expiring in the next 26 weeks, by week (the 7/30/90-day counts come from the same rows).
        let horizon = t + 26 * 604_800
        for row in try await db.raw("""
            SELECT (not_after - \(bind: t)) / 86400 AS day, COUNT(*) AS n FROM certificates
            WHERE status = 'active' AND not_after > \(bind: t) AND not_after <= \(bind: horizon) GROUP BY day
            """).all() {
            let day = Int(try row.decode(column: "day", as: Int64.self))
            let n = Int(try row.decode(column: "n", as: Int64.self))
            if day < 7 { stats.expiring7 += n }
            if day < 30 { stats.expiring30 += n }
            if day < 90 { stats.expiring90 += n }
            if day / 7 < 26 { stats.expiryByWeek[day / 7] += n }
        }
        let startOfToday = t - t % 86_400
        let windowStart = startOfToday - 29 * 86_400
        for row in try await db.raw("""
            SELECT (created_at - \(bind: windowStart)) / 86400 AS day, COUNT(*) AS n FROM certificates
            WHERE created_at >= \(bind: windowStart) GROUP BY day
            """).all() {
            let day = Int(try row.decode(column: "day", as: Int64.self))
            if (0..<30).contains(day) { stats.issuedByDay[day] += Int(try row.decode(column: "n", as: Int64.self)) }
        }
        stats.algorithms = try await db.raw("""
            SELECT key_algorithm, key_size, COUNT(*) AS n FROM certificates WHERE status = 'active' AND not_after > \(bind: t)
            GROUP BY key_algorithm, key_size ORDER BY n DESC
            """).all().map { row in
            AlgorithmCount(algorithm: try row.decode(column: "key_algorithm", as: String.self), size: Int(try row.decode(column: "key_size", as: Int64.self)),
                           count: Int(try row.decode(column: "n", as: Int64.self)))
        }
        for row in try await db.raw("SELECT issuer, COUNT(*) AS n FROM certificates GROUP BY issuer").all() {
            stats.byIssuer[try row.decode(column: "issuer", as: String.self)] = Int(try row.decode(column: "n", as: Int64.self))
        }
        return stats
    }

    // MARK: Audit

    public func auditEntries(_ filter: AuditFilter) async throws -> [AuditEntry] {
        var sql = SQLQueryString("SELECT * FROM audit WHERE 1 = 1")
        if let actor = filter.actor { sql.appendLiteral(" AND actor = "); sql.appendInterpolation(bind: actor) }
        if let action = filter.action {
            if action.hasSuffix(".") {
                sql.appendLiteral(" AND ")
                appendPrefixMatch("action", action, to: &sql)
            } else {
                sql.appendLiteral(" AND action = ")
                sql.appendInterpolation(bind: action)
            }
        }
        if let object = filter.object { sql.appendLiteral(" AND object = "); sql.appendInterpolation(bind: object) }
        if let since = filter.since { sql.appendLiteral(" AND time_ms >= "); sql.appendInterpolation(bind: Int64(since.timeIntervalSince1970 * 1000)) }
        if let until = filter.until { sql.appendLiteral(" AND time_ms < "); sql.appendInterpolation(bind: Int64(until.timeIntervalSince1970 * 1000)) }
        if let before = filter.beforeSeq { sql.appendLiteral(" AND seq < "); sql.appendInterpolation(bind: before) }
        sql.appendLiteral(" ORDER BY seq DESC LIMIT ")
        sql.appendInterpolation(bind: filter.limit)
        return try await db.raw(sql).all().map(decodeAudit)
    }
}
