import Foundation
import SwiftASN1
import X509

/// One thing a linter found, with how much it matters.
public struct LintFinding: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Hashable, Codable, Comparable {
        case error, warning, info
        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
    }
    public var severity: Severity
    /// A stable identifier scripts can match (`weak-key`, `no-san`, ...).
    public var code: String
    public var message: String

    public init(_ severity: Severity, _ code: String, _ message: String) {
        self.severity = severity
        self.code = code
        self.message = message
    }
}

/// Checks a request against RFC 5280 / RFC 2986 syntax, the CA/Browser Forum
/// Baseline Requirements' expectations for TLS server requests, NIST key and
/// hash minimums and, when given, a corporate template. It reports every finding;
/// it never stops at the first.
public enum CSRLinter {
    public static func lint(_ csr: CertificationRequest, template: CSRTemplate? = nil) -> [LintFinding] {
        var findings: [LintFinding] = []
        func add(_ severity: LintFinding.Severity, _ code: String, _ message: String) {
            findings.append(LintFinding(severity, code, message))
        }

        // Proof of possession (RFC 2986 §3).
        if let key = csr.publicKey {
            if !csr.isSignatureValid {
                add(.error, "bad-signature", "the request's signature does not verify with its public key (\(csr.signatureAlgorithm))")
            }
            switch key.keyType {
            case .rsa(let bits) where bits < KeyType.minimumRSABits:
                add(.error, "weak-key", "RSA key of \(bits) bits; at least \(KeyType.minimumRSABits) bits are required (NIST SP 800-57, BR 6.1.5)")
            case .rsa(let bits) where bits % 8 != 0:
                add(.error, "weak-key", "RSA modulus of \(bits) bits is not a multiple of 8 (BR 6.1.5)")
            case .mldsa44, .mldsa65, .mldsa87:
                add(.info, "post-quantum-key", "\(key.keyType) key: post-quantum; check that the CA and relying parties support ML-DSA")
            default:
                break
            }
        } else {
            add(.error, "unsupported-key", csr.publicKeyProblem ?? "unsupported public key")
        }
        switch csr.signatureAlgorithm {
        case let algorithm where algorithm.usesWeakHash:
            add(.error, "weak-hash", "signed with \(algorithm): SHA-1 and MD5 are broken for signatures (BR 7.1.3.2, NIST SP 800-131A)")
        case .unknown(let oid):
            add(.error, "unknown-signature-algorithm", "unknown signature algorithm \(oid)")
        case .rsaPSS:
            add(.warning, "unverifiable-signature", "RSASSA-PSS request signatures cannot be checked by Sigil yet")
        default:
            break
        }

        // The subject (RFC 5280 §4.1.2.6, Appendix A upper bounds, X.520 countryName).
        let fields = csr.subject.fields
        for field in fields {
            guard let type = SubjectAttributeType.forOID(field.oid) else { continue }
            guard let value = field.value else {
                add(.error, "bad-attribute-encoding", "subject \(type.shortName) is not a string")
                continue
            }
            if value.isEmpty { add(.error, "empty-attribute", "subject \(type.shortName) is empty") }
            if value.count > type.maxLength {
                add(.error, "attribute-too-long", "subject \(type.shortName) is \(value.count) characters; RFC 5280 allows \(type.maxLength)")
            }
            if value != value.trimmingCharacters(in: .whitespaces) {
                add(.warning, "attribute-whitespace", "subject \(type.shortName) '\(value)' has leading or trailing spaces")
            }
            if type == .country {
                if !ISO3166.alpha2.contains(value) {
                    add(.error, "invalid-country", "country '\(value)' is not an ISO 3166-1 alpha-2 code")
                }
                if field.stringType != "PrintableString" {
                    add(.warning, "country-string-type", "country is a \(field.stringType); X.520 requires a PrintableString")
                }
            }
            if type == .email {
                add(.warning, "email-in-subject", "emailAddress in the subject is deprecated; put the address in an email SAN (RFC 5280 §4.1.2.6)")
                if let problem = NameRules.emailProblem(value) { add(.error, "invalid-email", "subject emailAddress: \(problem)") }
            }
        }
        let commonNames = csr.subject.values(of: .commonName)
        if commonNames.count > 1 { add(.warning, "multiple-cn", "the subject has \(commonNames.count) CNs; CAs keep at most one") }

        // Names (RFC 5280 §4.2.1.6, BR 7.1.2.7.12 and 7.1.4.2).
        var sans: [SubjectAltName] = []
        var extensions = Certificate.Extensions()
        do {
            extensions = try csr.requestedExtensions()
            sans = try csr.subjectAltNames()
        } catch let error as SigilError {
            add(.error, "bad-extension", error.message)
        } catch {
            add(.error, "bad-extension", "malformed requested extension: \(ASN1ErrorText.describe(error))")
        }
        if sans.isEmpty {
            if csr.subject.isEmpty {
                add(.error, "empty-subject", "the request has neither a subject nor subject alternative names")
            } else if commonNames.isEmpty || commonNames.contains(where: { NameRules.looksLikeDNSName($0) || NameRules.parseIPAddress($0) != nil }) {
                add(.error, "no-san", "no subject alternative name: TLS clients ignore the CN and the Baseline Requirements require a SAN")
            } else {
                add(.warning, "no-san", "no subject alternative name")
            }
        }
        var seen = Set<SubjectAltName>()
        for entry in sans {
            if !seen.insert(entry).inserted { add(.warning, "duplicate-san", "SAN \(entry) appears more than once") }
            switch entry {
            case .dns(let host):
                if NameRules.parseIPAddress(host) != nil {
                    add(.error, "ip-in-dns-san", "DNS SAN '\(host)' is an IP address; it belongs in an IP SAN")
                } else if let problem = NameRules.dnsNameProblem(host) {
                    add(.error, host.contains("*") ? "invalid-wildcard" : "invalid-dns-name", "DNS SAN: \(problem)")
                } else if host.hasPrefix("*.") {
                    add(.info, "wildcard", "wildcard SAN \(host): one key then serves every name under \(host.dropFirst(2))")
                }
                if host != host.lowercased() { add(.info, "uppercase-dns-name", "DNS SAN '\(host)' has uppercase letters") }
            case .ip(let bytes):
                if bytes.count != 4 && bytes.count != 16 {
                    add(.error, "invalid-ip", "IP SAN of \(bytes.count) bytes; an address has 4 or 16")
                }
            case .email(let address):
                if let problem = NameRules.emailProblem(address) { add(.error, "invalid-email", "email SAN: \(problem)") }
            case .uri(let uri):
                if let problem = NameRules.uriProblem(uri) { add(.error, "invalid-uri", "URI SAN: \(problem)") }
            case .other(let text):
                add(.info, "other-san", "SAN \(text) is not a DNS, IP, email or URI name")
            }
        }
        for cn in commonNames {
            let asSAN: SubjectAltName?
            if let ip = NameRules.parseIPAddress(cn) {
                asSAN = .ip(ip)
            } else if cn.contains("."), !cn.contains(" "), !cn.contains("@") {
                asSAN = .dns(cn.lowercased())
                if let problem = NameRules.dnsNameProblem(cn) { add(.error, "invalid-dns-name", "CN: \(problem)") }
            } else {
                asSAN = nil
            }
            if let asSAN, !sans.contains(asSAN) {
                add(.error, "cn-not-in-san", "CN '\(cn)' is not among the SANs (BR 7.1.4.3: the CN must repeat a SAN)")
            }
        }

        // Usages consistent with the key (RFC 5280 §4.2.1.3; RFC 8410 §5; RFC 9881 §5).
        if let keyUsage = try? extensions.keyUsage, let key = csr.publicKey {
            switch key.keyType {
            case .ecP256, .ecP384, .ecP521:
                if keyUsage.keyEncipherment || keyUsage.dataEncipherment {
                    add(.error, "key-usage-mismatch", "keyEncipherment/dataEncipherment requested for an EC key, which cannot encrypt")
                }
            case .ed25519, .mldsa44, .mldsa65, .mldsa87:
                if keyUsage.keyEncipherment || keyUsage.dataEncipherment || keyUsage.keyAgreement {
                    add(.error, "key-usage-mismatch", "encryption or key agreement requested for a signature-only \(key.keyType) key")
                }
            case .rsa:
                if keyUsage.keyAgreement { add(.error, "key-usage-mismatch", "keyAgreement requested for an RSA key") }
            }
        }
        if (try? extensions.basicConstraints).flatMap({ $0 }).map({ if case .isCertificateAuthority = $0 { return true } else { return false } }) == true {
            add(.warning, "ca-requested", "the request asks for a CA certificate (basicConstraints cA=TRUE)")
        }
        if csr.challengePassword != nil {
            add(.warning, "challenge-password", "the request carries a challengePassword, which is sent and stored in clear")
        }

        if let template {
            for violation in template.violations(subject: csr.subject, subjectAltNames: sans, keyType: csr.publicKey?.keyType) {
                add(.error, "template", violation)
            }
        }
        return findings
    }
}
