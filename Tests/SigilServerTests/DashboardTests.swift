import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import SigilTesting
import Testing

/// The dashboard's security rules and its speed over a large inventory; the browser flows
/// run in real Chromium in tests/interop/test_dashboard.py.
@Suite("Dashboard")
struct DashboardTests {
    func signIn(_ f: APIFixture, _ role: Role) async throws -> (cookie: String, csrf: String) {
        let sessions = DashboardSessions(store: f.ca.store, tokens: f.env.tokens, clock: f.ca.clock)
        let (secret, session) = try #require(try await sessions.signIn(token: f.tokens[role]!))
        return ("\(DashboardSessions.cookieName)=\(secret)", session.record.csrf)
    }

    @Test("no session: pages redirect to sign-in; forms without the CSRF token or the role are refused")
    func accessRules() async throws {
        let f = try await APIFixture.make()
        defer { Task { await f.ca.close() } }
        let (_, ready) = try await issue(f, "www.example.com")
        let auditor = try await signIn(f, .auditor)
        let admin = try await signIn(f, .admin)
        try await f.test { client in
            let anonymous = try await client.execute(uri: "/ui/certificates", method: .get)
            #expect(anonymous.status == .seeOther)
            #expect(anonymous.headers[.location]?.hasPrefix("/signin") == true)
            let page = try await client.execute(uri: "/", method: .get, headers: [.cookie: admin.cookie])
            #expect(page.status == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            // The auditor sees the certificate without any action form.
            let view = try await client.execute(uri: "/ui/certificates/\(ready)", method: .get, headers: [.cookie: auditor.cookie])
            let text = String(buffer: view.body)
            #expect(view.status == .ok && !text.contains("revoke-form") && !text.contains("ownership-form"))
            // A forged POST: the auditor's own CSRF token, but not the role; and an admin without the token.
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            var headers = form
            headers[.cookie] = auditor.cookie
            let refused = try await client.execute(uri: "/ui/certificates/\(ready)/revoke", method: .post, headers: headers,
                                                   body: ByteBuffer(string: "csrf=\(auditor.csrf)&reason=1&confirm=yes"))
            #expect(refused.status == .forbidden)
            headers[.cookie] = admin.cookie
            let noToken = try await client.execute(uri: "/ui/certificates/\(ready)/revoke", method: .post, headers: headers,
                                                   body: ByteBuffer(string: "reason=1&confirm=yes"))
            #expect(noToken.status == .forbidden)
            let done = try await client.execute(uri: "/ui/certificates/\(ready)/revoke", method: .post, headers: headers,
                                                body: ByteBuffer(string: "csrf=\(admin.csrf)&reason=1&confirm=yes"))
            #expect(done.status == .seeOther)
        }
        let record = try await f.ca.authority.findCertificate(ready)
        #expect(record.storedStatus == .revoked && record.revocationReason == 1)
        // Revoking the token ends its sessions.
        _ = try await f.env.tokens.revoke("t-auditor", actor: "test")
        try await f.test { client in
            let after = try await client.execute(uri: "/", method: .get, headers: [.cookie: auditor.cookie])
            #expect(after.status == .seeOther)
        }
    }

    func issue(_ f: APIFixture, _ name: String) async throws -> (CertificateRecord, String) {
        let (csr, _) = try TestAuthority.csr([name])
        guard case .issued(let issued) = try await f.ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            throw SigilError.badInput("not issued")
        }
        return (issued.record, issued.record.fingerprint)
    }

    @Test("100,000 certificates: every inventory and overview page is served in under 100 ms")
    func largeInventory() async throws {
        let f = try await APIFixture.make()
        defer { Task { await f.ca.close() } }
        let (template, _) = try await issue(f, "template.example.com")
        let now = f.ca.clock.now()
        let algorithms: [(String, Int)] = [("ECDSA", 256), ("ECDSA", 384), ("RSA", 2048), ("RSA", 3072), ("ML-DSA", 65), ("RSA", 1024)]
        // Rows are written directly: the point is the read path, not issuance.
        for batch in 0..<100 {
            try await f.ca.store.write { session in
                for i in 0..<1000 {
                    let n = batch * 1000 + i
                    var r = template
                    r.serial = String(format: "%032x", n + 1_000_000)
                    r.fingerprint = String(format: "%064x", n + 1_000_000)
                    r.commonName = "host-\(n).example.com"
                    r.sans = ["DNS:host-\(n).example.com"]
                    r.notBefore = now.addingTimeInterval(-Double(n % 30) * 86_400)
                    r.notAfter = now.addingTimeInterval(Double(n % 200 - 10) * 86_400 + 3600)
                    r.createdAt = r.notBefore
                    (r.keyAlgorithm, r.keySize) = algorithms[n % algorithms.count]
                    r.owner = "team-\(n % 20)"
                    r.tags = n % 7 == 0 ? ["pci", "web"] : ["web"]
                    r.profile = n % 3 == 0 ? "tls-client" : "tls-server"
                    if n % 20 == 0 {
                        r.storedStatus = .revoked
                        r.revokedAt = now
                        r.revocationReason = 4
                    }
                    try await session.insertCertificate(r)
                }
            }
        }
        #expect(try await f.ca.store.read { try await $0.countCertificates() } >= 100_001)
        // What `sigil serve` does at start and hourly.
        try await f.ca.store.optimize()
        // The overview's aggregates are computed off the request path; report what one computation costs.
        let aggregateStart = ContinuousClock.now
        _ = try await f.ca.store.read { s in (try await s.certificateStatistics(now: now), try await s.complianceReport(CompliancePolicy(), now: now, examples: 25)) }
        print("dashboard aggregates over 100,000 certificates: \(ContinuousClock.now - aggregateStart)")
        let admin = try await signIn(f, .admin)
        let pages = [
            "/", "/ui/certificates", "/ui/certificates?bv=1799000000&bf=ff", "/ui/certificates?q=host-4242", "/ui/certificates?q=host-99", "/ui/certificates?q=*.example.com&sort=serial",
            "/ui/certificates?status=revoked", "/ui/certificates?status=expired&sort=-not_after", "/ui/certificates?issuer=intermediate&sort=common_name",
            "/ui/certificates?profile=tls-client&av=1800000000&af=00", "/ui/certificates?owner=team-7", "/ui/certificates?tag=pci",
            "/ui/certificates?source=issued&algorithm=RSA", "/ui/certificates?expiring=30", "/ui/certificates?sort=serial&av=000000000000000000000000000f4240&af=0",
            "/ui/certificates?sort=-created_at", "/ui/compliance", "/ui/audit",
        ]
        try await f.test { client in
            // One warm-up request (templates, the first statement preparations).
            _ = try await client.execute(uri: "/", method: .get, headers: [.cookie: admin.cookie])
            // The best of several tries is the server's own time: a try is only ever slower than it,
            // when other work (tests run in parallel, a build on a loaded 2-core machine) takes the
            // CPU. A page over the budget is tried again, a little later, up to 20 times: a page that
            // really needs more than 100 ms never gets under it.
            let budget = Duration.milliseconds(100)
            for uri in pages {
                var best = Duration.seconds(100)
                var tries = 0
                while tries < 5 || (best >= budget && tries < 20) {
                    if tries >= 5 { try await Task.sleep(for: .milliseconds(50 * (tries - 4))) }
                    tries += 1
                    let started = ContinuousClock.now
                    let response = try await client.execute(uri: uri, method: .get, headers: [.cookie: admin.cookie])
                    best = min(best, ContinuousClock.now - started)
                    #expect(response.status == .ok, "\(uri)")
                }
                let millis = Double(best.components.seconds) * 1000 + Double(best.components.attoseconds) / 1e15
                print("dashboard page \(uri): \(String(format: "%.1f", millis)) ms (best of \(tries))")
                #expect(best < budget, "\(uri) took \(millis) ms at best in \(tries) tries")
            }
        }
    }
}
