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

/// `GET /api/v1/reports/compliance` and the dashboard's compliance page: the same engine as
/// `sigil report compliance`, so the same findings.
@Suite("Compliance report over HTTP")
struct ComplianceAPITests {
    /// A wildcard from Sigil, and an outside RSA 1024 certificate seen on an endpoint after it expired.
    static func seeded() async throws -> (APIFixture, wildcard: String, expired: String) {
        let fixture = try await APIFixture.make()
        let now = fixture.ca.clock.now()
        let (csr, _) = try TestAuthority.csr(["*.apps.example.com"])
        guard case .issued(let issued) = try await fixture.ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "test")) else {
            throw SigilError.badInput("not issued")
        }
        let key = try OutsideCertificates.rsaKey(bits: 1024)
        let old = try OutsideCertificates.make(subject: "/CN=old.example.com", publicKey: key.public, notBefore: now.addingTimeInterval(-90 * 86_400),
                                               notAfter: now.addingTimeInterval(-86_400), names: ["old.example.com"], signer: .rsaSHA1(key.private))
        let record = try CertificateRecord(old, issuer: old.issuer.openSSLString, source: .discovered, profile: nil, now: now)
        try await fixture.ca.store.write { session in
            try await session.insertCertificate(record)
            try await session.recordSighting(CertificateSighting(fingerprint: record.fingerprint, location: "192.0.2.7:443", kind: .tls, host: "192.0.2.7", port: 443,
                                                                 firstSeen: now, lastSeen: now))
        }
        return (fixture, issued.record.serial, old.serialHex)
    }

    @Test func everyFormatForAuditorsAndAbove() async throws {
        let (fixture, wildcard, expired) = try await Self.seeded()
        defer { Task { await fixture.ca.close() } }
        let expected: Set<String> = ["wildcard \(wildcard)", "expired-in-use \(expired)", "self-signed-in-use \(expired)", "weak-key \(expired)",
                                     "sha1-signature \(expired)"]
        try await fixture.test { client in
            for role in [Role.auditor, .operator, .admin] {
                try await client.execute(uri: "/api/v1/reports/compliance", method: .get, headers: fixture.headers(role)) { response in
                    #expect(response.status == .ok && response.headers[.contentType] == "application/json")
                    let findings = (decode(response.body)["findings"] as? [[String: Any]] ?? []).map {
                        "\($0["check"] as? String ?? "") \(($0["certificate"] as? [String: Any])?["serial"] as? String ?? "")"
                    }
                    #expect(Set(findings) == expected && findings.count == expected.count, "\(role): \(findings)")
                }
            }
            try await client.execute(uri: "/api/v1/reports/compliance?format=csv", method: .get, headers: fixture.headers(.auditor)) { response in
                #expect(response.headers[.contentType] == "text/csv; charset=utf-8")
                let lines = String(buffer: response.body).split(separator: "\r\n")
                #expect(lines.count == expected.count + 1 && lines[0].hasPrefix("severity,check,title,serial"))
            }
            try await client.execute(uri: "/api/v1/reports/compliance?format=html&expiring_within=10d", method: .get, headers: fixture.headers(.auditor)) { response in
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                #expect(String(buffer: response.body).contains("192.0.2.7:443"))
            }
            try await client.execute(uri: "/api/v1/reports/compliance", method: .get, headers: fixture.headers(.requester)) { response in
                #expect(response.status == .forbidden)
            }
            for bad in ["format=pdf", "format=text", "expiring_within=soon", "max_validity=0", "colour=red"] {
                try await client.execute(uri: "/api/v1/reports/compliance?\(bad)", method: .get, headers: fixture.headers(.auditor)) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                }
            }
        }
    }

    @Test func theDashboardShowsTheSameFindings() async throws {
        let (fixture, wildcard, expired) = try await Self.seeded()
        defer { Task { await fixture.ca.close() } }
        let auditor = try await DashboardTests().signIn(fixture, .auditor)
        try await fixture.test { client in
            try await client.execute(uri: "/ui/compliance", method: .get, headers: [.cookie: auditor.cookie]) { response in
                let page = String(buffer: response.body)
                #expect(response.status == .ok)
                for (check, count) in [("wildcard", 1), ("expired-in-use", 1), ("weak-key", 1), ("sha1-signature", 1), ("self-signed-in-use", 1), ("shared-key", 0)] {
                    #expect(page.contains("id=\"count-\(check)\">\(count)<"), "\(check) counts \(count)")
                }
                #expect(page.contains(wildcard) && page.contains(expired) && page.contains("192.0.2.7:443"))
                #expect(page.contains("PCI DSS v4.0 4.2.1.1") && page.contains("ISO/IEC 27001:2022 A.8.24"))
            }
        }
    }
}
