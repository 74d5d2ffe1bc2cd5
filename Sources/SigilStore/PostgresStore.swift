import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization

/// PostgreSQL, for several `sigil serve` nodes on one database.
///
/// Connections come from PostgresNIO's pool. Each `write` is one transaction on
/// one pooled connection; a transaction that appends to the audit chain first
/// takes a transaction-level advisory lock, so appends from every node are
/// serialized and the chain never forks (SQLite gets the same from its single
/// writer). Deadlocks and serialization failures are retried; a database that
/// cannot be reached gives `StoreError(.unavailable)` within a few seconds, and
/// the pool reconnects by itself when the database is back.
///
/// A `write` body must not catch a database error and carry on: PostgreSQL has
/// then aborted the transaction, and its COMMIT only rolls back. (No body in
/// Sigil does; a failing statement fails the whole write, as on SQLite.)
public final class PostgresStore: Store {
    public let settings: DatabaseURL.PostgresSettings
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let queue: PostgresWriteQueue
    let logger: Logger
    /// How long a caller waits for a pooled connection before the database counts as unavailable.
    var leaseTimeout: Duration { .seconds(settings.connectTimeout) }
    /// How long one read or write transaction may take before its connection is closed.
    var operationTimeout: Duration { leaseTimeout + .seconds(20) }

    /// Advisory lock keys (one 64-bit space per database). Fixed: every node must agree.
    enum LockKey {
        static let migrations: Int64 = 0x5349_4749_4C00_0001
        static let audit: Int64 = 0x5349_4749_4C00_0002
        static let schedulerBase: Int64 = 0x5349_4749_4C00_1000
    }

    /// Connects (checking the address and credentials at once) and starts the pool.
    public static func open(_ settings: DatabaseURL.PostgresSettings, logger: Logger = Logger(label: "sigil.store")) async throws -> PostgresStore {
        let probe: PostgresConnection
        do {
            probe = try await PostgresConnection.connect(configuration: try connectionConfiguration(settings), id: 0, logger: quiet)
        } catch {
            throw StoreError(.unavailable, "cannot connect to PostgreSQL at \(settings): \(describe(error))")
        }
        try? await probe.close()
        return PostgresStore(settings: settings, client: PostgresClient(configuration: try clientConfiguration(settings), backgroundLogger: quiet), logger: logger)
    }

    private init(settings: DatabaseURL.PostgresSettings, client: PostgresClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
        self.queue = PostgresWriteQueue()
        queue.store = self
    }

    public func migrate() async throws {
        try await withDedicatedConnection { connection in
            let db = connection.sql(queryLogLevel: nil)
            // Several nodes may start together: one migrates, the others wait and then find nothing to do.
            try await db.raw("SELECT pg_advisory_lock(\(bind: LockKey.migrations))").run()
            do {
                try await db.raw("BEGIN").run()
                do {
                    try await Migrator.apply(db)
                    try await db.raw("COMMIT").run()
                } catch {
                    _ = try? await db.raw("ROLLBACK").run()
                    throw error
                }
                _ = try? await db.raw("SELECT pg_advisory_unlock(\(bind: LockKey.migrations))").run()
            } catch {
                _ = try? await db.raw("SELECT pg_advisory_unlock(\(bind: LockKey.migrations))").run()
                throw error
            }
        }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        do {
            return try await withPooledConnection { connection in
                try await body(SQLSession(connection.sql(queryLogLevel: nil)))
            }
        } catch {
            throw Self.translate(error)
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        let value = try await queue.submit { session in try await body(session) }
        // The queue erases types; `body` produced this value.
        return value as! T
    }

    /// One write in a transaction of its own, retried on deadlocks and serialization failures.
    func writeAlone<T: Sendable>(_ body: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withPooledConnection { connection in
                    let db = connection.sql(queryLogLevel: nil)
                    try await db.raw("BEGIN").run()
                    do {
                        let value = try await body(SQLSession(db, auditLock: LockKey.audit))
                        try await db.raw("COMMIT").run()
                        return value
                    } catch {
                        _ = try? await db.raw("ROLLBACK").run()
                        throw error
                    }
                }
            } catch where attempt < 5 && Self.isTransient(error) {
                try? await Task.sleep(for: .milliseconds(5 * attempt))
                continue
            } catch {
                throw Self.translate(error)
            }
        }
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    public func schedulerLock(named name: String) -> any SchedulerLock {
        // FNV-1a: the same key on every node for the same name.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return PostgresSchedulerLock(settings: settings, key: LockKey.schedulerBase | Int64(hash & 0xfff))
    }

    // MARK: Connections

    /// A pooled connection; waiting longer than `leaseTimeout` for one means the database is
    /// unavailable. Work on a connection that has not ended after `operationTimeout` is
    /// stopped by closing that connection, and its caller is answered `.unavailable`: a
    /// server that vanished without closing its sockets must not hold requests forever.
    ///
    /// The wait runs in a task of its own, so no caller ever waits on a pool that is slow
    /// to give up a cancelled request; a connection that arrives after its caller gave up
    /// is handed back unused (the body never runs late).
    func withPooledConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let lease = LeaseState()
        let client = self.client
        let leaseTimeout = self.leaseTimeout
        let operationTimeout = self.operationTimeout
        let settings = self.settings
        let logger = self.logger
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let answer = OneShot(continuation)
            let timer = Task {
                try await Task.sleep(for: leaseTimeout)
                if lease.state.compareExchange(expected: LeaseState.waiting, desired: LeaseState.abandoned, ordering: .sequentiallyConsistent).exchanged {
                    answer.resume(.failure(StoreError(.unavailable, "no connection to PostgreSQL at \(settings) within \(leaseTimeout)")))
                    return
                }
                try await Task.sleep(for: operationTimeout - leaseTimeout)
                if let stuck = lease.connection.withLock({ $0 }) {
                    logger.warning("a PostgreSQL operation took longer than \(operationTimeout); closing its connection")
                    let _: EventLoopFuture<Void> = stuck.close()
                    answer.resume(.failure(StoreError(.unavailable, "PostgreSQL at \(settings) did not answer within \(operationTimeout)")))
                }
            }
            Task {
                do {
                    let value = try await client.withConnection { connection -> T? in
                        guard lease.state.compareExchange(expected: LeaseState.waiting, desired: LeaseState.leased, ordering: .sequentiallyConsistent).exchanged else {
                            return nil
                        }
                        lease.connection.withLock { $0 = connection }
                        defer { lease.connection.withLock { $0 = nil } }
                        return try await body(connection)
                    }
                    timer.cancel()
                    if let value { answer.resume(.success(value)) }
                } catch {
                    timer.cancel()
                    answer.resume(.failure(error))
                }
            }
        }
    }

    /// A connection of its own, outside the pool, closed afterwards.
    func withDedicatedConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try Self.connectionConfiguration(settings), id: 1, logger: Self.quiet)
        } catch {
            throw StoreError(.unavailable, "cannot connect to PostgreSQL at \(settings): \(Self.describe(error))")
        }
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw Self.translate(error)
        }
    }

    // MARK: Configuration

    static let quiet = Logger(label: "sigil.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    static func tlsConfiguration(_ settings: DatabaseURL.PostgresSettings) throws -> TLSConfiguration? {
        guard settings.tls != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let path = settings.rootCertificatePath {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
            } catch {
                throw StoreError(.failed, "cannot read sslrootcert \(path): \(error)")
            }
        }
        switch settings.tls {
        case .disable: return nil
        // libpq: `require` verifies the server only when a root certificate is given.
        case .require: tls.certificateVerification = settings.rootCertificatePath == nil ? .none : .noHostnameVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }

    static func connectionConfiguration(_ settings: DatabaseURL.PostgresSettings) throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password, database: settings.database,
            tls: try tlsConfiguration(settings).map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable)
        configuration.options.connectTimeout = .seconds(Int64(settings.connectTimeout))
        return configuration
    }

    static func clientConfiguration(_ settings: DatabaseURL.PostgresSettings) throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password, database: settings.database,
            tls: try tlsConfiguration(settings).map { .require($0) } ?? .disable)
        configuration.options.maximumConnections = settings.maximumConnections
        configuration.options.connectTimeout = .seconds(Int64(settings.connectTimeout))
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        return configuration
    }

    // MARK: Errors

    /// SQLSTATEs a retry can cure: serialization failure, deadlock.
    static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// Database failures as `StoreError`; the body's own errors pass through unchanged.
    static func translate(_ error: any Error) -> any Error {
        switch error {
        case is StoreError:
            return error
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                // 08 connection, 28 authorization, 3D no such database, 53 resources, 57 operator intervention (shutdown), 58 system.
                if ["08", "28", "3D", "53", "57", "58", "40"].contains(String(state.prefix(2))) {
                    return StoreError(.unavailable, "PostgreSQL is unavailable (SQLSTATE \(state))")
                }
                return StoreError(.failed, "PostgreSQL refused a statement (SQLSTATE \(state)): \(error.serverInfo?[.message] ?? "")")
            }
            return StoreError(.unavailable, "the connection to PostgreSQL failed: \(describe(error))")
        case is ConnectionPoolError, is ChannelError, is IOError, is NIOConnectionError, is NIOSSLError:
            return StoreError(.unavailable, "the connection to PostgreSQL failed: \(describe(error))")
        default:
            return error
        }
    }

    /// A one-line, secret-free description of a connection error.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// The connection a caller holds, so the timeout can stand down or close it.
final class LeaseState: Sendable {
    static let waiting = 0, leased = 1, abandoned = 2
    let state = Atomic<Int>(LeaseState.waiting)
    let connection = Mutex<PostgresConnection?>(nil)
}

/// A continuation resumed at most once, by whichever of the work and its timeout ends first.
final class OneShot<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ result: Result<T, any Error>) {
        continuation.withLock { pending in
            pending?.resume(with: result)
            pending = nil
        }
    }
}

/// Group commit on PostgreSQL, as the SQLite store's write queue does: writes that
/// arrive while a transaction is being committed run together in the next one, so
/// they share one audit-lock turn and one WAL flush instead of queueing for a flush
/// each. Optimistic: if any write in a batch fails, the batch is rolled back and
/// each write runs alone, so a failing write fails by itself. A database that is
/// unavailable fails the whole batch at once.
final class PostgresWriteQueue: @unchecked Sendable {
    // @unchecked Sendable: `store` is set once, before the store is shared; the rest is actor state.
    unowned(unsafe) var store: PostgresStore!
    private let state = State()
    static let maximumBatch = 256

    actor State {
        struct Job {
            let body: @Sendable (any StoreSession) async throws -> any Sendable
            let continuation: CheckedContinuation<any Sendable, any Error>
        }
        var pending: [Job] = []
        var draining = false

        /// Adds a job; true when the caller must start draining.
        func add(_ job: Job) -> Bool {
            pending.append(job)
            if draining { return false }
            draining = true
            return true
        }

        /// The next batch, or nil (and no longer draining) when there is none.
        func next() -> [Job]? {
            guard !pending.isEmpty else {
                draining = false
                return nil
            }
            let batch = Array(pending.prefix(PostgresWriteQueue.maximumBatch))
            pending.removeFirst(batch.count)
            return batch
        }
    }

    func submit(_ body: @escaping @Sendable (any StoreSession) async throws -> any Sendable) async throws -> any Sendable {
        try await withCheckedThrowingContinuation { continuation in
            Task {
                if await state.add(State.Job(body: body, continuation: continuation)) {
                    Task { await self.drain() }
                }
            }
        }
    }

    private func drain() async {
        while let batch = await state.next() {
            await commit(batch)
        }
    }

    private func commit(_ batch: [State.Job]) async {
        let store = self.store!
        if batch.count == 1 {
            let job = batch[0]
            job.continuation.resume(with: await Result(catching: { try await store.writeAlone(job.body) }))
            return
        }
        let bodies = batch.map(\.body)
        do {
            let values = try await store.withPooledConnection { connection -> [any Sendable] in
                let db = connection.sql(queryLogLevel: nil)
                try await db.raw("BEGIN").run()
                do {
                    let session = SQLSession(db, auditLock: PostgresStore.LockKey.audit)
                    var values: [any Sendable] = []
                    values.reserveCapacity(bodies.count)
                    for body in bodies { values.append(try await body(session)) }
                    try await db.raw("COMMIT").run()
                    return values
                } catch {
                    _ = try? await db.raw("ROLLBACK").run()
                    throw error
                }
            }
            for (job, value) in zip(batch, values) { job.continuation.resume(returning: value) }
        } catch {
            if !PostgresStore.isTransient(error), let failure = PostgresStore.translate(error) as? StoreError, failure.code == .unavailable {
                batch.forEach { $0.continuation.resume(throwing: failure) }
                return
            }
            for job in batch {
                job.continuation.resume(with: await Result(catching: { try await store.writeAlone(job.body) }))
            }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
