import Foundation
import NIOCore
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import SigilTesting
import Testing

@Suite("Notifier: audit events and expiry notices into the outbox")
struct NotifierTests {
    static func channels() -> [NotificationChannel] {
        let hook = WebhookTarget(url: "http://127.0.0.1:9/hook", secret: Array("k".utf8))
        return [
            NotificationChannel(name: "all", kind: .webhook(hook)),
            NotificationChannel(name: "team-a", kind: .webhook(hook), filter: NotificationFilter(owners: ["team-a"])),
            NotificationChannel(name: "expiry", kind: .webhook(hook), filter: NotificationFilter(events: [.expiring])),
        ]
    }

    func log(_ store: any Store) async throws -> [NotificationDelivery] {
        try await store.read { try await $0.notificationDeliveries(NotificationDeliveryFilter(limit: 1000)) }
    }

    @Test("history before the first start is skipped; issued, revoked, approval_pending and renewal.failed become events once")
    func auditEvents() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (old, _) = try TestAuthority.csr(["old.example.com"])
        _ = try await ca.authority.submit(IssuanceRequest(csr: old, profile: "tls-server", requester: "t"))
        let notifier = Notifier(store: ca.store, configuration: NotificationConfiguration(channels: Self.channels()), clock: ca.clock)
        try await notifier.prepare()
        try await notifier.collectAuditEvents()
        #expect(try await log(ca.store).isEmpty, "what happened before notifications started is not sent")

        let (csr, _) = try TestAuthority.csr(["www.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t", owner: "team-a")) else {
            Issue.record("not issued"); return
        }
        _ = try await ca.authority.revoke(issued.record.serial, reason: .keyCompromise, actor: "t")
        let (signing, _) = try TestAuthority.csr(["signer@example.com"], subject: "/CN=Signer/O=Example")
        guard case .pending(let request) = try await ca.authority.submit(IssuanceRequest(csr: signing, profile: "code-signing", requester: "t")) else {
            Issue.record("not pending"); return
        }
        try await ca.store.write { session in
            _ = try await session.appendAudit(AuditDraft(time: ca.clock.now(), actor: "token:agent", action: "renewal.failed", object: "certificate:\(issued.record.serial)",
                                                         details: ["certificate": "web", "names": "www.example.com", "serial": issued.record.serial,
                                                                   "status": "renewal_failed", "error": "connection refused"]))
        }
        try await notifier.collectAuditEvents()
        // A second round, or a restarted notifier, finds nothing new.
        try await notifier.collectAuditEvents()
        try await Notifier(store: ca.store, configuration: NotificationConfiguration(channels: Self.channels()), clock: ca.clock).collectAuditEvents()

        let rows = try await log(ca.store)
        let all = rows.filter { $0.channel == "all" }.map(\.event).sorted()
        #expect(all == ["approval_pending", "issued", "renewal_failed", "revoked"], "\(all)")
        let teamA = rows.filter { $0.channel == "team-a" }.map(\.event).sorted()
        #expect(teamA == ["issued", "renewal_failed", "revoked"], "team-a's certificate only: \(teamA)")
        #expect(!rows.contains { $0.channel == "expiry" })
        let revoked = try NotificationEvent.decode(try #require(rows.first { $0.event == "revoked" }).payload)
        #expect(revoked.reason == "keyCompromise")
        #expect(revoked.certificate?.fingerprint == issued.record.fingerprint)
        let pending = try NotificationEvent.decode(try #require(rows.first { $0.event == "approval_pending" }).payload)
        #expect(pending.request?.id == request.id)
        let failed = try NotificationEvent.decode(try #require(rows.first { $0.event == "renewal_failed" }).payload)
        #expect(failed.error == "connection refused" && failed.agentCertificate == "web" && failed.certificate?.owner == "team-a")
        #expect(Set(rows.map { "\($0.eventID)/\($0.channel)" }).count == rows.count && rows.allSatisfy { $0.status == .pending && $0.attempts == 0 })
    }

    @Test("each threshold once per certificate, also with a new notifier (a restart); renewed certificates are left alone")
    func expiryOnce() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let configuration = NotificationConfiguration(channels: Self.channels())
        let notifier = Notifier(store: ca.store, configuration: configuration, clock: ca.clock)
        let (csr, _) = try TestAuthority.csr(["expiring.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", days: 90, requester: "t")) else {
            Issue.record("not issued"); return
        }
        func expiring() async throws -> [Int] {
            try await log(ca.store).filter { $0.event == "expiring" && $0.channel == "expiry" }
                .map { try NotificationEvent.decode($0.payload).thresholdDays ?? -1 }.sorted()
        }
        try await notifier.collectExpiryNotices()
        #expect(try await expiring().isEmpty, "90 days left")
        // First seen 5 days before expiry: the 7-day notice only.
        ca.clock.advance(by: 85 * 86_400)
        try await notifier.collectExpiryNotices()
        try await notifier.collectExpiryNotices()
        try await Notifier(store: ca.store, configuration: configuration, clock: ca.clock).collectExpiryNotices()
        #expect(try await expiring() == [7])
        ca.clock.advance(by: 4.5 * 86_400)
        try await notifier.collectExpiryNotices()
        try await notifier.collectExpiryNotices()
        #expect(try await expiring() == [1, 7])
        let event = try NotificationEvent.decode(try #require(try await log(ca.store).first { $0.eventID.hasSuffix("-1d") && $0.channel == "expiry" }).payload)
        #expect(event.daysLeft == 0 && event.certificate?.serial == issued.record.serial)
        #expect(event.summary.contains("less than a day"))

        // A renewed certificate (a later one for the same names) gets no notice.
        let (again, _) = try TestAuthority.csr(["renewed.example.com"])
        _ = try await ca.authority.submit(IssuanceRequest(csr: again, profile: "tls-server", days: 30, requester: "t"))
        ca.clock.advance(by: 1 * 86_400)
        _ = try await ca.authority.submit(IssuanceRequest(csr: again, profile: "tls-server", days: 30, requester: "t"))
        ca.clock.advance(by: 24 * 86_400)
        try await notifier.collectExpiryNotices()
        let renewed = try await log(ca.store).filter { $0.event == "expiring" && $0.channel == "expiry" }
            .map { try NotificationEvent.decode($0.payload) }.filter { $0.certificate?.names == ["DNS:renewed.example.com"] }
        #expect(renewed.count == 1, "only the newer certificate is due: \(renewed.map(\.id))")
    }
}

@Suite("Notifier on two PostgreSQL nodes", .enabled(if: PostgresTesting.isConfigured, "SIGIL_TEST_POSTGRES_URL is not set: PostgreSQL tests SKIPPED"))
struct NotifierPostgresTests {
    @Test("two nodes collecting at the same time queue every event and notice exactly once")
    func twoNodesQueueOnce() async throws {
        let settings = try await PostgresTesting.createDatabase()
        let a = try await PostgresStore.open(settings)
        let b = try await PostgresStore.open(settings)
        do {
            try await a.migrate()
            try await b.migrate()
            let now = StoreContract.epoch.addingTimeInterval(80 * 86_400)
            let clock = FixedClock(now)
            let configuration = NotificationConfiguration(channels: NotifierTests.channels())
            let nodes = [a, b].map { Notifier(store: $0, configuration: configuration, clock: clock) }
            try await nodes[0].prepare()
            try await nodes[1].prepare()
            try await a.write { session in
                try await session.insertIssuer(StoreContract.issuer("ca"))
                for i in 0..<20 {
                    let record = StoreContract.certificate(serial: String(format: "c%03d", i), cn: "n\(i).example.com", notAfterDays: 81 + Double(i),
                                                           owner: i % 2 == 0 ? "team-a" : nil)
                    try await session.insertCertificate(record)
                    try await session.appendAudit(AuditDraft(time: now, actor: "t", action: "certificate.issued", object: "certificate:\(record.serial)",
                                                             details: ["fingerprint": record.fingerprint]))
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in nodes {
                    group.addTask {
                        for _ in 0..<5 {
                            try await node.collectAuditEvents()
                            try await node.collectExpiryNotices()
                        }
                    }
                }
                try await group.waitForAll()
            }
            let rows = try await a.read { try await $0.notificationDeliveries(NotificationDeliveryFilter(limit: 10_000)) }
            #expect(Set(rows.map { "\($0.eventID)/\($0.channel)" }).count == rows.count, "nothing queued twice")
            // 20 issued events to `all`, 10 to `team-a`; every certificate is inside 30 days: one notice each to `all` and `expiry`, 10 to `team-a`.
            #expect(rows.filter { $0.event == "issued" }.count == 30)
            #expect(rows.filter { $0.event == "expiring" }.count == 50)
            let head = try await a.read { try await $0.auditEntries(AuditFilter(limit: 1)).first?.seq }
            let cursor = try await a.read { try await $0.notificationCursor("audit") }
            #expect(cursor == head, "the cursor ends at the head of the audit trail")
        } catch {
            try? await a.close(); try? await b.close()
            await PostgresTesting.drop(settings)
            throw error
        }
        try? await a.close(); try? await b.close()
        await PostgresTesting.drop(settings)
    }
}
