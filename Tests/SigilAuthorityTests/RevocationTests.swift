import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import SigilTesting
import SwiftASN1
import Testing
import X509

@Suite("Revocation and CRLs")
struct RevocationTests {
    func issue(_ ca: TestAuthority, _ name: String) async throws -> IssuedCertificate {
        let (csr, _) = try TestAuthority.csr([name])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            throw SigilError.badInput("not issued")
        }
        return issued
    }

    @Test("every reason code round-trips through the CRL", arguments: RevocationReason.allCases.filter { $0 != .removeFromCRL })
    func reasons(reason: RevocationReason) async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let issued = try await issue(ca, "r.example.com")
        let invalidity = TestAuthority.defaultNow.addingTimeInterval(-7200)
        _ = try await ca.authority.revoke(issued.record.serial, reason: reason, invalidityDate: invalidity, actor: "t")
        let stored = try #require(try await ca.store.read { try await $0.latestCRL(issuer: "intermediate") })
        let crl = try CertificateRevocationList(derEncoded: stored.der)
        #expect(crl.isSigned(by: issued.chain[0].publicKey!))
        #expect(crl.entries.count == 1)
        #expect(Hex.encode(crl.entries[0].serial) == issued.record.serial)
        // RFC 5280 §5.3.1: unspecified is written as an absent reason code.
        #expect(crl.entries[0].reason == (reason == .unspecified ? nil : reason))
        #expect(crl.entries[0].invalidityDate == invalidity)
        #expect(crl.version == 1)
        #expect(crl.issuingDistributionPoint == "http://pki.example.com/crl/intermediate.crl")
        #expect(crl.authorityKeyIdentifier == issued.chain[0].subjectKeyIdentifier)
    }

    @Test func crlNumbersIncreaseAndRevokedTwiceIsAnError() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let first = try await ca.authority.generateCRL(issuer: "intermediate", actor: "t")
        let second = try await ca.authority.generateCRL(issuer: "intermediate", actor: "t")
        #expect(second.number == first.number + 1)
        let issued = try await issue(ca, "x.example.com")
        _ = try await ca.authority.revoke(issued.record.serial, reason: .superseded, actor: "t")
        let error = await #expect(throws: SigilError.self) { try await ca.authority.revoke(issued.record.serial, reason: .keyCompromise, actor: "t") }
        #expect(error?.message.contains("already revoked") == true)
        await #expect(throws: SigilError.self) { try await ca.authority.revoke("00ff", reason: .keyCompromise, actor: "t") }
        let third = try await ca.store.read { try await $0.latestCRL(issuer: "intermediate") }
        #expect(third!.number > second.number)
    }

    @Test func holdCanBeReleased() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let issued = try await issue(ca, "h.example.com")
        _ = try await ca.authority.revoke(issued.record.serial, reason: .certificateHold, actor: "t")
        #expect(try await CertificateRevocationList(derEncoded: ca.store.read { try await $0.latestCRL(issuer: "intermediate") }!.der).entries.count == 1)
        let released = try await ca.authority.revoke(issued.record.serial, reason: .removeFromCRL, actor: "t")
        #expect(released.storedStatus == .active)
        #expect(try await CertificateRevocationList(derEncoded: ca.store.read { try await $0.latestCRL(issuer: "intermediate") }!.der).entries.isEmpty)
        await #expect(throws: SigilError.self) { try await ca.authority.revoke(issued.record.serial, reason: .removeFromCRL, actor: "t") }
    }

    @Test func largeCRLIsBuiltInOnePass() throws {
        let key = try PrivateKey.generate(.ecP256)
        var builder = CRLBuilder(issuer: try DistinguishedName.parseOpenSSL("/CN=CA"), thisUpdate: TestAuthority.defaultNow,
                                 nextUpdate: TestAuthority.defaultNow.addingTimeInterval(86_400), crlNumber: 7, authorityKeyIdentifier: [1, 2, 3],
                                 distributionPoint: nil)
        for i in 0..<20_000 {
            let serial = withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) } + [0x80]
            try builder.append(CRLEntry(serial: serial, revocationDate: TestAuthority.defaultNow, reason: i % 2 == 0 ? .keyCompromise : nil))
        }
        let der = try builder.sign(algorithm: key.signatureAlgorithm, using: key.sign)
        let crl = try CertificateRevocationList(derEncoded: der)
        #expect(crl.entries.count == 20_000)
        #expect(crl.crlNumber == 7)
        #expect(crl.isSigned(by: key.publicKey))
        #expect(crl.entries[1].reason == nil && crl.entries[2].reason == .keyCompromise)
    }

    @Test func malformedCRLsFailCleanly() throws {
        #expect(throws: SigilError.self) { try CertificateRevocationList(derEncoded: [0x30, 0x03, 0x02, 0x01]) }
        #expect(throws: SigilError.self) { try CertificateRevocationList(derEncoded: []) }
    }
}

@Suite("OCSP encoding")
struct OCSPEncodingTests {
    @Test func requestsParseWithNonceAndSeveralCertificates() throws {
        let key = try PrivateKey.generate(.ecP256)
        let issuer = try CertificateBuilder(serialNumber: [1], issuer: try DistinguishedName.parseOpenSSL("/CN=CA"), subject: try DistinguishedName.parseOpenSSL("/CN=CA"),
                                            notBefore: TestAuthority.defaultNow, notAfter: TestAuthority.defaultNow.addingTimeInterval(86_400),
                                            publicKey: key.publicKey, extensions: []).sign(with: key)
        let der = try OCSPTestRequest.make(issuer: issuer, serials: [[0x01, 0x02], [0x7f]], hash: .sha256, nonce: Array("0123456789abcdef".utf8))
        let request = try OCSP.Request(derEncoded: der)
        #expect(request.certIDs.count == 2)
        #expect(request.certIDs[0].serialNumber == [0x01, 0x02])
        #expect(request.certIDs[0].hashAlgorithm == .sha256)
        #expect(request.nonce?.count == 18)
    }

    @Test("malformed requests are rejected", arguments: [[UInt8](), [0x30, 0x00], [0x30, 0x02, 0x30, 0x00], Array("hello".utf8), [0x30, 0x82, 0xff]])
    func malformed(bytes: [UInt8]) {
        #expect(throws: SigilError.self) { try OCSP.Request(derEncoded: bytes) }
    }

    @Test func errorResponsesAreTheMinimalStructure() {
        #expect(OCSP.errorResponse(.malformedRequest) == [0x30, 0x03, 0x0a, 0x01, 0x01])
        #expect(OCSP.errorResponse(.unauthorized) == [0x30, 0x03, 0x0a, 0x01, 0x06])
    }
}


@Suite("CRL shards")
struct CRLShardTests {
    @Test func eachCertificateNamesItsShardAndTheShardCRLListsIt() async throws {
        let ca = try await TestAuthority.make(crlShards: 4)
        defer { Task { await ca.close() } }
        var issued: [IssuedCertificate] = []
        for i in 0..<12 {
            let (csr, _) = try TestAuthority.csr(["s\(i).example.com"])
            guard case .issued(let one) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else { return }
            issued.append(one)
        }
        let shards = Set(issued.compactMap(\.record.crlShard))
        #expect(shards.count > 1 && shards.isSubset(of: [0, 1, 2, 3]))
        let victim = issued[0]
        let shard = try #require(victim.record.crlShard)
        let urls = try ExtraExtensions.crlDistributionPointURLs(victim.certificate.extensions[oid: ExtraExtensions.crlDistributionPointsOID]!)
        #expect(urls == ["http://pki.example.com/crl/intermediate/\(shard).crl"])
        _ = try await ca.authority.revoke(victim.record.serial, reason: .keyCompromise, actor: "t")
        let shardCRL = try CertificateRevocationList(derEncoded: try await ca.authority.currentCRL(issuer: "intermediate", shard: shard, actor: "t").der)
        #expect(shardCRL.entries.map { Hex.encode($0.serial) } == [victim.record.serial])
        #expect(shardCRL.issuingDistributionPoint == urls[0])
        let other = (shard + 1) % 4
        #expect(try CertificateRevocationList(derEncoded: try await ca.authority.currentCRL(issuer: "intermediate", shard: other, actor: "t").der).entries.isEmpty)
        #expect(try CertificateRevocationList(derEncoded: try await ca.authority.currentCRL(issuer: "intermediate", actor: "t").der).entries.count == 1)
    }
}
