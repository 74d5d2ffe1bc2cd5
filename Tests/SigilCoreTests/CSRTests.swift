import Crypto
import Foundation
import SigilCore
import SwiftASN1
import Testing
import X509

@Suite("Certificate signing requests")
struct CSRTests {
    static let types = PrivateKeyTests.types

    func sampleRequest() throws -> CSRRequest {
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/C=US/O=Example Corp/CN=www.example.com"))
        request.subjectAltNames = [.dns("example.com"), .ip([10, 0, 0, 1]), .email("a@example.com"), .uri("spiffe://x/y")]
        request.keyUsage = KeyUsage(digitalSignature: true)
        request.extendedKeyUsage = [.serverAuth, .clientAuth]
        request.addCommonNameToSubjectAltNames()
        return request
    }

    @Test("build → DER → parse → equal, signature valid", arguments: types)
    func roundTrip(type: KeyType) throws {
        let key = try PrivateKey.generate(type)
        let csr = try sampleRequest().signed(with: key)
        let parsed = try CertificationRequest(derEncoded: csr.derBytes)
        #expect(parsed.derBytes == csr.derBytes)
        #expect(parsed.subject == csr.subject)
        #expect(parsed.publicKey == key.publicKey)
        #expect(parsed.isSignatureValid)
        #expect(try parsed.subjectAltNames().map(\.description) == [
            "DNS:www.example.com", "DNS:example.com", "IP:10.0.0.1", "email:a@example.com", "URI:spiffe://x/y",
        ])
        let extensions = try parsed.requestedExtensions()
        #expect(try extensions.keyUsage?.digitalSignature == true)
        #expect(try extensions.extendedKeyUsage.map(Array.init) == [.serverAuth, .clientAuth])
        let pem = try CertificationRequest(pemOrDER: Array(csr.pemString.utf8))
        #expect(pem.derBytes == csr.derBytes)
    }

    @Test("a flipped bit inside the signature is caught", arguments: types)
    func tamperedSignature(type: KeyType) throws {
        let csr = try sampleRequest().signed(with: try PrivateKey.generate(type))
        var der = csr.derBytes
        // The signature BIT STRING is the last element: flip a bit in its final byte.
        der[der.count - 1] ^= 0x01
        let tampered = try CertificationRequest(derEncoded: der)
        #expect(!tampered.isSignatureValid)
        #expect(CSRLinter.lint(tampered).contains { $0.code == "bad-signature" })
    }

    @Test("a changed subject breaks the signature")
    func tamperedInfo() throws {
        let csr = try sampleRequest().signed(with: try PrivateKey.generate(.ecP256))
        var der = csr.derBytes
        let target = Array("Example".utf8)
        let index = der.firstRange(of: target)!.lowerBound
        der[index] = UInt8(ascii: "F")
        #expect(!(try CertificationRequest(derEncoded: der)).isSignatureValid)
    }

    @Test("swift-certificates agrees on classical requests", arguments: [KeyType.ecP256, .ecP384, .ecP521, .rsa(bits: 2048), .ed25519])
    func crossCheckWithSwiftCertificates(type: KeyType) throws {
        let csr = try sampleRequest().signed(with: try PrivateKey.generate(type))
        let theirs = try CertificateSigningRequest(derEncoded: csr.derBytes)
        #expect(theirs.subject == csr.subject)
        #expect(theirs.publicKey.isValidSignature(theirs.signature, for: theirs))
        #expect(try theirs.attributes.extensionRequest?.extensions.subjectAlternativeNames?.count == 5)
    }

    @Test("swift-certificates' requests read back")
    func readsSwiftCertificatesRequests() throws {
        let key = P256.Signing.PrivateKey()
        let theirs = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("a.example.com") },
            privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        var coder = DER.Serializer()
        try coder.serialize(theirs)
        let ours = try CertificationRequest(derEncoded: coder.serializedBytes)
        #expect(ours.isSignatureValid)
        #expect(ours.subject.openSSLString == "/CN=a.example.com")
    }

    @Test func openSSLRequestWithChallengePassword() throws {
        let csr = try CertificationRequest(pemOrDER: Array(Fixtures.cpCSR.utf8), source: "cp.csr")
        #expect(csr.isSignatureValid)
        #expect(csr.challengePassword == "hunter2")
        #expect(csr.publicKey?.sha256Fingerprint == Fixtures.sec1Fingerprint)
        #expect(CSRLinter.lint(csr).contains { $0.code == "challenge-password" })
    }

    @Test func weakOpenSSLRequestIsLintedForKeyAndHash() throws {
        let csr = try CertificationRequest(pemOrDER: Array(Fixtures.weakCSR.utf8), source: "weak.csr")
        #expect(csr.signatureAlgorithm == .rsaPKCS1(.sha1))
        #expect(csr.isSignatureValid)
        let codes = Set(CSRLinter.lint(csr).map(\.code))
        #expect(codes.isSuperset(of: ["weak-key", "weak-hash", "no-san"]))
    }

    @Test func truncatedRequestsFailCleanly() throws {
        let der = try sampleRequest().signed(with: try PrivateKey.generate(.ecP256)).derBytes
        for length in stride(from: 0, to: der.count, by: 7) {
            #expect(throws: SigilError.self) { try CertificationRequest(derEncoded: Array(der.prefix(length))) }
        }
        var trailing = der
        trailing.append(0)
        #expect(throws: SigilError.self) { try CertificationRequest(derEncoded: trailing) }
    }

    @Test func cnIsAddedToSANsOnceAndOnlyWhenHostLike() throws {
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=www.example.com"), subjectAltNames: [.dns("www.example.com")])
        request.addCommonNameToSubjectAltNames()
        #expect(request.subjectAltNames == [.dns("www.example.com")])
        var person = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=Jane Doe"))
        person.addCommonNameToSubjectAltNames()
        #expect(person.subjectAltNames.isEmpty)
        var ip = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=10.1.2.3"))
        ip.addCommonNameToSubjectAltNames()
        #expect(ip.subjectAltNames == [.ip([10, 1, 2, 3])])
    }
}

@Suite("Lint")
struct LintTests {
    func sign(_ request: CSRRequest, _ type: KeyType = .ecP256) throws -> CertificationRequest {
        try request.signed(with: try PrivateKey.generate(type))
    }

    @Test func cleanRequestHasNoErrors() throws {
        let csr = try sign(CSRRequest(subject: try DistinguishedName.parseOpenSSL("/C=US/CN=www.example.com"), subjectAltNames: [.dns("www.example.com")]))
        #expect(CSRLinter.lint(csr).filter { $0.severity != .info }.isEmpty)
    }

    @Test func findsEveryProblemAtOnce() throws {
        // A subject and names built directly, bypassing the checks `sigil csr new` makes.
        let subject = DistinguishedName([
            RelativeDistinguishedName(try .init(type: SubjectAttributeType.country.oid, printableString: "XX")),
            RelativeDistinguishedName(.init(type: SubjectAttributeType.commonName.oid, utf8String: "www.example.com")),
        ])
        let request = CSRRequest(subject: subject, subjectAltNames: [
            .dns("10.0.0.1"), .dns("bad_name.example.com"), .dns("*.*.example.com"), .email("not-an-email"),
        ], keyUsage: KeyUsage(keyEncipherment: true))
        let codes = Set(CSRLinter.lint(try sign(request)).map(\.code))
        #expect(codes.isSuperset(of: ["invalid-country", "cn-not-in-san", "ip-in-dns-san", "invalid-dns-name", "invalid-wildcard", "invalid-email", "key-usage-mismatch"]))
    }

    @Test func templateViolationsAreErrors() throws {
        let csr = try sign(CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=www.other.org"), subjectAltNames: [.dns("www.other.org")]))
        let template = CSRTemplate(subject: .init(required: ["O"]), keyTypes: ["rsa:3072"], san: .init(requiredSuffixes: [".example.com"]))
        let findings = CSRLinter.lint(csr, template: template).filter { $0.code == "template" }
        #expect(findings.count == 3)
    }
}

@Suite("Templates")
struct TemplateTests {
    let template = CSRTemplate(
        subject: .init(fixed: ["O": "Example Corp", "C": "US"], required: ["CN", "O"]),
        keyTypes: ["ec:P-256", "rsa:3072"],
        san: .init(requiredSuffixes: [".example.com"], allowedTypes: ["DNS", "IP"], min: 1, max: 3))

    @Test func fixedAttributesAreFilledInConventionalOrder() throws {
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=www.example.com"))
        try template.apply(to: &request)
        #expect(request.subject.openSSLString == "/C=US/O=Example Corp/CN=www.example.com")
    }

    @Test func compliantRequestPasses() throws {
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=www.example.com"), subjectAltNames: [.dns("www.example.com")])
        try template.apply(to: &request)
        #expect(template.violations(subject: request.subject, subjectAltNames: request.subjectAltNames, keyType: .ecP256).isEmpty)
    }

    @Test func everyBrokenRuleIsListed() throws {
        let subject = try DistinguishedName.parseOpenSSL("/O=Other Inc")
        let sans: [SubjectAltName] = [.dns("a.example.org"), .email("x@example.com"), .dns("b.example.com"), .dns("c.example.com")]
        let violations = template.violations(subject: subject, subjectAltNames: sans, keyType: .rsa(bits: 2048))
        #expect(violations.count == 7, "\(violations)")
        #expect(violations.contains { $0.contains("must be 'Example Corp'") })
        #expect(violations.contains { $0.contains("CN is required") })
        #expect(violations.contains { $0.contains("rsa:2048 is not allowed") })
        #expect(violations.contains { $0.contains("email:x@example.com is not allowed") })
        #expect(violations.contains { $0.contains("a.example.org is not under") })
        #expect(violations.contains { $0.contains("at most 3") })
        #expect(violations.contains { $0.contains("subject C must be 'US'") })
    }

    @Test func suffixMatchingIsByLabel() {
        #expect(CSRTemplate.isUnder("www.example.com", suffix: ".example.com"))
        #expect(CSRTemplate.isUnder("www.example.com", suffix: "example.com"))
        #expect(CSRTemplate.isUnder("example.com", suffix: "example.com"))
        #expect(!CSRTemplate.isUnder("example.com", suffix: ".example.com"))
        #expect(!CSRTemplate.isUnder("badexample.com", suffix: "example.com"))
    }

    @Test func invalidTemplateIsRejected() {
        let bad = CSRTemplate(subject: .init(required: ["Nope"]), keyTypes: ["rsa:512"], san: .init(allowedTypes: ["X400"]))
        let error = #expect(throws: SigilError.self) { try bad.validate() }
        #expect(error?.reasons.count == 3)
    }
}
