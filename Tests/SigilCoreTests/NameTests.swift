import Foundation
import SigilCore
import SwiftASN1
import Testing
import X509

@Suite("Subject strings")
struct SubjectTests {
    @Test func openSSLFormWithEveryField() throws {
        let text = "/C=US/ST=NY/L=New York/O=Example Corp/OU=IT Security/CN=www.example.com/emailAddress=admin@example.com"
        let name = try DistinguishedName.parseOpenSSL(text)
        #expect(name.openSSLString == text)
        let fields = name.fields
        #expect(fields.map(\.name) == ["C", "ST", "L", "O", "OU", "CN", "emailAddress"])
        #expect(fields[0].stringType == "PrintableString")
        #expect(fields[5].stringType == "UTF8String")
        #expect(fields[6].stringType == "IA5String")
    }

    @Test func escapesAndMultiValuedRDNs() throws {
        let name = try DistinguishedName.parseOpenSSL("/O=A\\/B Corp/CN=x.example.com+UID=42")
        #expect(Array(name).count == 2)
        #expect(name.values(of: SubjectAttributeType.named("O")!) == ["A/B Corp"])
        #expect(Array(name)[1].count == 2)
        #expect(try DistinguishedName.parseOpenSSL(name.openSSLString) == name)
    }

    @Test("bad subjects are refused with the reason", arguments: [
        ("CN=foo", "must start with '/'"),
        ("/CN", "NAME=value"),
        ("/XY=1", "unknown attribute"),
        ("/C=USA", "two-letter"),
        ("/C=XX", "ISO 3166"),
        ("/CN=", "empty"),
        ("/emailAddress=ü@example.com", "ASCII"),
        ("/CN=x\\", "lone"),
    ])
    func badSubject(text: String, reason: String) {
        let error = #expect(throws: SigilError.self) { try DistinguishedName.parseOpenSSL(text) }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func commonNameLengthBound() {
        let long = String(repeating: "a", count: 65)
        #expect(throws: SigilError.self) { try DistinguishedName.parseOpenSSL("/CN=\(long)") }
    }
}

@Suite("Subject alternative names")
struct SANTests {
    @Test func parsesEveryType() throws {
        #expect(try SubjectAltName(parsing: "DNS:WWW.Example.com") == .dns("www.example.com"))
        #expect(try SubjectAltName(parsing: "IP:10.0.0.1") == .ip([10, 0, 0, 1]))
        #expect(try SubjectAltName(parsing: "IP:2001:db8::1").description == "IP:2001:db8::1")
        #expect(try SubjectAltName(parsing: "email:a@example.com") == .email("a@example.com"))
        #expect(try SubjectAltName(parsing: "URI:spiffe://x/y") == .uri("spiffe://x/y"))
        #expect(try SubjectAltName(parsing: "DNS:*.example.com") == .dns("*.example.com"))
    }

    @Test("invalid names are refused", arguments: [
        "DNS:", "DNS:exa mple.com", "DNS:*.com", "DNS:www.*.example.com", "DNS:f*o.example.com", "DNS:-a.example.com",
        "DNS:a_b.example.com", "DNS:10.0.0.1", "DNS:example.com.", "IP:300.1.1.1", "IP:host", "email:nobody",
        "email:a@b@c", "URI:no-scheme", "XYZ:foo", "www.example.com", "DNS:bücher.example",
    ])
    func invalid(text: String) {
        #expect(throws: SigilError.self) { try SubjectAltName(parsing: text) }
    }

    @Test func ipInDNSSANIsNamed() {
        #expect(NameRules.dnsNameProblem("192.168.1.1")?.contains("IP SAN") == true)
    }
}
