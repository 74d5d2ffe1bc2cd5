import Crypto
import Foundation
import SigilCore
import SigilStore

/// External Account Binding keys (RFC 8555 §7.3.4): made by an administrator, handed to
/// one ACME client, bound to the account it creates.
public struct ExternalAccountKeys: Sendable {
    public let store: any Store
    public let clock: any SigilClock

    public init(store: any Store, clock: any SigilClock = SystemClock()) {
        self.store = store
        self.clock = clock
    }

    /// Creates a key; the HMAC key is returned (base64url) and shown once by the caller.
    public func create(name: String, allowedNames: [String], actor: String) async throws -> ACMEEABKeyRecord {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw SigilError.badInput("an EAB key name is 1-64 letters, digits, '-', '_', '.' or '@'")
        }
        var problems: [String] = []
        for pattern in allowedNames {
            do { _ = try NamePattern(pattern) } catch { problems.append("--allow \(pattern): \(error)") }
        }
        if !problems.isEmpty { throw SigilError(.badInput, "invalid name pattern\(problems.count == 1 ? "" : "s"):", reasons: problems) }
        // A key that starts with '-' would read as an option on client command lines.
        var secret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        while Base64URL.encode(secret).hasPrefix("-") { secret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) } }
        var generator = SystemRandomNumberGenerator()
        let id = "kid-" + Base64URL.encode((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let now = clock.now()
        let record = ACMEEABKeyRecord(id: id, name: name, hmacKey: Base64URL.encode(secret), allowedNames: allowedNames, createdAt: now, createdBy: actor)
        do {
            try await store.write { session in
                try await session.insertEABKey(record)
                try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "acme.eab.created", object: "acme-eab:\(id)",
                                                         details: ["name": name, "allowed_names": allowedNames.joined(separator: ",")]))
            }
        } catch let error as StoreError where error.code == .duplicate {
            throw SigilError(.alreadyExists, "an EAB key named '\(name)' already exists")
        }
        return record
    }

    public func list() async throws -> [ACMEEABKeyRecord] {
        try await store.read { try await $0.eabKeys() }
    }

    /// Revokes by key id or name: the key can no longer create an account (a bound account stays).
    public func revoke(_ idOrName: String, actor: String) async throws -> ACMEEABKeyRecord {
        let now = clock.now()
        return try await store.write { session in
            let all = try await session.eabKeys()
            guard var key = all.first(where: { $0.id == idOrName || $0.name == idOrName }) else {
                throw SigilError(.notFound, "no EAB key with id or name '\(idOrName)'")
            }
            guard key.revokedAt == nil else { throw SigilError(.conflict, "EAB key '\(key.name)' is already revoked") }
            key.revokedAt = now
            try await session.updateEABKey(key)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "acme.eab.revoked", object: "acme-eab:\(key.id)", details: ["name": key.name]))
            return key
        }
    }
}
