import Foundation
import SQLKit

/// Applies `Migrations.all` on any backend, inside the caller's transaction.
///
/// Every migration not yet recorded in `schema_migrations` is applied, in version
/// order, so numbering gaps (versions taken on other branches) are harmless and
/// a version merged in later is still applied. A database that records a
/// version newer than this program knows is refused.
enum Migrator {
    static func apply(_ db: any SQLDatabase) async throws {
        try await db.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)").run()
        let applied = Set(try await db.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int.self) })
        if let newest = applied.max(), newest > Migrations.latest {
            throw StoreError(.schemaTooNew, "the database schema (version \(newest)) is newer than this Sigil knows (\(Migrations.latest)); upgrade Sigil")
        }
        for migration in Migrations.all.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            for statement in migration.statements {
                try await db.raw(SQLQueryString(statement)).run()
            }
            try await Migrations.backfills[migration.version]?(SQLSession(db))
            try await db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: migration.version), \(bind: seconds(Date())))").run()
        }
    }

    static func version(_ db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int?.self) ?? 0
    }
}

extension Store {
    /// The newest schema version the database records (0 before any migration).
    public func schemaVersion() async throws -> Int {
        try await read { session in
            guard let session = session as? SQLSession else { throw StoreError(.failed, "this store has no SQL schema") }
            return try await Migrator.version(session.db)
        }
    }
}
