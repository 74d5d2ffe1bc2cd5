import Crypto
import Foundation
import SigilCore
import SigilStore

/// What a token may do. Each API route names one permission; roles grant sets of them.
public enum Permission: String, Sendable, CaseIterable {
    case certificatesCreate, certificatesRead, certificatesRevoke, certificatesRenew
    case requestsRead, requestsDecide
    case catalogRead
    case auditRead
    case tokensManage
    /// Run discovery scans and imports (operator, admin); reading sightings is `certificatesRead`.
    case discoveryRun
}

/// The four roles (DESIGN: admin, operator, requester, auditor). Deny unless granted.
public enum Role: String, Sendable, CaseIterable, Codable {
    case admin, `operator`, requester, auditor

    public func allows(_ permission: Permission) -> Bool {
        switch self {
        case .admin: return true
        case .operator: return permission != .tokensManage
        case .requester: return [.certificatesCreate, .certificatesRead, .certificatesRenew, .catalogRead].contains(permission)
        case .auditor: return [.certificatesRead, .requestsRead, .catalogRead, .auditRead].contains(permission)
        }
    }
}

/// API tokens: shown once, stored as a SHA-256 of their secret, checked in
/// constant time, with a role, an optional expiry and (for requesters) the
/// names they may request.
public struct AccessTokens: Sendable {
    public let store: any Store
    public let clock: any SigilClock

    public init(store: any Store, clock: any SigilClock = SystemClock()) {
        self.store = store
        self.clock = clock
    }

    public static let prefix = "sigil_"

    /// Creates a token and returns it with its secret, which is never stored.
    public func create(name: String, role: Role, expiresIn: TimeInterval?, allowedNames: [String], actor: String) async throws -> (TokenRecord, String) {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$", options: .regularExpression) != nil else {
            throw SigilError.badInput("token name '\(name)' must be 1–64 letters, digits, spaces or ._@:-")
        }
        for pattern in allowedNames { _ = try NamePattern(pattern) }
        if let expiresIn, expiresIn <= 0 { throw SigilError.badInput("a token must expire in the future") }
        let id = Hex.encode((0..<6).map { _ in UInt8.random(in: 0...255) })
        let secret = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let now = clock.now()
        let record = TokenRecord(id: id, name: name, role: role.rawValue, secretHash: AccessTokens.hash(secret), allowedNames: allowedNames,
                                 createdAt: now, createdBy: actor, expiresAt: expiresIn.map { now.addingTimeInterval($0) })
        try await store.write { session in
            try await session.insertToken(record)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "token.created", object: "token:\(id)",
                                                     details: ["name": name, "role": role.rawValue, "allowed_names": allowedNames.joined(separator: ","),
                                                               "expires_at": record.expiresAt.map { RFC3339.string($0) } ?? ""]))
        }
        return (record, "\(AccessTokens.prefix)\(id)_\(secret)")
    }

    /// The token's record when `bearer` is a valid, unexpired, unrevoked token; nil otherwise.
    /// The comparison takes the same time whether the id exists or not.
    public func authenticate(_ bearer: String) async throws -> TokenRecord? {
        let (id, secret) = AccessTokens.split(bearer)
        let presented = AccessTokens.hash(secret ?? "")
        let record = try await id.asyncMap { id in try await store.read { try await $0.token(id: id) } } ?? nil
        let expected = record?.secretHash ?? String(repeating: "0", count: 64)
        let matches = AccessTokens.constantTimeEquals(Array(presented.utf8), Array(expected.utf8))
        guard matches, secret != nil, let record, record.isUsable(at: clock.now()) else { return nil }
        return record
    }

    public func list() async throws -> [TokenRecord] {
        try await store.read { try await $0.tokens() }
    }

    /// Revokes by id or name.
    public func revoke(_ idOrName: String, actor: String) async throws -> TokenRecord {
        let now = clock.now()
        return try await store.write { session in
            let all = try await session.tokens()
            guard var record = all.first(where: { $0.id == idOrName || $0.name == idOrName }) else {
                throw SigilError(.notFound, "no token with id or name '\(idOrName)'")
            }
            guard record.revokedAt == nil else { throw SigilError(.conflict, "token '\(record.name)' is already revoked") }
            let activeAdmins = all.filter { $0.role == Role.admin.rawValue && $0.isUsable(at: now) }
            if record.role == Role.admin.rawValue, activeAdmins.count == 1 {
                throw SigilError(.conflict, "refusing to revoke the last active admin token; create another admin token first")
            }
            record.revokedAt = now
            try await session.updateToken(record)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "token.revoked", object: "token:\(record.id)", details: ["name": record.name]))
            return record
        }
    }

    static func split(_ bearer: String) -> (String?, String?) {
        guard bearer.hasPrefix(prefix) else { return (nil, nil) }
        let rest = bearer.dropFirst(prefix.count)
        guard let underscore = rest.firstIndex(of: "_") else { return (nil, nil) }
        let id = String(rest[..<underscore])
        let secret = String(rest[rest.index(after: underscore)...])
        guard id.count == 12, id.allSatisfy(\.isHexDigit), secret.count == 43 else { return (nil, nil) }
        return (id, secret)
    }

    static func hash(_ secret: String) -> String { Hex.encode(SHA256.hash(data: Array(secret.utf8))) }

    /// Compares without an early exit, so timing does not reveal the first difference.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): return try await transform(value)
        case .none: return nil
        }
    }
}
