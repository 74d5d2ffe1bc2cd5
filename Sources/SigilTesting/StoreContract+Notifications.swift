import Foundation
import SigilCore
import SigilStore

extension StoreContract {
    /// The notifier's "exactly once" rules live in the store: the cursor moves by compare-and-set,
    /// a threshold is marked once, an event is queued once per channel, and a delivery is claimed once.
    static func notifications(_ store: any Store) async throws {
        try await store.write { try await $0.insertIssuer(issuer("ca")) }
        // Cursor.
        try expect(try await store.read { try await $0.notificationCursor("audit") } == nil, "no cursor before the first start")
        try expect(try await store.write { try await $0.advanceNotificationCursor("audit", from: nil, to: 5) }, "the first writer sets the cursor")
        try expect(!(try await store.write { try await $0.advanceNotificationCursor("audit", from: nil, to: 9) }), "a second first start does not move it")
        try expect(!(try await store.write { try await $0.advanceNotificationCursor("audit", from: 4, to: 9) }), "a stale position does not move it")
        try expect(try await store.write { try await $0.advanceNotificationCursor("audit", from: 5, to: 9) }, "the current position moves it")
        try expect(try await store.read { try await $0.notificationCursor("audit") } == 9, "the cursor reads back")

        // Expiry candidates and marks.
        let now = epoch.addingTimeInterval(80 * 86_400)
        let soon = certificate(serial: "a1", cn: "soon.example.com", notAfterDays: 85)        // 5 days left
        let later = certificate(serial: "a2", cn: "later.example.com", notAfterDays: 100)     // 20 days left
        let far = certificate(serial: "a3", cn: "far.example.com", notAfterDays: 200)         // outside the window
        var renewed = certificate(serial: "a4", cn: "later.example.com", notAfterDays: 180)   // replaces `later`
        renewed.fingerprint = String(repeating: "f", count: 64)
        var revoked = certificate(serial: "a5", cn: "gone.example.com", notAfterDays: 84)
        revoked.storedStatus = .revoked
        try await store.write { [renewed, revoked] session in
            for record in [soon, later, far, renewed, revoked] { try await session.insertCertificate(record) }
        }
        let horizon = now.addingTimeInterval(30 * 86_400)
        var candidates = try await store.read { try await $0.expiryCandidates(now: now, horizon: horizon, after: nil, limit: 10) }
        try expect(candidates.map(\.certificate.serial) == ["a1", "a2"], "active certificates inside the window, by not_after: \(candidates.map(\.certificate.serial))")
        try expect(candidates[0].noticedThreshold == nil && !candidates[0].superseded, "nothing noticed yet, not replaced")
        try expect(candidates[1].superseded, "a later certificate for the same names replaces the earlier one")
        let page = try await store.read { try await $0.expiryCandidates(now: now, horizon: horizon, after: (soon.notAfter, soon.fingerprint), limit: 10) }
        try expect(page.map(\.certificate.serial) == ["a2"], "keyset paging continues after a position")

        try expect(try await store.write { try await $0.markExpiryNotice(fingerprint: soon.fingerprint, thresholdDays: 7, at: now) }, "the first mark is new")
        try expect(!(try await store.write { try await $0.markExpiryNotice(fingerprint: soon.fingerprint, thresholdDays: 7, at: now) }), "the same mark twice is not")
        try expect(try await store.write { try await $0.markExpiryNotice(fingerprint: soon.fingerprint, thresholdDays: 14, at: now) }, "another threshold is")
        candidates = try await store.read { try await $0.expiryCandidates(now: now, horizon: horizon, after: nil, limit: 10) }
        try expect(candidates[0].noticedThreshold == 7, "the smallest noticed threshold reads back: \(String(describing: candidates[0].noticedThreshold))")

        // A failed mark inside a transaction leaves the transaction usable (no aborted transaction on PostgreSQL).
        try await store.write { session in
            _ = try await session.markExpiryNotice(fingerprint: soon.fingerprint, thresholdDays: 7, at: now)
            _ = try await session.markExpiryNotice(fingerprint: soon.fingerprint, thresholdDays: 1, at: now)
        }
        try expect(try await store.read { try await $0.expiryCandidates(now: now, horizon: horizon, after: nil, limit: 10) }[0].noticedThreshold == 1,
                   "a duplicate mark does not spoil its transaction")

        // Outbox.
        @Sendable func delivery(_ id: String, event: String = "e1", channel: String = "hook", created: Double = 0) -> NotificationDelivery {
            NotificationDelivery(id: id, eventID: event, event: "expiring", channel: channel, target: "https://hooks.example.com", payload: "{}",
                                 nextAttempt: now, createdAt: now.addingTimeInterval(created))
        }
        try expect(try await store.write { try await $0.enqueueNotification(delivery("d1")) }, "a delivery is queued")
        try expect(!(try await store.write { try await $0.enqueueNotification(delivery("d2")) }), "the same event and channel are queued once")
        try expect(try await store.write { try await $0.enqueueNotification(delivery("d3", channel: "mail", created: 1)) }, "another channel is queued")
        try expect(try await store.write { try await $0.enqueueNotification(delivery("d4", event: "e2", created: 2)) }, "another event is queued")
        var due = try await store.read { try await $0.dueNotifications(now: now, channel: nil, limit: 10) }
        try expect(Set(due.map(\.id)) == ["d1", "d3", "d4"], "due deliveries: \(due.map(\.id))")
        let dueForMail = try await store.read { try await $0.dueNotifications(now: now, channel: "mail", limit: 10) }
        try expect(dueForMail.map(\.id) == ["d3"], "due deliveries of one channel: \(dueForMail.map(\.id))")
        let notYet = try await store.read { try await $0.dueNotifications(now: now.addingTimeInterval(-1), channel: nil, limit: 10) }
        try expect(notYet.isEmpty, "nothing is due before its next attempt")
        try expect(try await store.write { try await $0.claimNotification(id: "d1", now: now, until: now.addingTimeInterval(60)) }, "the first claim wins")
        try expect(!(try await store.write { try await $0.claimNotification(id: "d1", now: now, until: now.addingTimeInterval(60)) }), "a second claim loses")
        due = try await store.read { try await $0.dueNotifications(now: now, channel: nil, limit: 10) }
        try expect(!due.map(\.id).contains("d1"), "a claimed delivery is not due until its lease ends")
        var done = delivery("d1")
        done.status = .delivered
        done.attempts = 2
        done.deliveredAt = now.addingTimeInterval(5)
        done.lastError = nil
        try await store.write { [done] in try await $0.updateNotification(done) }
        var failed = delivery("d3", channel: "mail", created: 1)
        failed.status = .failed
        failed.attempts = 8
        failed.lastError = "550 no such user"
        try await store.write { [failed] in try await $0.updateNotification(failed) }
        let log = try await store.read { try await $0.notificationDeliveries(NotificationDeliveryFilter()) }
        try expect(log.map(\.id) == ["d4", "d3", "d1"], "the log is newest first: \(log.map(\.id))")
        try expect(log[2] == done, "an update reads back: \(log[2])")
        try expect(log[1].lastError == "550 no such user" && log[1].status == .failed, "the last error reads back")
        let onlyFailed = try await store.read { try await $0.notificationDeliveries(NotificationDeliveryFilter(status: .failed)) }
        try expect(onlyFailed.map(\.id) == ["d3"], "filter by status")
        let byChannel = try await store.read { try await $0.notificationDeliveries(NotificationDeliveryFilter(channel: "hook", limit: 1)) }
        try expect(byChannel.map(\.id) == ["d4"], "filter by channel, with a limit")
        let next = try await store.read { try await $0.notificationDeliveries(NotificationDeliveryFilter(channel: "hook", before: (log[0].createdAt, "d4"))) }
        try expect(next.map(\.id) == ["d1"], "keyset paging of the log: \(next.map(\.id))")
    }
}
