import Foundation
import SigilAuthority
import SigilCore
@testable import SigilStore
import SigilTesting
import SQLKit
import Testing

/// Each test makes its own database on the server `SIGIL_TEST_POSTGRES_URL` names, and drops it.
func withPostgres(_ body: (DatabaseURL.PostgresSettings) async throws -> Void) async throws {
    let settings = try await PostgresTesting.createDatabase()
    do {
        try await body(settings)
    } catch {
        await PostgresTesting.drop(settings)
        throw error
    }
    await PostgresTesting.drop(settings)
}

func openedPostgres(_ settings: DatabaseURL.PostgresSettings) async throws -> PostgresStore {
    let store = try await PostgresStore.open(settings)
    try await store.migrate()
    return store
}

@Suite("PostgreSQL store contract", .enabled(if: PostgresTesting.isConfigured, "SIGIL_TEST_POSTGRES_URL is not set: PostgreSQL tests SKIPPED"))
struct PostgresStoreContractTests {
    @Test("contract", arguments: StoreContract.checks.map(\.name))
    func contract(name: String) async throws {
        try await withPostgres { settings in
            let store = try await openedPostgres(settings)
            let check = StoreContract.checks.first { $0.name == name }!.run
            do {
                try await check(store)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
        }
    }

    @Test func severalNodesMigrateTogetherOnce() async throws {
        try await withPostgres { settings in
            var stores: [PostgresStore] = []
            for _ in 0..<4 { stores.append(try await PostgresStore.open(settings)) }
            let all = stores
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in all { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            #expect(try await all[0].schemaVersion() == Migrations.latest)
            let rows = try await all[0].read { session in
                try await (session as! SQLSession).db.raw("SELECT COUNT(*) AS n FROM schema_migrations").first()!.decode(column: "n", as: Int.self)
            }
            #expect(rows == Migrations.all.count)
            for store in all { try await store.close() }
        }
    }

    @Test func twoNodesWriteOneChainAndUniqueSerials() async throws {
        try await withPostgres { settings in
            let a = try await openedPostgres(settings)
            let b = try await PostgresStore.open(settings)
            let perNode = 60
            // Both nodes try the same serials: exactly one of each pair is recorded.
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (node, store) in [a, b].enumerated() {
                    for i in 0..<perNode {
                        group.addTask {
                            do {
                                try await store.write { session in
                                    try await session.appendAudit(AuditDraft(time: StoreContract.epoch, actor: "node\(node)", action: "certificate.issued", object: "\(i)"))
                                    try await session.insertCertificate(StoreContract.certificate(serial: String(format: "d%05d", i),
                                                                                                  fingerprint: String(format: "%064d", node * 1000 + i)))
                                }
                                return true
                            } catch let error as StoreError where error.code == .duplicate {
                                return false
                            }
                        }
                    }
                }
                var recorded = 0
                for try await ok in group where ok { recorded += 1 }
                return recorded
            }
            #expect(outcomes == perNode)
            #expect(try await a.read { try await $0.countCertificates() } == perNode)
            let entries = try await b.read { try await $0.auditEntries(afterSeq: 0, limit: 10_000) }
            var verifier = AuditChain.Verifier()
            entries.forEach { verifier.feed($0) }
            #expect(verifier.result.ok && entries.count == perNode, "\(verifier.result)")
            try await a.close()
            try await b.close()
        }
    }

    @Test func crlNumbersNeverRepeatAcrossNodes() async throws {
        try await withPostgres { settings in
            let a = try await openedPostgres(settings)
            let b = try await PostgresStore.open(settings)
            try await a.write { try await $0.insertIssuer(StoreContract.issuer("ca")) }
            let numbers = try await withThrowingTaskGroup(of: Int64.self) { group in
                for i in 0..<80 {
                    let store = i % 2 == 0 ? a : b
                    group.addTask { try await store.write { try await $0.nextCRLNumber(issuer: "ca") } }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(Set(numbers).count == 80 && numbers.max() == 80)
            try await a.close()
            try await b.close()
        }
    }

    @Test func schedulerLockHasOneHolderAndMovesWhenItGoes() async throws {
        try await withPostgres { settings in
            let a = try await openedPostgres(settings)
            let b = try await PostgresStore.open(settings)
            let lockA = a.schedulerLock(named: "scheduled-work")
            let lockB = b.schedulerLock(named: "scheduled-work")
            #expect(await lockA.acquire())
            #expect(await lockA.acquire(), "the holder keeps it")
            #expect(!(await lockB.acquire()))
            let other = b.schedulerLock(named: "other-work")
            #expect(await other.acquire(), "another name is another lock")
            await other.release()
            // The leader's connection dies (as when its process is killed): the lock is free.
            try await PostgresTesting.admin(settings, """
                SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """)
            // pg_terminate_backend only signals the backend; the lock goes when that process has
            // exited, which on a loaded machine may take a while: ask until then (30 s at most).
            var takenOver = false
            for _ in 0..<300 where !takenOver {
                takenOver = await lockB.acquire()
                if !takenOver { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(takenOver, "another node takes over")
            #expect(!(await lockA.acquire()), "the old leader notices it lost the lock")
            await lockB.release()
            #expect(await lockA.acquire(), "a released lock is free at once")
            await lockA.release()
            try await a.close()
            try await b.close()
        }
    }

    @Test func copiesAnSQLiteInstallationVerbatim() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        for name in ["a.example.com", "b.example.com", "c.example.com"] {
            let (csr, _) = try TestAuthority.csr([name])
            _ = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t"))
        }
        let first = try await ca.store.read { try await $0.certificates(CertificateQuery(now: TestAuthority.defaultNow)) }[0]
        _ = try await ca.authority.revoke(first.serial, reason: .keyCompromise, actor: "t")
        try await ca.authority.generateCRL(issuer: "intermediate", actor: "t")
        _ = try await AccessTokens(store: ca.store).create(name: "ci", role: .requester, expiresIn: nil, allowedNames: [], actor: "t")
        try await withPostgres { settings in
            let target = try await PostgresStore.open(settings)
            let counts = try await StoreCopy.copy(from: ca.store, to: target)
            let byTable = Dictionary(uniqueKeysWithValues: counts.map { ($0.table, $0.rows) })
            let sourceCertificates = try await ca.store.read { try await $0.countCertificates() }
            #expect(byTable["certificates"] == sourceCertificates && sourceCertificates >= 3)
            #expect(byTable["issuers"] == 2 && byTable["tokens"] == 1 && byTable["crls"] == 1, "\(byTable)")
            let sourceAudit = try await ca.store.read { try await $0.auditEntries(afterSeq: 0, limit: 1000) }
            let targetAudit = try await target.read { try await $0.auditEntries(afterSeq: 0, limit: 1000) }
            #expect(sourceAudit == targetAudit && !targetAudit.isEmpty)
            let authority = CertificateAuthority(store: target)
            #expect(try await authority.verifyAudit().ok)
            #expect(try await target.read { try await $0.issuers() } == (try await ca.store.read { try await $0.issuers() }))
            #expect(try await target.read { try await $0.latestCRL(issuer: "intermediate") } == (try await ca.store.read { try await $0.latestCRL(issuer: "intermediate") }))
            // The keys came along encrypted: the same passphrase unlocks them on the target.
            try await authority.unlock("intermediate", passphrase: TestAuthority.passphrase)
            // A second copy finds the target full and changes nothing.
            let error = await #expect(throws: StoreError.self) { try await StoreCopy.copy(from: ca.store, to: target) }
            #expect(error?.message.contains("not empty") == true)
            #expect(try await target.read { try await $0.countCertificates() } == sourceCertificates)
            try await target.close()
        }
    }

    @Test func aFailedCopyLeavesTheTargetEmpty() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        // A row that cannot be read back as its column's type (SQLite stores it anyway), in a table
        // copied after the audit table: the copy fails halfway and must leave nothing behind.
        let (csr, _) = try TestAuthority.csr(["a.example.com"])
        _ = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t"))
        try await ca.store.write { session in
            try await (session as! SQLSession).execute(unsafeSQL: "UPDATE certificates SET key_size = 'not a number'")
        }
        try await withPostgres { settings in
            let target = try await PostgresStore.open(settings)
            await #expect(throws: (any Error).self) { try await StoreCopy.copy(from: ca.store, to: target) }
            #expect(try await target.read { try await $0.countCertificates() } == 0)
            #expect(try await target.read { try await $0.issuers() }.isEmpty)
            #expect(try await target.read { try await $0.auditEntries(afterSeq: 0, limit: 10) }.isEmpty)
            try await target.close()
        }
    }

    @Test func refusesASchemaFromTheFuture() async throws {
        try await withPostgres { settings in
            let store = try await openedPostgres(settings)
            try await store.write { session in
                try await (session as! SQLSession).db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)").run()
            }
            let error = await #expect(throws: StoreError.self) { try await store.migrate() }
            #expect(error?.code == .schemaTooNew)
            try await store.close()
        }
    }

    @Test func anUnreachableDatabaseIsUnavailableAndNamedWithoutItsPassword() async throws {
        guard case .postgres(var settings) = try DatabaseURL.parse(PostgresTesting.url!) else { return }
        settings.password = "wrong-secret"
        let error = await #expect(throws: StoreError.self) { _ = try await PostgresStore.open(settings) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("wrong-secret") == false)
        settings.port = 1
        let refused = await #expect(throws: StoreError.self) { _ = try await PostgresStore.open(settings) }
        #expect(refused?.code == .unavailable)
    }
}

@Suite("Database URLs")
struct DatabaseURLTests {
    @Test func parsesPostgresAndSQLite() throws {
        guard case .postgres(let p) = try DatabaseURL.parse("postgres://sigil:s3cr%40t@db.example.com:6543/pki?sslmode=verify-full&sslrootcert=/etc/ca.pem&pool_max=4") else {
            Issue.record("not postgres"); return
        }
        #expect(p.host == "db.example.com" && p.port == 6543 && p.username == "sigil" && p.password == "s3cr@t" && p.database == "pki")
        #expect(p.tls == .verifyFull && p.rootCertificatePath == "/etc/ca.pem" && p.maximumConnections == 4)
        #expect(!p.description.contains("s3cr"))
        #expect(try DatabaseURL.parse("/var/lib/sigil/sigil.db") == .sqlite(path: "/var/lib/sigil/sigil.db"))
        #expect(try DatabaseURL.parse("sqlite:///tmp/x.db") == .sqlite(path: "/tmp/x.db"))
        guard case .postgres(let d) = try DatabaseURL.parse("postgresql://u@h/db") else { Issue.record("not postgres"); return }
        #expect(d.tls == .disable && d.port == 5432 && d.password == nil)
    }

    @Test func refusesWhatItCannotHonour() {
        for bad in ["postgres://u:p@h/db?sslmode=prefer", "postgres://u:p@h/db?sslmode=bogus", "postgres://u:p@h/db?nope=1", "mysql://u:p@h/db"] {
            #expect(throws: StoreError.self) { try DatabaseURL.parse(bad) }
            do { _ = try DatabaseURL.parse(bad) } catch let error as StoreError { #expect(!error.message.contains(":p@"), "\(error.message)") } catch {}
        }
    }

    @Test func redactsPasswords() {
        #expect(DatabaseURL.redact("postgres://sigil:hunter2@h:5432/db?sslmode=disable") == "postgres://sigil:***@h:5432/db?sslmode=disable")
        #expect(DatabaseURL.redact("postgres://sigil@h/db") == "postgres://sigil@h/db")
        #expect(DatabaseURL.redact("/path/sigil.db") == "/path/sigil.db")
    }
}
