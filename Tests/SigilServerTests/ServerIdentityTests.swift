import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import SigilTesting
import Testing

@Suite("Server TLS identity")
struct ServerIdentityTests {
    @Test func issuedByItsOwnCAAndRenewedAtTwoThirds() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let identity = try await ServerIdentity(authority: ca.authority, names: ["sigil.example.com", "127.0.0.1"], days: 30)
        let first = try #require(identity.serial)
        let record = try await ca.authority.findCertificate(first)
        #expect(record.sans == ["DNS:sigil.example.com", "IP:127.0.0.1"])
        #expect(record.owner == "sigil-server" && record.tags == ["server-tls"])
        let due = try #require(identity.renewalDue)
        let lifetime = record.notAfter.timeIntervalSince(record.notBefore)
        #expect(abs(due.timeIntervalSince(record.notBefore) - lifetime * 2 / 3) < 1)
        ca.clock.advance(by: 21 * 86_400)
        try await identity.renew()
        let second = try #require(identity.serial)
        #expect(second != first)
        #expect(try await ca.authority.findCertificate(second).notBefore > record.notBefore)
        _ = try identity.tlsConfiguration()
    }
}
