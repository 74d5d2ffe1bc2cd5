import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import SigilTesting
import SwiftASN1
import Testing
import X509

@Suite("CA hierarchy")
struct HierarchyTests {
    @Test func rootAndIntermediateChainUp() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let chain = try await ca.authority.chain(issuer: "intermediate")
        #expect(chain.count == 2)
        let (intermediate, root) = (chain[0], chain[1])
        #expect(root.isSelfIssued && root.isCertificateAuthority)
        #expect(root.publicKey?.keyType == .ecP384)
        #expect(intermediate.publicKey?.keyType == .ecP256)
        #expect(root.isSigned(by: root.publicKey!))
        #expect(intermediate.isSigned(by: root.publicKey!))
        #expect(intermediate.authorityKeyIdentifier == root.subjectKeyIdentifier)
        if case .isCertificateAuthority(let pathLength) = try intermediate.extensions.basicConstraints {
            #expect(pathLength == 0)
        } else {
            Issue.record("intermediate is not a CA")
        }
        #expect(abs(root.notAfter.timeIntervalSince(root.notBefore) - 3650 * 86_400 + 1) < 2)
        // swift-certificates parses what Sigil wrote, byte for byte.
        let theirs = try Certificate(derEncoded: intermediate.derBytes)
        #expect(theirs.serialNumber.bytes.elementsEqual(intermediate.serialNumber))
    }

    @Test func swiftCertificatesVerifierAcceptsTheChain() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["www.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            Issue.record("not issued"); return
        }
        let root = try Certificate(derEncoded: issued.chain[1].derBytes)
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(validationTime: TestAuthority.defaultNow)
        }
        let result = await verifier.validate(
            leafCertificate: try Certificate(derEncoded: issued.certificate.derBytes),
            intermediates: CertificateStore([try Certificate(derEncoded: issued.chain[0].derBytes)]))
        guard case .validCertificate = result else { Issue.record("chain rejected: \(result)"); return }
    }

    @Test("ML-DSA hierarchy, every link verified")
    func mldsaHierarchy() async throws {
        let ca = try await TestAuthority.make(root: .mldsa87, intermediate: .mldsa65)
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["pq.example.com"], keyType: .mldsa44)
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-client", requester: "t")) else {
            Issue.record("not issued"); return
        }
        #expect(issued.certificate.signatureAlgorithm == .mldsa65)
        #expect(issued.certificate.isSigned(by: issued.chain[0].publicKey!))
        #expect(issued.chain[0].isSigned(by: issued.chain[1].publicKey!))
        #expect(issued.chain[1].isSigned(by: issued.chain[1].publicKey!))
        #expect(issued.certificate.publicKey?.keyType == .mldsa44)
    }

    @Test func wrongPassphraseIsClear() async throws {
        let ca = try await TestAuthority.make(intermediate: nil)
        defer { Task { await ca.close() } }
        let error = await #expect(throws: SigilError.self) { try await ca.authority.unlock("root", passphrase: Array("nope nope".utf8)) }
        #expect(error?.kind == .wrongPassphrase)
        #expect(error?.message.contains("root") == true)
    }

    @Test func offlineRootImportChecksKeyAndCAFlag() async throws {
        let ca = try await TestAuthority.make(intermediate: nil)
        defer { Task { await ca.close() } }
        let csr = try await ca.authority.createIntermediateRequest(
            NewCAOptions(name: "issuing", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Test/CN=Issuing"), keyType: .ecP256, days: 0),
            passphrase: TestAuthority.passphrase, actor: "t")
        // An outside root: a separate key and self-signed certificate.
        let outsideKey = try PrivateKey.generate(.ecP256)
        let outsideName = try DistinguishedName.parseOpenSSL("/CN=Outside Root")
        func sign(_ key: PublicKey, ca: Bool) throws -> X509Certificate {
            try CertificateBuilder(
                serialNumber: SerialNumber.random(), issuer: outsideName, subject: try DistinguishedName.parseOpenSSL("/C=US/O=Test/CN=Issuing"),
                notBefore: TestAuthority.defaultNow, notAfter: TestAuthority.defaultNow.addingTimeInterval(86_400 * 365), publicKey: key,
                extensions: [try Certificate.Extension(ca ? BasicConstraints.isCertificateAuthority(maxPathLength: 0) : .notCertificateAuthority, critical: true)]
            ).sign(with: outsideKey)
        }
        let wrongKey = try await #expect(throws: SigilError.self) {
            try await ca.authority.importIssuerCertificate(name: "issuing", certificate: try sign(try PrivateKey.generate(.ecP256).publicKey, ca: true), parentChain: [], actor: "t")
        }
        #expect(wrongKey?.message.contains("different key") == true)
        let notCA = try await #expect(throws: SigilError.self) {
            try await ca.authority.importIssuerCertificate(name: "issuing", certificate: try sign(csr.publicKey!, ca: false), parentChain: [], actor: "t")
        }
        #expect(notCA?.message.contains("not a CA") == true)
        let imported = try await ca.authority.importIssuerCertificate(name: "issuing", certificate: try sign(csr.publicKey!, ca: true), parentChain: [], actor: "t")
        #expect(imported.status == .active)
        let (leafCSR, _) = try TestAuthority.csr(["www.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: leafCSR, profile: "tls-server", issuer: "issuing", requester: "t")) else {
            Issue.record("not issued"); return
        }
        #expect(issued.certificate.isSigned(by: csr.publicKey!))
    }
}

@Suite("Issuance under policy")
struct IssuanceTests {
    @Test func tlsServerCertificateFollowsTheProfile() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, key) = try TestAuthority.csr(["www.example.com", "example.com"], subject: "/C=US/O=Drop Me/CN=www.example.com")
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            Issue.record("not issued"); return
        }
        let cert = issued.certificate
        #expect(cert.publicKey == key.publicKey)
        #expect(cert.subject.openSSLString == "/CN=www.example.com")
        #expect(issued.modifications.contains { $0.contains("O=Drop Me") })
        #expect(cert.subjectAltNames == [.dns("www.example.com"), .dns("example.com")])
        #expect(cert.serialNumber.count == 16 && cert.serialNumber[0] & 0x80 == 0)
        #expect(abs(cert.notAfter.timeIntervalSince(cert.notBefore) - (90 * 86_400 - 1)) < 1)
        #expect(try cert.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(try cert.extensions.extendedKeyUsage.map(Array.init) == [.serverAuth])
        #expect(try ExtraExtensions.crlDistributionPointURLs(cert.extensions[oid: ExtraExtensions.crlDistributionPointsOID]!) == ["http://pki.example.com/crl/intermediate.crl"])
        #expect(try ExtraExtensions.certificatePolicyIdentifiers(cert.extensions[oid: ExtraExtensions.certificatePoliciesOID]!) == [ExtraExtensions.domainValidatedPolicy])
        let stored = try await ca.store.read { try await $0.certificate(fingerprint: cert.sha256Fingerprint) }
        #expect(stored?.profile == "tls-server" && stored?.sans == ["DNS:www.example.com", "DNS:example.com"])
    }

    @Test func rsaKeysGetKeyEncipherment() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["rsa.example.com"], keyType: .rsa(bits: 2048))
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            Issue.record("not issued"); return
        }
        #expect(try issued.certificate.extensions.keyUsage == KeyUsage(digitalSignature: true, keyEncipherment: true))
    }

    @Test func everyBrokenRuleIsReportedAndAudited() async throws {
        var profiles = CertificateProfile.builtIn
        profiles["tls-server"]!.deniedNames = [".internal.example.com"]
        let ca = try await TestAuthority.make(profiles: profiles)
        defer { Task { await ca.close() } }
        let key = try PrivateKey.generate(.ed25519)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=other.example.com"))
        request.subjectAltNames = [.dns("db.internal.example.com")]
        let csr = try request.signed(with: key)
        let error = await #expect(throws: SigilError.self) {
            try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", days: 400, requester: "t"))
        }
        #expect(error?.kind == .policyViolation)
        let reasons = error?.reasons ?? []
        #expect(reasons.count == 4, "\(reasons)")
        #expect(reasons.contains { $0.contains("ed25519 is not allowed") })
        #expect(reasons.contains { $0.contains("denied") })
        #expect(reasons.contains { $0.contains("CN 'other.example.com'") })
        #expect(reasons.contains { $0.contains("400 days exceeds the maximum of 200") })
        let entries = try await ca.store.read { try await $0.auditEntries(afterSeq: 0, limit: 100) }
        #expect(entries.last?.action == "request.rejected")
        #expect(try await ca.store.read { try await $0.countCertificates() } == 2)
    }

    @Test("the BR validity cap moves with the date", arguments: [
        ("2026-11-30T00:00:00Z", 200), ("2027-03-15T00:00:00Z", 100), ("2029-03-15T00:00:00Z", 47), ("2026-01-01T00:00:00Z", 398),
    ])
    func brCap(date: String, days: Int) throws {
        #expect(BaselineRequirements.maximumValidityDays(at: try Date(date, strategy: .iso8601)) == days)
    }

    @Test func forgedProofOfPossessionIsRefused() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["www.example.com"])
        var der = csr.derBytes
        der[der.count - 1] ^= 0x01
        let forged = try CertificationRequest(derEncoded: der)
        let error = await #expect(throws: SigilError.self) {
            try await ca.authority.submit(IssuanceRequest(csr: forged, profile: "tls-server", requester: "t"))
        }
        #expect(error?.reasons.contains { $0.contains("possession") } == true)
    }

    @Test func approvalFlow() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["dev@example.com"], keyType: .ecP256, subject: "/O=Example/CN=Release Signing")
        guard case .pending(let pending) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "code-signing", requester: "alice")) else {
            Issue.record("not pending"); return
        }
        #expect(pending.status == .pending)
        let issued = try await ca.authority.approve(requestID: pending.id, actor: "bob", note: "looks right")
        #expect(try issued.certificate.extensions.extendedKeyUsage.map(Array.init) == [.codeSigning])
        let closed = try await ca.store.read { try await $0.request(id: pending.id) }
        #expect(closed?.status == .issued && closed?.decidedBy == "bob" && closed?.certificateSerial == issued.record.serial)
        await #expect(throws: SigilError.self) { try await ca.authority.approve(requestID: pending.id, actor: "bob") }
        guard case .pending(let second) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "code-signing", requester: "alice")) else {
            Issue.record("not pending"); return
        }
        let rejected = try await ca.authority.reject(requestID: second.id, reason: "not ours", actor: "bob")
        #expect(rejected.status == .rejected && rejected.reasons == ["not ours"])
        let actions = try await ca.store.read { try await $0.auditEntries(afterSeq: 0, limit: 100) }.map(\.action)
        #expect(actions.suffix(5) == ["request.approved", "certificate.issued", "request.received", "request.rejected"].suffix(5) || actions.contains("request.approved"))
        #expect(actions.contains("request.rejected"))
    }

    @Test func concurrentIssuanceGivesUniqueSerialsAndOneChain() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let csrs = try (0..<64).map { try TestAuthority.csr(["h\($0).example.com"]).0 }
        let serials = try await withThrowingTaskGroup(of: String.self) { group in
            for csr in csrs {
                group.addTask {
                    guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
                        throw SigilError.badInput("not issued")
                    }
                    return issued.record.serial
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(serials).count == 64)
        #expect(try await ca.store.read { try await $0.countCertificates() } == 66)
        #expect(try await ca.authority.verifyAudit().ok)
    }

    @Test func tamperingWithTheAuditTrailIsDetected() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        #expect(try await ca.authority.verifyAudit().ok)
        try await ca.store.write { session in
            try await (session as! SQLSession).execute(unsafeSQL: "UPDATE audit SET details = replace(details, 'ec:P-384', 'ec:P-385') WHERE seq = 1")
        }
        let result = try await ca.authority.verifyAudit()
        #expect(!result.ok)
        #expect(result.firstBadSeq == 1)
    }
}

@Suite("Issuer constraints")
struct IssuerConstraintTests {
    @Test func anIntermediateLimitedToTLSRefusesEmailAndCodeSigning() async throws {
        let ca = try await TestAuthority.make(intermediateEKU: ["serverAuth", "clientAuth"])
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["alice@example.com"], subject: "/CN=Alice")
        let error = await #expect(throws: SigilError.self) {
            try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "email", requester: "t"))
        }
        #expect(error?.reasons.contains { $0.contains("may only issue serverAuth, clientAuth") } == true)
        // OCSP responders are exempt from EKU chaining.
        let (responder, _) = try TestAuthority.csr(["ocsp.example.com"])
        guard case .issued = try await ca.authority.submit(IssuanceRequest(csr: responder, profile: "ocsp-signing", requester: "t")) else {
            Issue.record("ocsp-signing refused"); return
        }
    }

    @Test func pathLenZeroIssuerCannotIssueSubCAs() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["sub.example.com"], subject: "/O=Example/CN=Sub CA")
        // Refused when submitted, before anyone is asked to approve it.
        let error = await #expect(throws: SigilError.self) {
            try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "sub-ca", days: 365, requester: "t"))
        }
        #expect(error?.reasons.contains { $0.contains("pathLenConstraint 0") } == true)
    }

    @Test func akiRepeatsTheIssuersSubjectKeyIdentifier() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["aki.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else { return }
        #expect(issued.certificate.authorityKeyIdentifier == issued.chain[0].subjectKeyIdentifier)
    }
}
