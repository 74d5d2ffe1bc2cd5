import Foundation
import Logging
import PostgresNIO
import SigilStore

/// A PostgreSQL database of its own for each test, on the server that
/// `SIGIL_TEST_POSTGRES_URL` names (scripts/test.sh starts one). Without that
/// variable the PostgreSQL suites are skipped, and say so.
public enum PostgresTesting {
    public static let variable = "SIGIL_TEST_POSTGRES_URL"

    public static var url: String? {
        ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static var isConfigured: Bool { url != nil }

    /// A new, empty database with a random name. Drop it with `drop(_:)`.
    public static func createDatabase() async throws -> DatabaseURL.PostgresSettings {
        guard let url, case .postgres(var settings) = try DatabaseURL.parse(url) else {
            throw StoreError(.unavailable, "\(variable) is not a postgres:// URL")
        }
        let name = "sigil_t_" + (0..<12).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        try await admin(settings, "CREATE DATABASE \(name)")
        settings.database = name
        // Many tests at once on two cores: connecting (SCRAM) can be slow in a debug build, and
        // sixteen databases migrating at once behind a busy disk have taken more than the 80 s
        // (lease 60 s + 20 s) a 60-second timeout allows one operation. Tests judge results,
        // not speed; the outage tests set their own short timeouts.
        settings.connectTimeout = 150
        return settings
    }

    public static func drop(_ settings: DatabaseURL.PostgresSettings) async {
        guard let url, case .postgres(let base) = try? DatabaseURL.parse(url) else { return }
        try? await admin(base, "DROP DATABASE IF EXISTS \(settings.database) WITH (FORCE)")
    }

    /// A URL string for the database, for code that takes one (commands, servers).
    public static func urlString(_ settings: DatabaseURL.PostgresSettings) -> String {
        "postgres://\(settings.username):\(settings.password ?? "")@\(settings.host):\(settings.port)/\(settings.database)?sslmode=disable&connect_timeout=\(settings.connectTimeout)"
    }

    /// Runs one statement on the server's own database (outside any transaction).
    public static func admin(_ settings: DatabaseURL.PostgresSettings, _ sql: String) async throws {
        let configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password, database: settings.database, tls: .disable)
        let logger = Logger(label: "sigil.test.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 99, logger: logger)
        do {
            for try await _ in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {}
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
