import Foundation
import SigilCore
@testable import SigilDiscovery
import SigilTesting
import Testing
import X509

/// Certificates made here, so every test knows exactly what a file holds.
enum Fixtures {
    static func certificate(_ name: String, notAfter: Date = Date(timeIntervalSinceNow: 86_400 * 30), key: PrivateKey? = nil) throws -> X509Certificate {
        let key = try key ?? PrivateKey.generate(.ecP256)
        let dn = try DistinguishedName.parseOpenSSL("/O=Elsewhere/CN=\(name)")
        return try CertificateBuilder(serialNumber: SerialNumber.random(), issuer: dn, subject: dn, notBefore: notAfter.addingTimeInterval(-86_400 * 60),
                                      notAfter: notAfter, publicKey: key.publicKey, extensions: []).sign(with: key)
    }

    /// `openssl crl2pkcs7 -nocrl -certfile a.pem -certfile b.pem` of two self-signed certificates (CN a.example, b.example).
    static let pkcs7 = """
        -----BEGIN PKCS7-----
        MIIDLQYJKoZIhvcNAQcCoIIDHjCCAxoCAQExADALBgkqhkiG9w0BBwGgggMCMIIB
        fjCCASOgAwIBAgIUH/H+2d+KBKwjkE7CdoR4xUTfJOowCgYIKoZIzj0EAwIwFDES
        MBAGA1UEAwwJYS5leGFtcGxlMB4XDTI2MTEzMDEyMDY1NFoXDTM2MTEyNzEyMDY1
        NFowFDESMBAGA1UEAwwJYS5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
        QgAEJ35X27+VPG0ruF/ot2ejsG5q4wlIpM4kZHU+EMimRluVFqeY5HI/I/UyDeG2
        9HjhlhTrQj2KfxbC9G1CBSIIzKNTMFEwHQYDVR0OBBYEFHF9Ljd/HfizgU0oABQS
        aRh6E5IQMB8GA1UdIwQYMBaAFHF9Ljd/HfizgU0oABQSaRh6E5IQMA8GA1UdEwEB
        /wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAOx5KYWrmIc2DVF9DbVQky1okE1Q
        YjFxu9QQOxFvaZ0DAiEAyFxX1LUyB2iW/dLnVMeBwHONC35/NVUY7fzHT/lMKrow
        ggF8MIIBI6ADAgECAhQhWE1rFwCEJ+3/7ASPDoI38L9vljAKBggqhkjOPQQDAjAU
        MRIwEAYDVQQDDAliLmV4YW1wbGUwHhcNMjYxMTMwMTIwNjU0WhcNMzYxMTI3MTIw
        NjU0WjAUMRIwEAYDVQQDDAliLmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMB
        BwNCAAQ45IVIXFuE3dasq3NJdyfUk2p1tu1pIDa7wL3KVNHZTRCjFVH0ZSCTydeW
        Q5BDKgUM8pdNyou4vHz3ne9P2Fjio1MwUTAdBgNVHQ4EFgQUyhjtY8r7S+w6t0hu
        GzkJrK2LtHcwHwYDVR0jBBgwFoAUyhjtY8r7S+w6t0huGzkJrK2LtHcwDwYDVR0T
        AQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAh9dL32LPQp61H7t7DHYBnWHDivW
        VuvDnWsAxsdHxch4AiEAwtWnY+yeG9JTkD8LtddSRY2LSL7ykf2ykJbaQ8W8/QUx
        AA==
        -----END PKCS7-----
        """
}

@Suite("Certificate files")
struct CertificateFileTests {
    @Test("a PEM bundle: every certificate in order, keys counted and skipped, text around blocks ignored")
    func pemBundle() throws {
        let a = try Fixtures.certificate("a.example")
        let b = try Fixtures.certificate("b.example")
        let key = try PrivateKey.generate(.ecP256)
        let text = "subject=a\n" + a.pemString + key.pkcs8PEM() + "between\r\n" + b.pemString
        let file = CertificateFile(bytes: Array(text.utf8), source: "bundle.pem")
        #expect(file.certificates.map(\.sha256Fingerprint) == [a.sha256Fingerprint, b.sha256Fingerprint])
        #expect(file.privateKeys == 1)
        #expect(file.notes.isEmpty)
    }

    @Test("DER certificates")
    func der() throws {
        let a = try Fixtures.certificate("a.example")
        #expect(CertificateFile(bytes: a.derBytes, source: "a.der").certificates.map(\.sha256Fingerprint) == [a.sha256Fingerprint])
    }

    @Test("PKCS#7 certs-only bundles, PEM and DER")
    func pkcs7() throws {
        let pem = CertificateFile(bytes: Array(Fixtures.pkcs7.utf8), source: "ab.p7b")
        #expect(pem.certificates.map { $0.subject.values(of: .commonName).first } == ["a.example", "b.example"])
        let der = try PEM.parse(Fixtures.pkcs7).first!.derBytes
        let fromDER = CertificateFile(bytes: der, source: "ab.p7c")
        #expect(fromDER.certificates.map(\.sha256Fingerprint) == pem.certificates.map(\.sha256Fingerprint))
        #expect(try PKCS7Certificates.parse(der).count == 2)
        // A ContentInfo of another type is not a bundle.
        #expect(throws: (any Error).self) { try PKCS7Certificates.parse([0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01, 0xA0, 0x00]) }
    }

    @Test("junk: empty, binary, text, a key alone, damaged PEM", arguments: [
        ([UInt8](), "empty file"),
        ([0x00, 0xFF, 0x13, 0x37], "not PEM or DER"),
        ([0x30, 0x03, 0x02, 0x01, 0x01], "neither a certificate nor a PKCS#7"),
        (Array("just some notes\n".utf8), "not PEM or DER"),
        (Array("-----BEGIN CERTIFICATE-----\nAAAA\n".utf8), "truncated PEM"),
        (Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8), "not a valid certificate"),
        (Array("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".utf8), "PEM without certificates"),
    ])
    func junk(bytes: [UInt8], note: String) {
        let file = CertificateFile(bytes: bytes, source: "junk")
        #expect(file.isJunk)
        #expect(file.notes.contains { $0.contains(note) }, "\(file.notes)")
    }

    @Test("a private key alone is junk, and its body is never decoded")
    func keyOnly() throws {
        // A damaged key body: if it were decoded, PEM.parse would report invalid base64.
        let text = "-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n"
        let file = CertificateFile(bytes: Array(text.utf8), source: "key.pem")
        #expect(file.isJunk && file.privateKeys == 1)
        #expect(file.notes == ["private key only (skipped, not read)"])
    }
}
