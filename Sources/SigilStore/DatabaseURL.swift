import Foundation

/// Where the store lives: an SQLite file or a PostgreSQL server.
///
/// Accepted forms: a plain path or `sqlite://PATH` (SQLite); `postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…`
/// or `postgresql://…` (PostgreSQL). For PostgreSQL, `sslmode` is `disable`, `require` (encrypted; the
/// server is verified only when `sslrootcert` is given, as libpq does), `verify-ca` (chain checked,
/// not the name) or `verify-full` (chain and name), default `disable`; `sslrootcert=FILE` names the
/// CA certificates to trust (default: the system's); `pool_max=N` caps the pool (default 16);
/// `connect_timeout=SECONDS` bounds the wait for a connection (default 10).
public enum DatabaseURL: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresSettings)

    public struct PostgresSettings: Sendable, Equatable {
        public enum TLSMode: String, Sendable, Equatable {
            case disable, require, verifyCA = "verify-ca", verifyFull = "verify-full"
        }
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
        public var rootCertificatePath: String?
        public var maximumConnections: Int
        /// Seconds to wait for a connection (new or from the pool) before the database counts as unavailable.
        public var connectTimeout: Int = 10
    }

    public static func parse(_ text: String) throws -> DatabaseURL {
        let lower = text.lowercased()
        if lower.hasPrefix("sqlite://") { return .sqlite(path: String(text.dropFirst("sqlite://".count))) }
        guard lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") else {
            if lower.contains("://") {
                throw StoreError(.failed, "unknown database URL scheme in \(redact(text)): use a SQLite path, sqlite://PATH or postgres://…")
            }
            return .sqlite(path: text)
        }
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw StoreError(.failed, "the database URL \(redact(text)) is not a valid postgres://USER:PASSWORD@HOST:PORT/DATABASE URL")
        }
        var settings = PostgresSettings(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding, database: "", tls: .disable, rootCertificatePath: nil,
            maximumConnections: 16)
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        settings.database = path.removingPercentEncoding ?? path
        if settings.database.isEmpty { settings.database = settings.username }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name.lowercased() {
            case "sslmode", "tlsmode":
                switch value {
                case "disable", "allow", "prefer": settings.tls = .disable
                case "require": settings.tls = .require
                case "verify-ca": settings.tls = .verifyCA
                case "verify-full": settings.tls = .verifyFull
                default: throw StoreError(.failed, "sslmode '\(value)' in \(redact(text)) is not one of disable, require, verify-ca, verify-full")
                }
                if ["allow", "prefer"].contains(value) {
                    throw StoreError(.failed, "sslmode=\(value) may fall back to an unencrypted connection; say disable or require explicitly (\(redact(text)))")
                }
            case "sslrootcert": settings.rootCertificatePath = value
            case "pool_max":
                guard let n = Int(value), (1...1000).contains(n) else { throw StoreError(.failed, "pool_max must be between 1 and 1000 in \(redact(text))") }
                settings.maximumConnections = n
            case "connect_timeout":
                guard let n = Int(value), (1...600).contains(n) else { throw StoreError(.failed, "connect_timeout must be between 1 and 600 seconds in \(redact(text))") }
                settings.connectTimeout = n
            case "application_name": break
            default: throw StoreError(.failed, "unknown database URL parameter '\(item.name)' in \(redact(text))")
            }
        }
        return .postgres(settings)
    }

    /// `text` with any password replaced by `***`, for logs and error messages.
    public static func redact(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        let userInfo = text[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    public var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }
}

extension DatabaseURL.PostgresSettings: CustomStringConvertible {
    /// The URL without the password.
    public var description: String {
        "postgres://\(username)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }
}
