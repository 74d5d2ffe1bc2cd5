import Foundation
import SQLKit

/// Moves an installation from one store to another (SQLite to PostgreSQL, or back),
/// every table verbatim: the same keys, audit sequence numbers and hashes, and the
/// CA keys still encrypted as they were, so the audit chain verifies afterwards.
///
/// The target must be empty. Everything is written in one transaction of the
/// target and the row counts are compared before COMMIT: a failure leaves the
/// target as empty as it was. Stop the servers on the source first.
public enum StoreCopy {
    public struct TableCount: Sendable, Equatable {
        public var table: String
        public var rows: Int
    }

    static let batchSize = 200

    /// Migrates both stores to this program's schema, then copies every table.
    public static func copy(from source: any Store, to target: any Store) async throws -> [TableCount] {
        try await source.migrate()
        try await target.migrate()
        let sourceVersion = try await source.schemaVersion()
        let targetVersion = try await target.schemaVersion()
        guard sourceVersion == targetVersion else {
            throw StoreError(.failed, "the source schema (version \(sourceVersion)) and the target schema (version \(targetVersion)) differ")
        }
        let tables = try await source.read { session in try await Self.tables(try sql(session)) }
        return try await target.write { session in
            let db = try sql(session)
            if db.dialect.name == "postgresql" {
                // No node may append to the audit chain while it is being filled.
                try await db.raw("SELECT pg_advisory_xact_lock(\(bind: PostgresStore.LockKey.audit))").run()
            }
            for table in tables {
                let rows = try await count(db, table.name)
                guard rows == 0 else {
                    throw StoreError(.failed, "the target is not empty (table \(table.name) has \(rows) rows); copy only into a new database")
                }
            }
            var counts: [TableCount] = []
            for table in tables {
                var copied = 0
                while true {
                    let offset = copied
                    let page = try await source.read { session in try await Self.page(try sql(session), table, offset: offset, limit: batchSize) }
                    if page.isEmpty { break }
                    try await insert(db, table, page)
                    copied += page.count
                    if page.count < batchSize { break }
                }
                let written = try await count(db, table.name)
                guard written == copied else {
                    throw StoreError(.failed, "table \(table.name): \(copied) rows read but \(written) written; nothing was copied")
                }
                counts.append(TableCount(table: table.name, rows: copied))
            }
            return counts
        }
    }

    struct Table: Sendable {
        enum Kind: Sendable { case text, integer, bytes }
        var name: String
        var columns: [(name: String, kind: Kind)]
    }

    enum Value: Sendable {
        case text(String?), integer(Int64?), bytes(Data?)
    }

    static func sql(_ session: any StoreSession) throws -> any SQLDatabase {
        guard let session = session as? SQLSession else { throw StoreError(.failed, "only SQL stores can be copied") }
        return session.db
    }

    /// The application's tables and their columns, as the database describes them.
    static func tables(_ db: any SQLDatabase) async throws -> [Table] {
        var tables: [Table] = []
        if db.dialect.name == "sqlite" {
            let names = try await db.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all()
                .map { try $0.decode(column: "name", as: String.self) }
            for name in names where name != "schema_migrations" {
                let columns = try await db.raw("SELECT name, type FROM pragma_table_info(\(bind: name)) ORDER BY cid").all().map {
                    (try $0.decode(column: "name", as: String.self), kind(try $0.decode(column: "type", as: String.self)))
                }
                tables.append(Table(name: name, columns: columns))
            }
        } else {
            let names = try await db.raw("""
                SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name
                """).all().map { try $0.decode(column: "table_name", as: String.self) }
            for name in names where name != "schema_migrations" {
                let columns = try await db.raw("""
                    SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = \(bind: name)
                    ORDER BY ordinal_position
                    """).all().map { (try $0.decode(column: "column_name", as: String.self), kind(try $0.decode(column: "data_type", as: String.self))) }
                tables.append(Table(name: name, columns: columns))
            }
        }
        return tables
    }

    static func kind(_ declared: String) -> Table.Kind {
        let type = declared.uppercased()
        if type.contains("INT") { return .integer }
        if type.contains("BLOB") || type.contains("BYTEA") { return .bytes }
        return .text
    }

    static func count(_ db: any SQLDatabase, _ table: String) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM \(ident: table)").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Rows in a total order (every column), so pages neither skip nor repeat a row.
    static func page(_ db: any SQLDatabase, _ table: Table, offset: Int, limit: Int) async throws -> [[Value]] {
        var query = SQLQueryString("SELECT * FROM ")
        query.appendInterpolation(ident: table.name)
        query.appendLiteral(" ORDER BY ")
        query.appendLiteral((1...table.columns.count).map(String.init).joined(separator: ", "))
        query.appendLiteral(" LIMIT ")
        query.appendInterpolation(bind: limit)
        query.appendLiteral(" OFFSET ")
        query.appendInterpolation(bind: offset)
        return try await db.raw(query).all().map { row in
            try table.columns.map { column in
                switch column.kind {
                case .text: return .text(try row.decode(column: column.name, as: String?.self))
                case .integer: return .integer(try row.decode(column: column.name, as: Int64?.self))
                case .bytes: return .bytes(try row.decode(column: column.name, as: Data?.self))
                }
            }
        }
    }

    static func insert(_ db: any SQLDatabase, _ table: Table, _ rows: [[Value]]) async throws {
        var query = SQLQueryString("INSERT INTO ")
        query.appendInterpolation(ident: table.name)
        query.appendLiteral(" (")
        for (i, column) in table.columns.enumerated() {
            if i > 0 { query.appendLiteral(", ") }
            query.appendInterpolation(ident: column.name)
        }
        query.appendLiteral(") VALUES ")
        for (r, row) in rows.enumerated() {
            query.appendLiteral(r == 0 ? "(" : ", (")
            for (i, value) in row.enumerated() {
                if i > 0 { query.appendLiteral(", ") }
                switch value {
                case .text(let text): query.appendInterpolation(bind: text)
                case .integer(let number): query.appendInterpolation(bind: number)
                case .bytes(let data): query.appendInterpolation(bind: data)
                }
            }
            query.appendLiteral(")")
        }
        try await db.raw(query).run()
    }
}

extension DatabaseURL {
    /// Opens the store this URL names (not yet migrated).
    public func open() async throws -> any Store {
        switch self {
        case .sqlite(let path): return try await SQLiteStore.open(path: path)
        case .postgres(let settings): return try await PostgresStore.open(settings)
        }
    }
}
