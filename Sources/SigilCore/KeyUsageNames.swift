import SwiftASN1
import X509

/// The names of key usage bits and extended key usage purposes as users and
/// OpenSSL write them (RFC 5280 §4.2.1.3 and §4.2.1.12).
public enum UsageNames {
    public static let keyUsageBits = [
        "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
        "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
    ]

    /// Parses a comma-separated list of key usage names.
    public static func parseKeyUsage(_ names: [String]) throws -> KeyUsage {
        var usage = KeyUsage()
        for raw in names {
            let name = raw.trimmingCharacters(in: .whitespaces)
            switch name.lowercased() {
            case "digitalsignature": usage.digitalSignature = true
            case "nonrepudiation", "contentcommitment": usage.nonRepudiation = true
            case "keyencipherment": usage.keyEncipherment = true
            case "dataencipherment": usage.dataEncipherment = true
            case "keyagreement": usage.keyAgreement = true
            case "keycertsign": usage.keyCertSign = true
            case "crlsign": usage.cRLSign = true
            case "encipheronly": usage.encipherOnly = true
            case "decipheronly": usage.decipherOnly = true
            default:
                throw SigilError.badInput("unknown key usage '\(name)': expected \(keyUsageBits.joined(separator: ", "))")
            }
        }
        return usage
    }

    public static func keyUsageNames(_ usage: KeyUsage) -> [String] {
        var out: [String] = []
        if usage.digitalSignature { out.append("digitalSignature") }
        if usage.nonRepudiation { out.append("nonRepudiation") }
        if usage.keyEncipherment { out.append("keyEncipherment") }
        if usage.dataEncipherment { out.append("dataEncipherment") }
        if usage.keyAgreement { out.append("keyAgreement") }
        if usage.keyCertSign { out.append("keyCertSign") }
        if usage.cRLSign { out.append("cRLSign") }
        if usage.encipherOnly { out.append("encipherOnly") }
        if usage.decipherOnly { out.append("decipherOnly") }
        return out
    }

    static let extendedKeyUsages: [(String, ExtendedKeyUsage.Usage)] = [
        ("serverAuth", .serverAuth), ("clientAuth", .clientAuth), ("codeSigning", .codeSigning),
        ("emailProtection", .emailProtection), ("timeStamping", .timeStamping), ("OCSPSigning", .ocspSigning),
        ("anyExtendedKeyUsage", .any),
    ]

    /// Parses extended key usage names or dotted OIDs.
    public static func parseExtendedKeyUsage(_ names: [String]) throws -> [ExtendedKeyUsage.Usage] {
        try names.map { raw in
            let name = raw.trimmingCharacters(in: .whitespaces)
            if let known = extendedKeyUsages.first(where: { $0.0.lowercased() == name.lowercased() }) { return known.1 }
            if name.first?.isNumber == true, let oid = try? ASN1ObjectIdentifier(dotRepresentation: name) {
                return ExtendedKeyUsage.Usage(oid: oid)
            }
            throw SigilError.badInput(
                "unknown extended key usage '\(name)': expected \(extendedKeyUsages.map(\.0).joined(separator: ", ")) or a dotted OID")
        }
    }

    public static func extendedKeyUsageName(_ usage: ExtendedKeyUsage.Usage) -> String {
        extendedKeyUsages.first(where: { $0.1 == usage })?.0 ?? ASN1ObjectIdentifier(usage).description
    }

    /// Names of well-known extensions for display.
    public static func extensionName(_ oid: ASN1ObjectIdentifier) -> String {
        switch oid {
        case .X509ExtensionID.subjectAlternativeName: return "subjectAltName"
        case .X509ExtensionID.keyUsage: return "keyUsage"
        case .X509ExtensionID.extendedKeyUsage: return "extendedKeyUsage"
        case .X509ExtensionID.basicConstraints: return "basicConstraints"
        case .X509ExtensionID.subjectKeyIdentifier: return "subjectKeyIdentifier"
        case .X509ExtensionID.authorityKeyIdentifier: return "authorityKeyIdentifier"
        case .X509ExtensionID.nameConstraints: return "nameConstraints"
        case .X509ExtensionID.authorityInformationAccess: return "authorityInfoAccess"
        default: return oid.description
        }
    }
}
