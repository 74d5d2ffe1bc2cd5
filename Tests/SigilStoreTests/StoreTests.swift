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
