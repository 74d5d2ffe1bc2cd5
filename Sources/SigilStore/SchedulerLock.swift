import Foundation
import Logging
import PostgresKit
import PostgresNIO
import SQLKit

/// Leadership for scheduled work (CRL rebuilds and the like) when several
/// `sigil serve` nodes share one database: at most one node holds the lock, and
/// when that node dies the lock is free for the next one that asks.
public protocol SchedulerLock: Sendable {
    /// Takes the lock when it is free; true while this process holds it. Call it
    /// before each round of scheduled work: it also notices a lost lock.
    func acquire() async -> Bool
    /// Gives the lock up (at shutdown), so another node can take over at once.
    func release() async
}

/// SQLite: one server per database, so it always leads.
public struct SingleNodeLock: SchedulerLock {
    public init() {}
    public func acquire() async -> Bool { true }
    public func release() async {}
}

extension Store {
    public func schedulerLock(named name: String) -> any SchedulerLock { SingleNodeLock() }
}

/// PostgreSQL: a session-level `pg_try_advisory_lock` held on a connection of its
/// own (outside the pool). PostgreSQL frees it when that connection ends, so a
/// node that crashes or loses the database loses the lock, and another node takes
/// it on its next `acquire()`.
actor PostgresSchedulerLock: SchedulerLock {
    private let settings: DatabaseURL.PostgresSettings
    private let key: Int64
    private var connection: PostgresConnection?
    private var held = false

    init(settings: DatabaseURL.PostgresSettings, key: Int64) {
        self.settings = settings
        self.key = key
    }

    deinit {
        // A lock dropped without release(): closing the connection frees it.
        // The task keeps the connection alive until it is closed.
        if let connection = self.connection { Task { try? await connection.close() } }
    }

    func acquire() async -> Bool {
        do {
            if let connection, connection.isClosed {
                self.connection = nil
                held = false
            }
            if connection == nil {
                connection = try await PostgresConnection.connect(
                    configuration: try PostgresStore.connectionConfiguration(settings), id: 2, logger: PostgresStore.quiet)
                held = false
            }
            let connection = connection!
            let key = key
            let wasHeld = held
            // Bounded: a connection the server dropped must not stall the scheduler.
            held = try await withDeadline(.seconds(5)) {
                let db = connection.sql(queryLogLevel: nil)
                if wasHeld {
                    // The lock lasts as long as the session: a live connection still holds it.
                    try await db.raw("SELECT 1").run()
                    return true
                }
                return try await db.raw("SELECT pg_try_advisory_lock(\(bind: key)) AS held").first()?.decode(column: "held", as: Bool.self) ?? false
            }
            return held
        } catch {
            try? await connection?.close()
            connection = nil
            held = false
            return false
        }
    }

    func release() async {
        if let connection {
            if held { _ = try? await connection.sql(queryLogLevel: nil).raw("SELECT pg_advisory_unlock(\(bind: key))").run() }
            try? await connection.close()
        }
        connection = nil
        held = false
    }
}

/// Runs `body`, or throws `StoreError(.unavailable)` after `limit` (cancelling it).
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw StoreError(.unavailable, "PostgreSQL did not answer within \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
