import Foundation
import SigilCore
import SigilStore

/// The behaviour every `Store` backend must show. Each check takes a fresh,
/// migrated store and throws `ContractFailure` naming the broken expectation;
/// backend test suites run every check (SQLite here, PostgreSQL later).
public enum StoreContract {
    public struct ContractFailure: Error, CustomStringConvertible {
        public let description: String
    }

    public typealias Check = @Sendable (any Store) async throws -> Void

    public static let checks: [(name: String, run: Check)] = [
        ("migrate is idempotent", migrateTwice),
        ("issuers round trip and names are unique", issuers),
        ("certificates round trip; serials unique per issuer", certificates),
        ("inventory queries filter and paginate", queries),
        ("revocation and ownership updates", updates),
        ("requests round trip and update", requests),
        ("a failed write leaves nothing behind", failedWrite),
        ("the audit chain links every entry", auditChain),
        ("concurrent writers get unique serials and one unbroken chain", concurrentWrites),
        ("CRL numbers only go up", crlNumbers),
        ("tokens round trip; names are unique", tokens),
        ("ACME accounts, orders, authorizations, EAB keys, nonces and settings", acme),
        ("dashboard sessions, indexed search, keyset pages, statistics, audit filters", dashboard),
        ("sightings are recorded once per place and move last-seen", sightings),
        ("the compliance report finds exactly the seeded problems", compliance),
        ("notification cursor, expiry marks and outbox", notifications),
    ]

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ContractFailure(description: message()) }
    }

    public static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    public static func issuer(_ name: String) -> IssuerRecord {
        IssuerRecord(name: name, parentName: nil, certificatePEM: "PEM", keyBlob: "{}", keyType: "ec:P-256", subject: "/CN=\(name)",
                     notBefore: epoch, notAfter: epoch.addingTimeInterval(86_400 * 3650), isRoot: true, createdAt: epoch)
    }

    public static func certificate(serial: String, issuer: String = "ca", fingerprint: String? = nil, cn: String = "www.example.com",
                                   notAfterDays: Double = 90, owner: String? = nil, profile: String = "tls-server") -> CertificateRecord {
        CertificateRecord(
            serial: serial, issuer: issuer, subject: "/CN=\(cn)", commonName: cn, sans: ["DNS:\(cn)"], notBefore: epoch,
            notAfter: epoch.addingTimeInterval(notAfterDays * 86_400), keyType: "ec:P-256", keyAlgorithm: "ECDSA", keySize: 256,
            signatureAlgorithm: "ecdsa-with-SHA256", fingerprint: fingerprint ?? String(repeating: "0", count: 64 - serial.count) + serial,
            source: .issued, profile: profile, owner: owner, tags: ["web"], pem: "PEM", createdAt: epoch)
    }

    static func migrateTwice(_ store: any Store) async throws {
        try await store.migrate()
        try await store.migrate()
        try expect(try await store.read { try await $0.countCertificates() } == 0, "a fresh store is empty")
    }

    static func issuers(_ store: any Store) async throws {
        try await store.write { try await $0.insertIssuer(issuer("root")) }
        let read = try await store.read { try await $0.issuer(named: "root") }
        try expect(read == issuer("root"), "the issuer reads back as written: \(String(describing: read))")
        do {
            try await store.write { try await $0.insertIssuer(issuer("root")) }
            throw ContractFailure(description: "a second issuer named root was accepted")
        } catch let error as StoreError {
            try expect(error.code == .duplicate, "duplicate issuer gives .duplicate, got \(error.code)")
        }
        var updated = issuer("root")
        updated.status = .external
        try await store.write { [updated] in try await $0.updateIssuer(updated) }
        try expect(try await store.read { try await $0.issuer(named: "root") }?.status == .external, "updateIssuer persists")
    }

    static func certificates(_ store: any Store) async throws {
        let record = certificate(serial: "0a1b")
        try await store.write { try await $0.insertCertificate(record) }
        try expect(try await store.read { try await $0.certificates(serial: "0a1b") } == [record], "certificate reads back by serial")
        try expect(try await store.read { try await $0.certificate(fingerprint: record.fingerprint) } == record, "certificate reads back by fingerprint")
        do {
            try await store.write { try await $0.insertCertificate(certificate(serial: "0a1b", fingerprint: String(repeating: "f", count: 64))) }
            throw ContractFailure(description: "the same serial from the same issuer was accepted twice")
        } catch let error as StoreError {
            try expect(error.code == .duplicate, "duplicate serial gives .duplicate, got \(error.code)")
        }
        // The same serial from another issuer is a different certificate.
        try await store.write { try await $0.insertCertificate(certificate(serial: "0a1b", issuer: "other", fingerprint: String(repeating: "e", count: 64))) }
        try expect(try await store.read { try await $0.certificates(serial: "0a1b") }.count == 2, "serials are unique per issuer only")
    }

    static func queries(_ store: any Store) async throws {
        let now = epoch.addingTimeInterval(10 * 86_400)
        let records = [
            certificate(serial: "01", cn: "a.example.com", notAfterDays: 5, owner: "alice"),
            certificate(serial: "02", cn: "b.example.com", notAfterDays: 20, owner: "bob"),
            certificate(serial: "03", cn: "c.example.org", notAfterDays: 60, owner: "alice", profile: "tls-client"),
            certificate(serial: "04", cn: "d.example.com", notAfterDays: 200),
        ]
        try await store.write { session in for r in records { try await session.insertCertificate(r) } }
        try await store.write { try await $0.updateCertificateRevocation(fingerprint: records[3].fingerprint, status: .revoked, revokedAt: now, reason: 1, invalidityDate: nil) }
        func serials(_ query: CertificateQuery) async throws -> [String] {
            try await store.read { try await $0.certificates(query) }.map(\.serial)
        }
        try expect(try await serials(CertificateQuery(now: now)) == ["01", "02", "03", "04"], "all, ordered by expiry")
        try expect(try await serials(CertificateQuery(now: now, status: .expired)) == ["01"], "expired is derived from the clock")
        try expect(try await serials(CertificateQuery(now: now, status: .active)) == ["02", "03"], "active excludes expired and revoked")
        try expect(try await serials(CertificateQuery(now: now, status: .revoked)) == ["04"], "revoked")
        try expect(try await serials(CertificateQuery(now: now, expiringBefore: now.addingTimeInterval(30 * 86_400))) == ["02"], "expiring within 30 days")
        try expect(try await serials(CertificateQuery(now: now, namePattern: "*.example.com")) == ["01", "02", "04"], "name pattern")
        try expect(try await serials(CertificateQuery(now: now, owner: "alice")) == ["01", "03"], "owner")
        try expect(try await serials(CertificateQuery(now: now, profile: "tls-client")) == ["03"], "profile")
        try expect(try await serials(CertificateQuery(now: now, namePattern: "02")) == ["02"], "a serial as the pattern")
        let page1 = try await store.read { try await $0.certificates(CertificateQuery(now: now, limit: 2)) }
        let last = page1.last!
        let page2 = try await serials(CertificateQuery(now: now, limit: 2, after: (last.notAfter, last.fingerprint)))
        try expect(page1.map(\.serial) == ["01", "02"] && page2 == ["03", "04"], "cursor pagination")
    }

    static func updates(_ store: any Store) async throws {
        let record = certificate(serial: "77")
        try await store.write { try await $0.insertCertificate(record) }
        try await store.write { try await $0.updateCertificateRevocation(fingerprint: record.fingerprint, status: .revoked, revokedAt: epoch, reason: 4, invalidityDate: epoch.addingTimeInterval(-3600)) }
        try await store.write { try await $0.updateCertificateOwnership(fingerprint: record.fingerprint, owner: "carol", tags: ["a", "b"]) }
        let read = try await store.read { try await $0.certificate(fingerprint: record.fingerprint) }
        try expect(read?.storedStatus == .revoked && read?.revocationReason == 4 && read?.revokedAt == epoch && read?.invalidityDate == epoch.addingTimeInterval(-3600), "revocation persists")
        try expect(read?.owner == "carol" && read?.tags == ["a", "b"], "ownership persists")
    }

    static func requests(_ store: any Store) async throws {
        var request = RequestRecord(id: "r1", csrPEM: "CSR", profile: "code-signing", issuer: "ca", days: 30, requester: "alice",
                                    subject: "/CN=x", names: ["email:x@example.com"], status: .pending, reasons: ["needs approval"], createdAt: epoch)
        try await store.write { [request] in try await $0.insertRequest(request) }
        try expect(try await store.read { try await $0.requests(status: .pending) } == [request], "pending request listed")
        request.status = .issued
        request.decidedAt = epoch
        request.decidedBy = "bob"
        request.certificateSerial = "99"
        try await store.write { [request] in try await $0.updateRequest(request) }
        try expect(try await store.read { try await $0.request(id: "r1") } == request, "request update persists")
        try expect(try await store.read { try await $0.requests(status: .pending) }.isEmpty, "no longer pending")
    }

    static func failedWrite(_ store: any Store) async throws {
        struct Abort: Error {}
        do {
            try await store.write { session in
                try await session.insertCertificate(certificate(serial: "55"))
                try await session.appendAudit(AuditDraft(time: epoch, actor: "t", action: "certificate.issued", object: "55"))
                throw Abort()
            }
        } catch is Abort {}
        try expect(try await store.read { try await $0.certificates(serial: "55") }.isEmpty, "the certificate of a failed write is gone")
        try expect(try await store.read { try await $0.auditEntries(afterSeq: 0, limit: 10) }.isEmpty, "the audit entry of a failed write is gone")
    }

    static func auditChain(_ store: any Store) async throws {
        for i in 0..<5 {
            try await store.write { try await $0.appendAudit(AuditDraft(time: epoch, actor: "t", action: "a\(i)", object: "o", details: ["i": "\(i)"])) }
        }
        let entries = try await store.read { try await $0.auditEntries(afterSeq: 0, limit: 100) }
        try expect(entries.map(\.seq) == [1, 2, 3, 4, 5], "sequence numbers 1...5")
        try expect(entries[0].prevHash == AuditChain.genesis, "the first entry links to genesis")
        var verifier = AuditChain.Verifier()
        entries.forEach { verifier.feed($0) }
        try expect(verifier.result.ok, "the chain verifies: \(verifier.result)")
        var changed = entries
        changed[2].details = "{\"i\":\"9\"}"
        var v2 = AuditChain.Verifier()
        changed.forEach { v2.feed($0) }
        try expect(v2.result.firstBadSeq == 3, "a changed entry is named: \(v2.result)")
        var v3 = AuditChain.Verifier()
        entries.enumerated().filter { $0.offset != 1 }.forEach { v3.feed($0.element) }
        try expect(v3.result.firstBadSeq == 2, "a removed entry is named: \(v3.result)")
        var v4 = AuditChain.Verifier()
        [entries[0], entries[2], entries[1], entries[3]].forEach { v4.feed($0) }
        try expect(v4.result.firstBadSeq == 2, "a reordered entry is named: \(v4.result)")
    }

    static func concurrentWrites(_ store: any Store) async throws {
        let count = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask {
                    try await store.write { session in
                        try await session.insertCertificate(certificate(serial: String(format: "c%05d", i)))
                        try await session.appendAudit(AuditDraft(time: epoch, actor: "t", action: "certificate.issued", object: "\(i)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        try expect(try await store.read { try await $0.countCertificates() } == count, "every concurrent write is recorded")
        let entries = try await store.read { try await $0.auditEntries(afterSeq: 0, limit: 1000) }
        var verifier = AuditChain.Verifier()
        entries.forEach { verifier.feed($0) }
        try expect(entries.count == count && verifier.result.ok, "one unbroken chain of \(count) entries: \(verifier.result)")
    }

    static func tokens(_ store: any Store) async throws {
        var token = TokenRecord(id: "0123456789ab", name: "ci", role: "requester", secretHash: String(repeating: "a", count: 64),
                                allowedNames: ["*.example.com"], createdAt: epoch, createdBy: "t", expiresAt: epoch.addingTimeInterval(86_400))
        try await store.write { [token] in try await $0.insertToken(token) }
        try expect(try await store.read { try await $0.token(id: "0123456789ab") } == token, "token reads back")
        do {
            var other = token
            other.id = "ba9876543210"
            try await store.write { [other] in try await $0.insertToken(other) }
            throw ContractFailure(description: "a second token named ci was accepted")
        } catch let error as StoreError {
            try expect(error.code == .duplicate, "duplicate token name gives .duplicate")
        }
        token.revokedAt = epoch
        token.lastUsedAt = epoch
        try await store.write { [token] in try await $0.updateToken(token) }
        try expect(try await store.read { try await $0.tokens() } == [token], "token update persists")
        try expect(!token.isUsable(at: epoch), "a revoked token is not usable")
    }

    static func crlNumbers(_ store: any Store) async throws {
        try await store.write { try await $0.insertIssuer(issuer("ca")) }
        var last: Int64 = 0
        for _ in 0..<5 {
            let next = try await store.write { try await $0.nextCRLNumber(issuer: "ca") }
            try expect(next > last, "CRL number \(next) follows \(last)")
            last = next
        }
    }

    static func acme(_ store: any Store) async throws {
        let account = ACMEAccountRecord(id: "acct1", provisioner: "acme", thumbprint: "tp1", jwk: "{}", status: .valid, contact: ["mailto:a@example.com"],
                                        termsAgreed: true, eabKeyID: nil, createdAt: epoch)
        try await store.write { try await $0.insertACMEAccount(account) }
        try expect(try await store.read { try await $0.acmeAccount(provisioner: "acme", thumbprint: "tp1") } == account, "account by key")
        do {
            var twin = account
            twin.id = "acct2"
            try await store.write { [twin] in try await $0.insertACMEAccount(twin) }
            throw ContractFailure(description: "a second account with the same key was accepted")
        } catch let error as StoreError {
            try expect(error.code == .duplicate, "same key twice gives .duplicate")
        }
        let challenge = ACMEChallengeRecord(id: "c1", type: "http-01", token: "tok", status: .pending)
        var authz = ACMEAuthorizationRecord(id: "z1", accountID: "acct1", provisioner: "acme", identifier: ACMEIdentifier(type: "dns", value: "a.example.com"),
                                            wildcard: false, status: .pending, expires: epoch.addingTimeInterval(3600), challenges: [challenge], createdAt: epoch)
        let order = ACMEOrderRecord(id: "o1", accountID: "acct1", provisioner: "acme", status: .pending, identifiers: [authz.identifier], profile: "classic",
                                    expires: epoch.addingTimeInterval(3600), authorizationIDs: ["z1"], replaces: "aki.serial", createdAt: epoch)
        try await store.write { [authz] s in
            try await s.insertACMEAuthorization(authz)
            try await s.insertACMEOrder(order)
        }
        try expect(try await store.read { try await $0.acmeOrder(id: "o1") } == order, "order reads back")
        try expect(try await store.read { try await $0.countACMEOrders(account: "acct1", since: epoch) } == 1, "orders per account")
        try expect(try await store.read { try await $0.countACMEOrders(name: "a.example.com", since: epoch) } == 1, "orders per name")
        try expect(try await store.read { try await $0.acmeOrders(replacing: "aki.serial") }.map(\.id) == ["o1"], "orders by replaces")
        try expect(try await store.read { try await $0.validACMEAuthorization(account: "acct1", lookup: "dns:a.example.com", now: epoch) } == nil,
                   "a pending authorization is not reused")
        authz.status = .valid
        try await store.write { [authz] in try await $0.updateACMEAuthorization(authz) }
        try expect(try await store.read { try await $0.validACMEAuthorization(account: "acct1", lookup: "dns:a.example.com", now: epoch) } == authz,
                   "a valid authorization is reused")
        let key = ACMEEABKeyRecord(id: "kid-1", name: "team", hmacKey: "AAAA", allowedNames: ["*.example.com"], createdAt: epoch, createdBy: "t")
        try await store.write { try await $0.insertEABKey(key) }
        try expect(try await store.read { try await $0.eabKey(id: "kid-1") } == key, "EAB key reads back")
        try await store.write { try await $0.consumeACMENonce("n1", expires: epoch) }
        do {
            try await store.write { try await $0.consumeACMENonce("n1", expires: epoch) }
            throw ContractFailure(description: "a nonce was redeemed twice")
        } catch let error as StoreError {
            try expect(error.code == .duplicate, "second redemption gives .duplicate")
        }
        try expect(try await store.write { try await $0.pruneACMENonces(before: epoch.addingTimeInterval(1)) } == 1, "expired nonces are pruned")
        try await store.write { try await $0.insertSetting("k", value: "v") }
        try expect(try await store.read { try await $0.setting("k") } == "v", "setting reads back")
    }

    static func dashboard(_ store: any Store) async throws {
        let session = DashboardSessionRecord(id: "s1", tokenID: "t1", name: "ops", role: "admin", csrf: "x", createdAt: epoch, expiresAt: epoch.addingTimeInterval(60))
        try await store.write { try await $0.insertDashboardSession(session) }
        try expect(try await store.read { try await $0.dashboardSession(id: "s1") } == session, "session reads back")
        try await store.write { try await $0.revokeDashboardSession(id: "s1", at: epoch) }
        try expect(try await store.read { try await $0.dashboardSession(id: "s1") }?.revokedAt == epoch, "session revoked")
        try await store.write { try await $0.insertIssuer(issuer("ca")) }
        try await store.write { s in
            for i in 0..<30 {
                var c = certificate(serial: String(format: "%02x", i + 16), cn: "host\(i).example.com", notAfterDays: Double(i + 1), owner: i % 2 == 0 ? "even" : nil)
                c.createdAt = epoch
                try await s.insertCertificate(c)
                try await s.appendAudit(AuditDraft(time: epoch, actor: "t", action: i % 2 == 0 ? "certificate.issued" : "token.created", object: "certificate:\(c.serial)"))
            }
        }
        var query = CertificateQuery(now: epoch, limit: 10)
        query.search = "host1"
        let found = try await store.read { [query] in try await $0.certificates(query) }.map(\.commonName!)
        try expect(found == ["host1.example.com"] + (10...18).map { "host\($0).example.com" }, "prefix search in expiry order: \(found)")
        query.search = "*.example.com"
        try expect(try await store.read { [query] in try await $0.countCertificates(query, upTo: 100) } == 30, "suffix search counts every host")
        try expect(try await store.read { [query] in try await $0.countCertificates(query, upTo: 5) } == 5, "counts stop at the cap")
        // Keyset pages in a descending sort cover every row once, forward and back.
        query.search = nil
        query.sort = .notAfterDescending
        var seen: [String] = []
        var cursor: CertificateCursor?
        for _ in 0..<4 {
            query.cursor = cursor
            let page = try await store.read { [query] in try await $0.certificates(query) }
            seen += page.map(\.serial)
            guard let last = page.last else { break }
            cursor = CertificateCursor(value: query.sort.value(of: last), fingerprint: last.fingerprint)
        }
        try expect(seen.count == 30 && Set(seen).count == 30, "keyset pages cover 30 rows once: \(seen.count)")
        query.cursor = CertificateCursor(value: String(Int64(epoch.addingTimeInterval(10 * 86_400).timeIntervalSince1970)), fingerprint: "", backward: true)
        let before = try await store.read { [query] in try await $0.certificates(query) }
        try expect(before.count == 10 && before.first!.notAfter > before.last!.notAfter, "a backward page keeps the sort order")
        let stats = try await store.read { try await $0.certificateStatistics(now: epoch) }
        try expect(stats.active == 30 && stats.expiring7 == 6 && stats.expiring30 == 29 && stats.expiryByWeek.reduce(0, +) == 30,
                   "statistics: \(stats.active) active, \(stats.expiring7) within 7 days, \(stats.expiring30) within 30")
        try expect(stats.issuedByDay.last == 30 && stats.byIssuer["ca"] == 30, "issuance per day and per issuer")
        let report = try await store.read { try await $0.complianceReport(CompliancePolicy(), now: epoch, examples: 3) }
        try expect(report.agility.quantumVulnerable == 30 && report.agility.postQuantum == 0, "every ECDSA key is quantum-vulnerable")
        let issued = try await store.read { try await $0.auditEntries(AuditFilter(action: "certificate.", limit: 100)) }
        try expect(issued.count == 15 && issued.first!.seq > issued.last!.seq, "audit filter by action prefix, newest first")
    }

    static func sightings(_ store: any Store) async throws {
        let later = epoch.addingTimeInterval(3_600)
        let tls = CertificateSighting(fingerprint: "f1", location: "www.example.com:443", serverName: "www.example.com", kind: .tls,
                                      host: "www.example.com", port: 443, address: "192.0.2.1", tlsVersion: "TLSv1.2", cipher: "ECDHE-ECDSA-AES128-GCM-SHA256",
                                      firstSeen: epoch, lastSeen: epoch)
        try await store.write { try await $0.recordSighting(tls) }
        var again = tls
        again.firstSeen = later
        again.lastSeen = later
        again.tlsVersion = "TLSv1.3"
        again.cipher = "TLS_AES_128_GCM_SHA256"
        try await store.write { [again] in try await $0.recordSighting(again) }
        let file = CertificateSighting(fingerprint: "f1", location: "/etc/ssl/www.pem", kind: .file, path: "/etc/ssl/www.pem", firstSeen: epoch, lastSeen: epoch)
        try await store.write { try await $0.recordSighting(file) }
        // Seen again at an older time (an import of an old scan): last-seen never goes back.
        var older = tls
        older.firstSeen = epoch.addingTimeInterval(-60)
        older.lastSeen = epoch.addingTimeInterval(-60)
        try await store.write { [older] in try await $0.recordSighting(older) }
        let seen = try await store.read { try await $0.sightings(fingerprint: "f1") }
        try expect(seen.count == 2, "one row per place: \(seen.count)")
        try expect(seen[0].location == "www.example.com:443" && seen[0].lastSeen == later && seen[0].firstSeen == epoch.addingTimeInterval(-60)
                   && seen[0].tlsVersion == "TLSv1.3", "last-seen moves forward, first-seen back, TLS details follow the newest: \(seen[0])")
        try expect(seen[1] == file, "the file sighting reads back")
        try expect(try await store.read { try await $0.sightings(seenSince: later, limit: 10) }.map(\.location) == ["www.example.com:443"], "seen since")
        try expect(try await store.read { try await $0.sightings(fingerprint: "f2") }.isEmpty, "no sightings for an unknown certificate")
    }

    /// One certificate per check (and some that must not be found), each finding known in advance.
    static func compliance(_ store: any Store) async throws {
        let day = 86_400.0
        func cert(_ serial: String, cn: String? = nil, issuer: String = "ca", subject: String? = nil, notBefore: Double = -10, notAfter: Double = 90,
                  key: (String, Int) = ("ECDSA", 256), signature: String = "ecdsa-with-SHA256", sans: [String]? = nil, spki: String? = nil,
                  ca: Bool = false, source: CertificateSource = .imported) -> CertificateRecord {
            let name = cn ?? "\(serial).example.com"
            var r = certificate(serial: serial, issuer: issuer, cn: name)
            r.subject = subject ?? "/CN=\(name)"
            r.sans = sans ?? ["DNS:\(name)"]
            r.notBefore = epoch.addingTimeInterval(notBefore * day)
            r.notAfter = epoch.addingTimeInterval(notAfter * day)
            (r.keyAlgorithm, r.keySize) = key
            r.signatureAlgorithm = signature
            r.publicKeySHA256 = spki ?? String(repeating: "0", count: 64 - serial.count) + serial
            r.isCA = ca
            r.source = source
            return r
        }
        let records = [
            cert("a1", key: ("RSA", 1024)),                                               // weak-key
            cert("a2", key: ("ECDSA", 192)),                                              // weak-key
            cert("b1", key: ("RSA", 2048), signature: "sha1WithRSAEncryption"),          // sha1-signature
            cert("b2", key: ("RSA", 2048), signature: "md5WithRSAEncryption"),           // md5-signature
            cert("c1", notBefore: -100, notAfter: -1),                                    // expired-in-use
            cert("c2", notBefore: -100, notAfter: -1),                                    // expired, not in use: nothing
            cert("d1", notAfter: 3),                                                      // expiring-soon-in-use
            cert("d2", notAfter: 20),                                                     // expiring-in-use
            cert("d3", notAfter: 20),                                                     // expiring, seen 40 days ago: nothing
            cert("e1", issuer: "/CN=self", subject: "/CN=self"),                          // self-signed-in-use
            cert("e2", issuer: "/CN=Nobody CA"),                                          // unknown-issuer-in-use
            cert("e3", issuer: "/CN=Known CA"),                                           // known issuer: nothing
            cert("e4", cn: "Known CA", issuer: "/CN=Root", subject: "/CN=Known CA", notAfter: 1000, sans: [], ca: true),
            cert("f1", cn: "*.example.com"),                                              // wildcard
            cert("g1", spki: "shared"), cert("g2", spki: "shared"),                       // shared-key (both)
            cert("h1", notAfter: 300),                                                    // long-validity (200 days allowed at 2027-01-15)
            cert("i1", notAfter: 2400, key: ("RSA", 2048), sans: [], ca: true),          // rsa-2048-after-2030 (a CA: no validity finding)
            cert("j1", key: ("ML-DSA", 65), signature: "ML-DSA-65"),                      // clean
            cert("k1", key: ("RSA", 1024)),                                               // revoked below: nothing
        ]
        try await store.write { session in
            try await session.insertIssuer(issuer("ca"))
            for r in records { try await session.insertCertificate(r) }
            try await session.updateCertificateRevocation(fingerprint: records.last!.fingerprint, status: .revoked, revokedAt: epoch, reason: 1, invalidityDate: nil)
        }
        func fp(_ serial: String) -> String { records.first { $0.serial == serial }!.fingerprint }
        func seen(_ serial: String, daysAgo: Double = 1, position: Int = 0) -> CertificateSighting {
            CertificateSighting(fingerprint: fp(serial), location: "10.0.0.1:443", serverName: "\(serial).example.com", kind: .tls, host: "10.0.0.1", port: 443,
                                chainPosition: position, firstSeen: epoch.addingTimeInterval(-daysAgo * day), lastSeen: epoch.addingTimeInterval(-daysAgo * day))
        }
        let sightings = [seen("c1"), seen("d1"), seen("d2"), seen("d3", daysAgo: 40), seen("e1"), seen("e2"), seen("e3"), seen("e4", position: 1),
                         CertificateSighting(fingerprint: fp("c2"), location: "/etc/ssl/c2.pem", kind: .file, path: "/etc/ssl/c2.pem", firstSeen: epoch, lastSeen: epoch)]
        try await store.write { session in for s in sightings { try await session.recordSighting(s) } }

        let report = try await store.read { try await $0.complianceReport(CompliancePolicy(), now: epoch, examples: nil) }
        let expected: [ComplianceCheck: Set<String>] = [
            .weakKey: ["a1", "a2"], .sha1Signature: ["b1"], .md5Signature: ["b2"], .expiredInUse: ["c1"], .expiringSoonInUse: ["d1"],
            .expiringInUse: ["d2"], .selfSignedInUse: ["e1"], .unknownIssuerInUse: ["e2"], .wildcard: ["f1"], .sharedKey: ["g1", "g2"],
            .longValidity: ["h1"], .rsa2048AfterSunset: ["i1"],
        ]
        try expect(report.results.map(\.check) == ComplianceCheck.allCases, "every check reported, in order")
        for result in report.results {
            let found = Set(result.findings.map(\.certificate.serial))
            try expect(found == expected[result.check] ?? [] && result.count == found.count,
                       "\(result.check.rawValue): found \(found.sorted()) (count \(result.count)), expected \((expected[result.check] ?? []).sorted())")
        }
        let expired = report.results.first { $0.check == .expiredInUse }!.findings[0]
        try expect(expired.sightings.map(\.location) == ["10.0.0.1:443"] && expired.detail.contains("(1 day ago)"), "a finding carries its sightings: \(expired.detail)")
        let shared = report.results.first { $0.check == .sharedKey }!.findings
        try expect(shared.first { $0.certificate.serial == "g1" }?.related == [fp("g2")], "a shared key names the other certificate")
        // In scope: not revoked, and valid or in use (c1 expired but in use; c2, d3 do not count as in use).
        try expect(report.inventory == records.count && report.inScope == records.count - 2 && report.inUse == 7,
                   "inventory \(report.inventory), in scope \(report.inScope), in use \(report.inUse)")
        try expect(report.agility.postQuantum == 1 && report.agility.quantumVulnerable == report.inScope - 1, "crypto agility: \(report.agility)")
        try expect(report.agility.keys.first { $0.name == "RSA 2048" }?.count == 3, "counts by key: \(report.agility.keys)")
        try expect(report.highestSeverity == .critical, "the highest severity")

        // Examples only: the counts stay exact.
        let sample = try await store.read { try await $0.complianceReport(CompliancePolicy(), now: epoch, examples: 1) }
        try expect(sample.results.first { $0.check == .weakKey }.map { ($0.count, $0.findings.count) } ?? (0, 0) == (2, 1), "examples cap the findings, not the count")
        // The policy moves the windows: 60 days of "seen" makes d3 in use; 2 days of "expiring" and 400 days of validity find nothing.
        let wide = try await store.read {
            try await $0.complianceReport(CompliancePolicy(seenWithin: 60 * day, expiringWithin: 2 * day, maxValidityDays: 400), now: epoch, examples: nil)
        }
        func serials(_ report: ComplianceReport, _ check: ComplianceCheck) -> Set<String> {
            Set(report.results.first { $0.check == check }!.findings.map(\.certificate.serial))
        }
        try expect(serials(wide, .expiringSoonInUse).isEmpty && serials(wide, .expiringInUse).isEmpty, "a 2-day window: nothing expires within it")
        try expect(serials(wide, .longValidity).isEmpty, "a 400-day maximum allows h1's 310 days")
        try expect(wide.inUse == 8, "60 days of sightings count d3 as in use: \(wide.inUse)")
    }
}
