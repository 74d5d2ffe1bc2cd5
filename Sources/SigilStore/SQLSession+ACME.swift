import Foundation
import SQLKit

/// ACME objects: a JSON body plus the columns they are found by, in SQL both engines accept.
extension SQLSession {
    // MARK: Accounts

    public func insertACMEAccount(_ a: ACMEAccountRecord) async throws {
        try await mapDuplicate("an ACME account with this key exists") {
            try await db.raw("""
                INSERT INTO acme_accounts (id, provisioner, thumbprint, status, body, created_at)
                VALUES (\(bind: a.id), \(bind: a.provisioner), \(bind: a.thumbprint), \(bind: a.status.rawValue), \(bind: try body(a)), \(bind: seconds(a.createdAt)))
                """).run()
        }
    }

    public func acmeAccount(id: String) async throws -> ACMEAccountRecord? {
        try await db.raw("SELECT body FROM acme_accounts WHERE id = \(bind: id)").first().map(decodeBody)
    }

    public func acmeAccount(provisioner: String, thumbprint: String) async throws -> ACMEAccountRecord? {
        try await db.raw("SELECT body FROM acme_accounts WHERE provisioner = \(bind: provisioner) AND thumbprint = \(bind: thumbprint)").first().map(decodeBody)
    }

    public func updateACMEAccount(_ a: ACMEAccountRecord) async throws {
        try await mapDuplicate("another ACME account uses this key") {
            try await db.raw("""
                UPDATE acme_accounts SET thumbprint = \(bind: a.thumbprint), status = \(bind: a.status.rawValue), body = \(bind: try body(a))
                WHERE id = \(bind: a.id)
                """).run()
        }
    }

    // MARK: Orders

    public func insertACMEOrder(_ o: ACMEOrderRecord) async throws {
        try await db.raw("""
            INSERT INTO acme_orders (id, account_id, status, replaces, expires, created_at, body)
            VALUES (\(bind: o.id), \(bind: o.accountID), \(bind: o.status.rawValue), \(bind: o.replaces), \(bind: seconds(o.expires)),
                    \(bind: seconds(o.createdAt)), \(bind: try body(o)))
            """).run()
        for identifier in Set(o.identifiers.map(\.value)) {
            try await db.raw("""
                INSERT INTO acme_order_names (order_id, name, created_at) VALUES (\(bind: o.id), \(bind: identifier), \(bind: seconds(o.createdAt)))
                """).run()
        }
    }

    public func acmeOrder(id: String) async throws -> ACMEOrderRecord? {
        try await db.raw("SELECT body FROM acme_orders WHERE id = \(bind: id)").first().map(decodeBody)
    }

    public func updateACMEOrder(_ o: ACMEOrderRecord) async throws {
        try await db.raw("""
            UPDATE acme_orders SET status = \(bind: o.status.rawValue), replaces = \(bind: o.replaces), body = \(bind: try body(o)) WHERE id = \(bind: o.id)
            """).run()
    }

    public func acmeOrderIDs(account: String, limit: Int) async throws -> [String] {
        try await db.raw("SELECT id FROM acme_orders WHERE account_id = \(bind: account) ORDER BY created_at DESC, id LIMIT \(bind: limit)").all()
            .map { try $0.decode(column: "id", as: String.self) }
    }

    public func countACMEOrders(account: String, since: Date) async throws -> Int {
        try await count(db.raw("SELECT COUNT(*) AS n FROM acme_orders WHERE account_id = \(bind: account) AND created_at >= \(bind: seconds(since))"))
    }

    public func countACMEOrders(name: String, since: Date) async throws -> Int {
        try await count(db.raw("SELECT COUNT(*) AS n FROM acme_order_names WHERE name = \(bind: name) AND created_at >= \(bind: seconds(since))"))
    }

    public func acmeOrders(replacing certificateID: String) async throws -> [ACMEOrderRecord] {
        try await db.raw("SELECT body FROM acme_orders WHERE replaces = \(bind: certificateID) ORDER BY created_at").all().map(decodeBody)
    }

    // MARK: Authorizations

    public func insertACMEAuthorization(_ a: ACMEAuthorizationRecord) async throws {
        try await db.raw("""
            INSERT INTO acme_authorizations (id, account_id, lookup, status, expires, body)
            VALUES (\(bind: a.id), \(bind: a.accountID), \(bind: a.lookupKey), \(bind: a.status.rawValue), \(bind: seconds(a.expires)), \(bind: try body(a)))
            """).run()
    }

    public func acmeAuthorization(id: String) async throws -> ACMEAuthorizationRecord? {
        try await db.raw("SELECT body FROM acme_authorizations WHERE id = \(bind: id)").first().map(decodeBody)
    }

    public func updateACMEAuthorization(_ a: ACMEAuthorizationRecord) async throws {
        try await db.raw("""
            UPDATE acme_authorizations SET status = \(bind: a.status.rawValue), expires = \(bind: seconds(a.expires)), body = \(bind: try body(a))
            WHERE id = \(bind: a.id)
            """).run()
    }

    public func validACMEAuthorization(account: String, lookup: String, now: Date) async throws -> ACMEAuthorizationRecord? {
        try await db.raw("""
            SELECT body FROM acme_authorizations
            WHERE account_id = \(bind: account) AND lookup = \(bind: lookup) AND status = 'valid' AND expires > \(bind: seconds(now))
            ORDER BY expires DESC LIMIT 1
            """).first().map(decodeBody)
    }

    // MARK: External account binding keys

    public func insertEABKey(_ k: ACMEEABKeyRecord) async throws {
        try await mapDuplicate("an EAB key named '\(k.name)' already exists") {
            try await db.raw("""
                INSERT INTO acme_eab_keys (id, name, created_at, body) VALUES (\(bind: k.id), \(bind: k.name), \(bind: seconds(k.createdAt)), \(bind: try body(k)))
                """).run()
        }
    }

    public func eabKey(id: String) async throws -> ACMEEABKeyRecord? {
        try await db.raw("SELECT body FROM acme_eab_keys WHERE id = \(bind: id)").first().map(decodeBody)
    }

    public func eabKeys() async throws -> [ACMEEABKeyRecord] {
        try await db.raw("SELECT body FROM acme_eab_keys ORDER BY created_at, name").all().map(decodeBody)
    }

    public func updateEABKey(_ k: ACMEEABKeyRecord) async throws {
        try await db.raw("UPDATE acme_eab_keys SET body = \(bind: try body(k)) WHERE id = \(bind: k.id)").run()
    }

    // MARK: Nonces and settings

    public func consumeACMENonce(_ nonce: String, expires: Date) async throws {
        try await mapDuplicate("the nonce was used before") {
            try await db.raw("INSERT INTO acme_nonces (nonce, expires) VALUES (\(bind: nonce), \(bind: seconds(expires)))").run()
        }
    }

    @discardableResult
    public func pruneACMENonces(before: Date) async throws -> Int {
        let n = try await count(db.raw("SELECT COUNT(*) AS n FROM acme_nonces WHERE expires < \(bind: seconds(before))"))
        try await db.raw("DELETE FROM acme_nonces WHERE expires < \(bind: seconds(before))").run()
        return n
    }

    public func setting(_ name: String) async throws -> String? {
        try await db.raw("SELECT value FROM settings WHERE name = \(bind: name)").first().map { try $0.decode(column: "value", as: String.self) }
    }

    public func insertSetting(_ name: String, value: String) async throws {
        try await mapDuplicate("setting '\(name)' exists") {
            try await db.raw("INSERT INTO settings (name, value) VALUES (\(bind: name), \(bind: value))").run()
        }
    }

    // MARK: Helpers

    private func count(_ query: SQLRawBuilder) async throws -> Int {
        guard let row = try await query.first() else { return 0 }
        return Int(try row.decode(column: "n", as: Int64.self))
    }
}

private let bodyEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.dateEncodingStrategy = .secondsSince1970
    return encoder
}()

private func body<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try bodyEncoder.encode(value), as: UTF8.self)
}

private func decodeBody<T: Decodable>(_ row: any SQLRow) throws -> T {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .secondsSince1970
    return try decoder.decode(T.self, from: Data(try row.decode(column: "body", as: String.self).utf8))
}
