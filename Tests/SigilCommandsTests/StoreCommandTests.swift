import Foundation
import SigilCommands
import SigilCore
import SigilTesting
import Testing

/// `sigil migrate` and `sigil store copy` in-process, SQLite to SQLite (the PostgreSQL
/// side runs in SigilStoreTests and tests/interop/test_postgres.py).
@Suite("sigil migrate and sigil store copy")
struct StoreCommandTests {
    @Test func migrateReportsTheSchemaVersion() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["migrate", "--database", dir.file("x.db")])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out.hasPrefix("schema version ") && result.out.contains(dir.file("x.db")), "\(result.out)")
    }

    @Test func aBadDatabaseURLIsBadInputAndItsPasswordIsNotEchoed() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["migrate", "--database", "postgres://sigil:Hunter2Secret@127.0.0.1:1/db?sslmode=sometimes"])
        #expect(result.code == 2)
        #expect(!result.err.contains("Hunter2Secret") && result.err.contains("sigil:***@"), "\(result.err)")
        let unreachable = await sigil(["migrate", "--database", "postgres://sigil:Hunter2Secret@127.0.0.1:1/db?sslmode=disable"])
        #expect(unreachable.code == 1)
        #expect(!unreachable.err.contains("Hunter2Secret") && unreachable.err.split(separator: "\n").count == 1, "\(unreachable.err)")
    }

    @Test func copyIsVerbatimAndOnlyIntoAnEmptyDatabase() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let home = dir.file("home")
        let passphrase = try dir.write("a CA passphrase for the copy", to: "pass")
        let env = ["SIGIL_HOME": home]
        let initialized = await sigil(["ca", "init", "--name", "root", "--subject", "/CN=Copy Root", "--passphrase-file", passphrase], environment: env)
        #expect(initialized.code == 0, "\(initialized.err)")
        let copied = await sigil(["store", "copy", "--from", "\(home)/sigil.db", "--to", "sqlite://\(dir.file("copy.db"))", "--json"], environment: env)
        #expect(copied.code == 0, "\(copied.err)")
        let tables = try #require(try json(copied.out)["tables"] as? [String: Int])
        #expect(tables["issuers"] == 1 && (tables["audit"] ?? 0) >= 1, "\(tables)")
        let verified = await sigil(["audit", "verify", "--json"], environment: ["SIGIL_HOME": home, "SIGIL_DATABASE": dir.file("copy.db")])
        #expect(verified.code == 0, "\(verified.out)\(verified.err)")
        let entries = try json(verified.out)["entries"] as? Int
        #expect(entries == tables["audit"])
        let again = await sigil(["store", "copy", "--from", "\(home)/sigil.db", "--to", dir.file("copy.db")], environment: env)
        #expect(again.code == 1 && again.err.contains("not empty"), "\(again.err)")
        let missing = await sigil(["store", "copy", "--from", dir.file("nothing.db"), "--to", dir.file("other.db")], environment: env)
        #expect(missing.code == 2 && missing.err.contains("no SQLite database"), "\(missing.err)")
    }
}
