import Crypto
import Foundation
import SigilACME
import SigilAuthority
import SigilCore
import SigilStore

/// Dashboard sign-in: a Sigil token is exchanged for a session whose secret lives only in an
/// HttpOnly, Secure, SameSite=Strict cookie; the database keeps its SHA-256. A session ends at
/// its expiry, on sign-out, or as soon as its token is revoked or expires.
public struct DashboardSessions: Sendable {
    public static let cookieName = "sigil_session"
    /// The pre-session anti-CSRF cookie of the sign-in form (double submit).
    public static let signInCookieName = "sigil_signin"

    let store: any Store
    let tokens: AccessTokens
    let clock: any SigilClock
    public let lifetime: TimeInterval

    public init(store: any Store, tokens: AccessTokens, clock: any SigilClock, lifetime: TimeInterval = 8 * 3600) {
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.lifetime = lifetime
    }

    public struct Active: Sendable {
        public var record: DashboardSessionRecord
        public var role: Role
    }

    /// Signs in with a token; returns the cookie secret (shown to the browser only) and the session.
    public func signIn(token: String) async throws -> (secret: String, session: Active)? {
        guard let record = try await tokens.authenticate(token.trimmingCharacters(in: .whitespacesAndNewlines)),
              let role = Role(rawValue: record.role) else { return nil }
        let secret = Self.random()
        let now = clock.now()
        let expires = min(now.addingTimeInterval(lifetime), record.expiresAt ?? .distantFuture)
        let session = DashboardSessionRecord(id: Self.hash(secret), tokenID: record.id, name: record.name, role: record.role, csrf: Self.random(),
                                             createdAt: now, expiresAt: expires)
        try await store.write { s in
            try await s.insertDashboardSession(session)
            try await s.appendAudit(AuditDraft(time: now, actor: "token:\(record.name)", action: "dashboard.signed_in", object: "token:\(record.id)",
                                               details: ["role": record.role]))
        }
        return (secret, Active(record: session, role: role))
    }

    /// The live session for a cookie secret, or nil.
    public func session(secret: String) async throws -> Active? {
        guard secret.count == 43 else { return nil }
        let now = clock.now()
        guard let record = try await store.read({ try await $0.dashboardSession(id: Self.hash(secret)) }),
              record.revokedAt == nil, record.expiresAt > now, let role = Role(rawValue: record.role) else { return nil }
        // The token behind the session must still be usable: revoking a token ends its sessions.
        guard let token = try await store.read({ try await $0.token(id: record.tokenID) }), token.isUsable(at: now) else { return nil }
        return Active(record: record, role: role)
    }

    public func signOut(_ session: Active) async throws {
        let now = clock.now()
        try await store.write { s in
            try await s.revokeDashboardSession(id: session.record.id, at: now)
            try await s.appendAudit(AuditDraft(time: now, actor: "token:\(session.record.name)", action: "dashboard.signed_out",
                                               object: "token:\(session.record.tokenID)"))
        }
    }

    /// Constant-time check of a form's anti-CSRF token.
    public static func csrfMatches(_ presented: String?, _ expected: String) -> Bool {
        guard let presented else { return false }
        return AccessTokens.constantTimeEquals(Array(presented.utf8), Array(expected.utf8))
    }

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func hash(_ secret: String) -> String { Hex.encode(SHA256.hash(data: Array(secret.utf8))) }
}
