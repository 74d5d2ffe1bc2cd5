import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization

/// The embedded default: SQLite in WAL mode with `synchronous=FULL`, so a
/// committed write survives a crash or power loss.
///
/// Writes go through one connection and are group-committed: writes that
/// arrive while a transaction is being committed are run together in the next
/// one, each inside its own SAVEPOINT, so one failing write rolls back alone and
/// the others still commit. Every caller is answered only after COMMIT returns.
/// Reads use a second connection and see committed data only.
public final class SQLiteStore: Store {
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let queue: WriteQueue
    private let gate = OperationGate()
    public let path: String

    /// Opens (and creates) the database at `path`. `":memory:"` is not supported:
    /// two connections must see the same data.
    public static func open(path: String, logger: Logger = Logger(label: "sigil.store")) async throws -> SQLiteStore {
        do {
            let loop = MultiThreadedEventLoopGroup.singleton.any()
            let writer = try await SQLiteConnection.open(storage: .file(path: path), threadPool: .singleton, logger: logger, on: loop).get()
            let reader = try await SQLiteConnection.open(storage: .file(path: path), threadPool: .singleton, logger: logger, on: loop).get()
            let store = SQLiteStore(path: path, writer: writer, reader: reader)
            for pragma in ["PRAGMA busy_timeout = 15000", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"] {
                _ = try await writer.sql().raw(SQLQueryString(pragma)).all()
            }
            _ = try await reader.sql().raw("PRAGMA busy_timeout = 15000").all()
            return store
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "cannot open the SQLite database \(path): \(error)")
        }
    }

    private init(path: String, writer: SQLiteConnection, reader: SQLiteConnection) {
        self.path = path
        self.writer = writer
        self.reader = reader
        self.queue = WriteQueue(db: writer.sql(queryLogLevel: nil))
    }

    public func migrate() async throws {
        try await gate.run { try await queue.migrate() }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        try await gate.run { try await body(SQLSession(reader.sql(queryLogLevel: nil))) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        let value = try await gate.run { try await queue.submit { session in try await body(session) } }
        // The queue erases types; `body` produced this value.
        return value as! T
    }

    /// Refuses new work, waits for the work in flight, then closes both connections.
    ///
    /// SQLiteNIO's `close` frees the connection on a thread of its pool without waiting for
    /// statements other threads of that pool are running on it; a read still in flight (a
    /// background task's, during shutdown) then steps on freed memory. Hence the gate. Work
    /// still running after `drainLimit` (a statement stuck on a lock) keeps its connection
    /// open: a leaked handle at exit is better than a crash.
    public func close() async throws {
        guard await gate.closeAndDrain(limit: .seconds(30)) else {
            throw StoreError(.unavailable, "the SQLite database \(path) is still busy after 30 s; its connections are left open")
        }
        try await writer.close().get()
        try await reader.close().get()
    }

    /// Refreshes the query planner's statistics (a bounded ANALYZE), so filters on columns with
    /// few distinct values (issuer, source) do not steer queries away from the sort's index.
    /// `sigil serve` runs it at start and every hour.
    public func optimize() async throws {
        _ = try await gate.run {
            try await queue.submit { session in
                try await (session as! SQLSession).execute(unsafeSQL: "PRAGMA analysis_limit = 1000")
                try await (session as! SQLSession).execute(unsafeSQL: "ANALYZE")
                return true
            }
        }
    }

    /// Runs `PRAGMA integrity_check`; returns the problems found (empty when sound).
    public func integrityCheck() async throws -> [String] {
        let rows = try await gate.run { try await reader.sql().raw("PRAGMA integrity_check").all() }
        let lines = try rows.map { try $0.decode(column: "integrity_check", as: String.self) }
        return lines == ["ok"] ? [] : lines
    }
}

/// Counts the store's operations in flight, so that closing waits for them and refuses
/// new ones (`SQLiteStore.close`).
final class OperationGate: Sendable {
    private let state = Mutex<(closed: Bool, running: Int)>((false, 0))

    func run<T>(_ body: () async throws -> T) async throws -> T {
        try state.withLock { state in
            guard !state.closed else { throw StoreError(.unavailable, "the database is closed") }
            state.running += 1
        }
        defer { state.withLock { $0.running -= 1 } }
        return try await body()
    }

    /// Refuses new operations and waits up to `limit` for the running ones; false when some
    /// are still running.
    func closeAndDrain(limit: Duration) async -> Bool {
        state.withLock { $0.closed = true }
        let deadline = ContinuousClock.now + limit
        while state.withLock({ $0.running }) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}

/// Serializes writes on one connection and commits them in groups.
actor WriteQueue {
    private struct Job {
        let body: @Sendable (any StoreSession) async throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private let db: any SQLDatabase
    private var pending: [Job] = []
    private var draining = false
    static let maximumBatch = 512

    init(db: any SQLDatabase) {
        self.db = db
    }

    func submit(_ body: @escaping @Sendable (any StoreSession) async throws -> any Sendable) async throws -> any Sendable {
        try await withCheckedThrowingContinuation { continuation in
            pending.append(Job(body: body, continuation: continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(Self.maximumBatch))
            pending.removeFirst(batch.count)
            await commit(batch)
        }
        draining = false
    }

    private let auditHead = AuditHeadCache()
    /// Runs a batch in one transaction. Optimistic: no savepoints; if any job fails,
    /// the whole transaction is rolled back and each job runs again alone, so a
    /// failing job fails by itself and the others still commit.
    private func commit(_ batch: [Job]) async {
        if batch.count == 1 {
            let result = await runAlone(batch[0])
            batch[0].continuation.resume(with: result)
            return
        }
        do {
            try await begin()
        } catch {
            let failure = StoreError(.unavailable, "the database is busy or unavailable: \(error)")
            batch.forEach { $0.continuation.resume(throwing: failure) }
            return
        }
        let session = SQLSession(db, auditHead: auditHead)
        var values: [any Sendable] = []
        values.reserveCapacity(batch.count)
        var failed = false
        for job in batch {
            do {
                values.append(try await job.body(session))
            } catch {
                failed = true
                break
            }
        }
        if !failed {
            auditHead.value = nil
            do {
                try await db.raw("COMMIT").run()
                for (job, value) in zip(batch, values) { job.continuation.resume(returning: value) }
                return
            } catch {
                // Fall through: retry each job alone.
            }
        }
        _ = try? await db.raw("ROLLBACK").run()
        auditHead.value = nil
        for job in batch {
            job.continuation.resume(with: await runAlone(job))
        }
    }

    private func begin() async throws {
        // IMMEDIATE takes the write lock now, so other processes wait (busy_timeout)
        // instead of failing at COMMIT; it also keeps the audit head valid until COMMIT.
        auditHead.value = nil
        try await db.raw("BEGIN IMMEDIATE").run()
    }

    private func runAlone(_ job: Job) async -> Result<any Sendable, any Error> {
        do {
            try await begin()
        } catch {
            return .failure(StoreError(.unavailable, "the database is busy or unavailable: \(error)"))
        }
        do {
            let value = try await job.body(SQLSession(db, auditHead: auditHead))
            auditHead.value = nil
            try await db.raw("COMMIT").run()
            return .success(value)
        } catch {
            _ = try? await db.raw("ROLLBACK").run()
            auditHead.value = nil
            return .failure(error)
        }
    }

    func migrate() async throws {
        try await db.raw("BEGIN IMMEDIATE").run()
        do {
            try await Migrator.apply(db)
            try await db.raw("COMMIT").run()
        } catch {
            _ = try? await db.raw("ROLLBACK").run()
            throw error
        }
    }
}
