import Foundation
import Logging
import SigilCore
import SigilStore

/// The notification work one scheduler round does: audit entries to events,
/// expiry thresholds to notices, and due deliveries sent. Every step is safe to
/// run on two nodes at once (a leader that lost its lock without knowing it):
/// the cursor only moves by compare-and-set, a threshold is marked once by a
/// primary key, and a delivery is claimed with a conditional UPDATE before it is sent.
public struct Notifier: Sendable {
    public let store: any Store
    public let configuration: NotificationConfiguration
    public let clock: any SigilClock
    public var logger: Logger

    static let cursorName = "audit"
    static let auditBatch = 200
    public static let deliveryBatch = 50
    static let concurrentSends = 4

    public init(store: any Store, configuration: NotificationConfiguration, clock: any SigilClock = SystemClock(), logger: Logger = Logger(label: "sigil")) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
    }

    /// On the first start, events begin now: history already in the audit trail is not sent.
    public func prepare() async throws {
        try await store.write { session in
            guard try await session.notificationCursor(Self.cursorName) == nil else { return }
            let head = try await session.auditEntries(AuditFilter(limit: 1)).first?.seq ?? 0
            _ = try await session.advanceNotificationCursor(Self.cursorName, from: nil, to: head)
        }
    }

    /// One round of event collection. Errors are logged; the next round tries again.
    public func collect() async {
        do { while try await collectAuditEvents() == Self.auditBatch {} } catch { logger.warning("notifications: reading the audit trail failed: \(error)") }
        do { try await collectExpiryNotices() } catch { logger.warning("notifications: the expiry scan failed: \(error)") }
        do { try await failOrphans() } catch { logger.warning("notifications: \(error)") }
    }

    struct CursorMoved: Error {}

    /// Turns the audit entries after the cursor into queued deliveries, in one transaction
    /// with the cursor's advance. Returns how many entries it read.
    @discardableResult
    public func collectAuditEvents() async throws -> Int {
        let now = clock.now()
        let channels = configuration.channels
        do {
            return try await store.write { session in
                let cursor = try await session.notificationCursor(Self.cursorName)
                let entries = try await session.auditEntries(afterSeq: cursor ?? 0, limit: Self.auditBatch)
                guard let last = entries.last else { return 0 }
                for entry in entries {
                    guard let event = try await AuditEvents.event(for: entry, in: session, now: now) else { continue }
                    try await Self.enqueue(event, channels: channels, in: session, now: now)
                }
                guard try await session.advanceNotificationCursor(Self.cursorName, from: cursor, to: last.seq) else { throw CursorMoved() }
                return entries.count
            }
        } catch is CursorMoved {
            // Another node did this batch first; its transaction holds the deliveries.
            return 0
        }
    }

    /// Marks and queues the expiry notices that are due now.
    public func collectExpiryNotices() async throws {
        let now = clock.now()
        let thresholds = configuration.thresholds
        let channels = configuration.channels
        let horizon = now.addingTimeInterval(thresholds.horizon)
        var after: (notAfter: Date, fingerprint: String)?
        while true {
            let position = after
            let page = try await store.read { try await $0.expiryCandidates(now: now, horizon: horizon, after: position, limit: 500) }
            for candidate in page where !candidate.superseded {
                let record = candidate.certificate
                guard let threshold = thresholds.due(notBefore: record.notBefore, notAfter: record.notAfter, now: now,
                                                     noticed: candidate.noticedThreshold) else { continue }
                let daysLeft = ExpiryThresholds.daysLeft(notAfter: record.notAfter, now: now)
                let event = NotificationEvent(
                    id: "expiring-\(record.fingerprint)-\(threshold)d", type: .expiring, time: now,
                    summary: "Certificate for \(AuditEvents.display(record)) expires in \(daysLeft == 0 ? "less than a day" : "\(daysLeft) day\(daysLeft == 1 ? "" : "s")") (\(RFC3339.string(record.notAfter)))",
                    certificate: NotificationCertificate(record, now: now), daysLeft: daysLeft, thresholdDays: threshold)
                try await store.write { session in
                    // The mark and the deliveries commit together: a notice is queued once or not at all.
                    guard try await session.markExpiryNotice(fingerprint: record.fingerprint, thresholdDays: threshold, at: now) else { return }
                    try await Self.enqueue(event, channels: channels, in: session, now: now)
                }
            }
            guard let last = page.last, page.count == 500 else { return }
            after = (last.certificate.notAfter, last.certificate.fingerprint)
        }
    }

    /// One delivery per channel whose filter accepts the event.
    static func enqueue(_ event: NotificationEvent, channels: [NotificationChannel], in session: any StoreSession, now: Date) async throws {
        let payload = try event.json()
        for channel in channels where channel.filter.accepts(event) {
            _ = try await session.enqueueNotification(NotificationDelivery(
                id: UUID().uuidString.lowercased(), eventID: event.id, event: event.type.rawValue, channel: channel.name,
                target: channel.target, payload: payload, nextAttempt: now, createdAt: now))
        }
    }

    /// Sends one channel's due deliveries, a few at a time. They are claimed first, all in one
    /// transaction, so no other node sends them too. One worker per channel: a slow or dead
    /// receiver delays only its own channel.
    /// Returns how many it took.
    @discardableResult
    public func deliverDue(channel name: String, sender: NotificationSender) async throws -> Int {
        guard let channel = configuration.channel(named: name) else { return 0 }
        let now = clock.now()
        // The claim lasts longer than an attempt can take; a node that dies mid-attempt leaves it to be retried after.
        let until = now.addingTimeInterval(Double(channel.timeout.nanoseconds / 1_000_000_000) * 2 + 60)
        let claimed = try await store.write { session in
            var claimed: [NotificationDelivery] = []
            for delivery in try await session.dueNotifications(now: now, channel: name, limit: Self.deliveryBatch)
            where try await session.claimNotification(id: delivery.id, now: now, until: until) {
                claimed.append(delivery)
            }
            return claimed
        }
        await withTaskGroup(of: Void.self) { group in
            for (index, delivery) in claimed.enumerated() where !Task.isCancelled {
                if index >= Self.concurrentSends { await group.next() }
                group.addTask { await self.attempt(delivery, through: channel, sender: sender) }
            }
        }
        return claimed.count
    }

    /// Deliveries queued for a channel that is no longer configured: nothing will ever send them.
    func failOrphans() async throws {
        let known = Set(configuration.channels.map(\.name))
        let now = clock.now()
        let orphans = try await store.read { try await $0.dueNotifications(now: now, channel: nil, limit: 200) }.filter { !known.contains($0.channel) }
        for var orphan in orphans {
            orphan.status = .failed
            orphan.lastError = "channel '\(orphan.channel)' is no longer configured"
            let failed = orphan
            try await store.write { try await $0.updateNotification(failed) }
        }
    }

    /// One attempt at a claimed delivery, and its outcome recorded.
    func attempt(_ delivery: NotificationDelivery, through channel: NotificationChannel, sender: NotificationSender) async {
        var updated = delivery
        updated.attempts += 1
        do {
            try await sender.send(delivery, through: channel, now: clock.now())
            updated.status = .delivered
            updated.deliveredAt = clock.now()
            updated.lastError = nil
            logger.info("notifications: delivered \(delivery.event) to \(delivery.channel) (delivery \(delivery.id), attempt \(updated.attempts))")
        } catch {
            updated.lastError = String(describing: error).prefix(1000).description
            if updated.attempts >= configuration.retry.maxAttempts {
                updated.status = .failed
                logger.error("notifications: giving up on \(delivery.event) to \(delivery.channel) after \(updated.attempts) attempts: \(updated.lastError ?? "")")
            } else {
                updated.nextAttempt = clock.now().addingTimeInterval(configuration.retry.delay(afterAttempts: updated.attempts))
                logger.warning("notifications: \(delivery.event) to \(delivery.channel) failed (attempt \(updated.attempts)), retrying at \(RFC3339.string(updated.nextAttempt)): \(updated.lastError ?? "")")
            }
        }
        let final = updated
        do {
            try await store.write { try await $0.updateNotification(final) }
        } catch {
            logger.error("notifications: cannot record the outcome of delivery \(delivery.id): \(error)")
        }
    }
}
