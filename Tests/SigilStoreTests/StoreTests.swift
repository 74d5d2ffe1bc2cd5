import Foundation
@testable import SigilStore
import SigilTesting
import SQLKit
import Testing

@Suite("SQLite store contract")
struct SQLiteStoreContractTests {
    @Test("contract", arguments: StoreContract.checks.map(\.name))
    func contract(name: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try await SQLiteStore.open(path: dir.file("sigil.db"))
        try await store.migrate()
        let check = StoreContract.checks.first { $0.name == name }!.run
        do {
            try await check(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test func reopeningKeepsEverythingAndTheDatabaseIsSound() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let first = try await SQLiteStore.open(path: dir.file("sigil.db"))
        try await first.migrate()
        try await first.write { try await $0.insertCertificate(StoreContract.certificate(serial: "ab")) }
        try await first.close()
        let second = try await SQLiteStore.open(path: dir.file("sigil.db"))
        try await second.migrate()
        #expect(try await second.read { try await $0.countCertificates() } == 1)
        #expect(try await second.integrityCheck().isEmpty)
        try await second.close()
    }

    /// SQLiteNIO frees a connection under a statement another thread runs on it; the store's
    /// close waits for the work in flight instead, and refuses work that comes after.
    @Test func closeWaitsForWorkInFlightAndRefusesLaterWork() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try await SQLiteStore.open(path: dir.file("sigil.db"))
        try await store.migrate()
        for i in 0..<50 { try await store.write { try await $0.insertCertificate(StoreContract.certificate(serial: String(format: "%02x", i + 16))) } }
        let started = AsyncStream<Void>.makeStream()
        let reads = Task {
            var counted = 0
            for i in 0..<200 {
                if i == 5 { started.continuation.yield() }
                do {
                    counted = try await store.read { session in try await session.countCertificates() }
                } catch let error as StoreError where error.code == .unavailable {
                    return (counted, true)
                }
            }
            return (counted, false)
        }
        for await _ in started.stream { break }
        try await store.close()
        let (counted, refused) = try await reads.value
        #expect(counted == 50, "reads before the close saw every row")
        #expect(refused, "a read after the close is refused as unavailable")
        let error = await #expect(throws: StoreError.self) { try await store.write { try await $0.countCertificates() } }
        #expect(error?.code == .unavailable)
    }

    @Test func refusesASchemaFromTheFuture() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try await SQLiteStore.open(path: dir.file("sigil.db"))
        try await store.migrate()
        try await store.write { session in
            try await (session as! SQLSession).db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)").run()
        }
        let error = await #expect(throws: StoreError.self) { try await store.migrate() }
        #expect(error?.code == .schemaTooNew)
        try await store.close()
    }
}
