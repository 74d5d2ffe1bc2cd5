import Foundation
import SwiftASN1
import X509

/// A name attribute Sigil knows by name: its short and long names, OID, the
/// ASN.1 string type it is written with, and its RFC 5280 Appendix A upper bound.
public struct SubjectAttributeType: Sendable, Hashable {
    public enum StringType: String, Sendable {
        case printable = "PrintableString"
        case utf8 = "UTF8String"
        case ia5 = "IA5String"
    }

    public let shortName: String
    public let longName: String
    public let oid: ASN1ObjectIdentifier
    public let stringType: StringType
    public let maxLength: Int

    public static let all: [SubjectAttributeType] = [
        // RFC 5280 §4.1.2.4 and Appendix A; countryName is a PrintableString of two letters (X.520).
        .init(shortName: "C", longName: "countryName", oid: [2, 5, 4, 6], stringType: .printable, maxLength: 2),
        .init(shortName: "ST", longName: "stateOrProvinceName", oid: [2, 5, 4, 8], stringType: .utf8, maxLength: 128),
        .init(shortName: "L", longName: "localityName", oid: [2, 5, 4, 7], stringType: .utf8, maxLength: 128),
        .init(shortName: "O", longName: "organizationName", oid: [2, 5, 4, 10], stringType: .utf8, maxLength: 64),
        .init(shortName: "OU", longName: "organizationalUnitName", oid: [2, 5, 4, 11], stringType: .utf8, maxLength: 64),
        .init(shortName: "CN", longName: "commonName", oid: [2, 5, 4, 3], stringType: .utf8, maxLength: 64),
        // PKCS #9: emailAddress is an IA5String (RFC 2985 §5.2.1).
        .init(shortName: "emailAddress", longName: "emailAddress", oid: [1, 2, 840, 113549, 1, 9, 1], stringType: .ia5, maxLength: 255),
        .init(shortName: "serialNumber", longName: "serialNumber", oid: [2, 5, 4, 5], stringType: .printable, maxLength: 64),
        .init(shortName: "street", longName: "streetAddress", oid: [2, 5, 4, 9], stringType: .utf8, maxLength: 128),
        .init(shortName: "postalCode", longName: "postalCode", oid: [2, 5, 4, 17], stringType: .utf8, maxLength: 40),
        .init(shortName: "title", longName: "title", oid: [2, 5, 4, 12], stringType: .utf8, maxLength: 64),
        .init(shortName: "GN", longName: "givenName", oid: [2, 5, 4, 42], stringType: .utf8, maxLength: 32768),
        .init(shortName: "SN", longName: "surname", oid: [2, 5, 4, 4], stringType: .utf8, maxLength: 32768),
        .init(shortName: "businessCategory", longName: "businessCategory", oid: [2, 5, 4, 15], stringType: .utf8, maxLength: 128),
        .init(shortName: "organizationIdentifier", longName: "organizationIdentifier", oid: [2, 5, 4, 97], stringType: .utf8, maxLength: 64),
        // RFC 4519: domainComponent and uid are IA5String / UTF8String.
        .init(shortName: "DC", longName: "domainComponent", oid: [0, 9, 2342, 19_200_300, 100, 1, 25], stringType: .ia5, maxLength: 63),
        .init(shortName: "UID", longName: "userId", oid: [0, 9, 2342, 19_200_300, 100, 1, 1], stringType: .utf8, maxLength: 256),
    ]

    public static func named(_ name: String) -> SubjectAttributeType? {
        let lower = name.lowercased()
        if lower == "email" || lower == "e" { return all.first { $0.shortName == "emailAddress" } }
        return all.first { $0.shortName.lowercased() == lower || $0.longName.lowercased() == lower }
    }

    public static func forOID(_ oid: ASN1ObjectIdentifier) -> SubjectAttributeType? {
        all.first { $0.oid == oid }
    }

    public static let commonName = named("CN")!
    public static let country = named("C")!
    public static let email = named("emailAddress")!
}

/// One attribute of a subject name, decoded for display and policy.
public struct SubjectField: Sendable, Hashable {
    public var oid: ASN1ObjectIdentifier
    /// The short name (`CN`) or, for attributes Sigil does not know, the dotted OID.
    public var name: String
    /// The text, or nil when the value is not a string type.
    public var value: String?
    /// The ASN.1 string type it was encoded with (`UTF8String`, ...).
    public var stringType: String
}

extension DistinguishedName {
    /// Builds a name from an OpenSSL-style string: `/C=US/ST=NY/O=Example Corp/CN=www.example.com`.
    /// `\` escapes the next character (`\/`, `\+`, `\\`); `+` joins attributes into
    /// one multi-valued RDN, as `openssl req -subj` does. Attributes are kept in order.
    public static func parseOpenSSL(_ text: String) throws -> DistinguishedName {
        guard text.first == "/" else {
            throw SigilError.badInput("subject '\(text)' must start with '/', in the form /C=US/O=Example Corp/CN=www.example.com")
        }
        var rdns: [[(String, String, Int)]] = [[]]
        var current = ""
        var escaping = false
        var pieces: [(text: String, joinsPrevious: Bool, position: Int)] = []
        var joinNext = false
        var start = 1
        let chars = Array(text)
        var i = 1
        func flush(_ at: Int) {
            pieces.append((current, joinNext, start))
            current = ""
            start = at + 1
        }
        while i < chars.count {
            let ch = chars[i]
            if escaping {
                current.append(ch)
                escaping = false
            } else if ch == "\\" {
                escaping = true
            } else if ch == "/" {
                flush(i)
                joinNext = false
            } else if ch == "+" {
                flush(i)
                joinNext = true
            } else {
                current.append(ch)
            }
            i += 1
        }
        if escaping {
            throw SigilError.badInput("subject '\(text)' ends with a lone '\\'")
        }
        flush(chars.count)
        rdns = []
        for piece in pieces {
            if piece.text.isEmpty && piece.position >= chars.count && !piece.joinsPrevious { continue }
            guard let eq = piece.text.firstIndex(of: "=") else {
                throw SigilError.badInput("subject '\(text)': '\(piece.text)' at position \(piece.position + 1) is not of the form NAME=value")
            }
            let name = String(piece.text[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = String(piece.text[piece.text.index(after: eq)...])
            if piece.joinsPrevious, !rdns.isEmpty {
                rdns[rdns.count - 1].append((name, value, piece.position))
            } else {
                rdns.append([(name, value, piece.position)])
            }
        }
        guard !rdns.isEmpty else { throw SigilError.badInput("subject '\(text)' names no attributes") }
        var result: [RelativeDistinguishedName] = []
        for rdn in rdns {
            var attributes: [RelativeDistinguishedName.Attribute] = []
            for (name, value, position) in rdn {
                attributes.append(try makeAttribute(name: name, value: value, context: "subject '\(text)' at position \(position + 1)"))
            }
            result.append(RelativeDistinguishedName(attributes))
        }
        return DistinguishedName(result)
    }

    /// One attribute with the right string type and length checks.
    public static func makeAttribute(name: String, value: String, context: String) throws -> RelativeDistinguishedName.Attribute {
        guard let type = SubjectAttributeType.named(name) else {
            let known = SubjectAttributeType.all.prefix(7).map(\.shortName).joined(separator: ", ")
            throw SigilError.badInput("\(context): unknown attribute '\(name)' (known: \(known), serialNumber, street, DC, ...)")
        }
        guard !value.isEmpty else { throw SigilError.badInput("\(context): \(type.shortName) is empty") }
        if type == .country {
            guard value.count == 2, value.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                throw SigilError.badInput("\(context): country '\(value)' must be a two-letter ISO 3166 code such as US or DE")
            }
            guard ISO3166.alpha2.contains(value) else {
                throw SigilError.badInput("\(context): '\(value)' is not an ISO 3166-1 country code")
            }
        }
        guard value.count <= type.maxLength else {
            throw SigilError.badInput("\(context): \(type.shortName) is \(value.count) characters; RFC 5280 allows at most \(type.maxLength)")
        }
        do {
            switch type.stringType {
            case .printable: return try .init(type: type.oid, printableString: value)
            case .ia5: return try .init(type: type.oid, ia5String: value)
            case .utf8: return .init(type: type.oid, utf8String: value)
            }
        } catch {
            let kind = type.stringType == .ia5 ? "ASCII characters" : "letters, digits, spaces and '()+,-./:=?"
            throw SigilError.badInput("\(context): \(type.shortName) '\(value)' may contain only \(kind)")
        }
    }

    /// The attributes in order, decoded.
    public var fields: [SubjectField] {
        flatMap { rdn in
            rdn.map { attribute in
                let known = SubjectAttributeType.forOID(attribute.type)
                let any = ASN1Any(attribute.value)
                var stringType = "unknown"
                if let bytes = try? DER.Serializer.bytes(of: any), let tag = bytes.first {
                    switch tag {
                    case 0x0c: stringType = "UTF8String"
                    case 0x13: stringType = "PrintableString"
                    case 0x16: stringType = "IA5String"
                    case 0x14: stringType = "TeletexString"
                    case 0x1e: stringType = "BMPString"
                    case 0x1c: stringType = "UniversalString"
                    default: stringType = "tag 0x\(String(tag, radix: 16))"
                    }
                }
                return SubjectField(oid: attribute.type, name: known?.shortName ?? attribute.type.description,
                                    value: String(attribute.value), stringType: stringType)
            }
        }
    }

    /// The name as `openssl req -subj` takes it, so a printed subject can be pasted back.
    public var openSSLString: String {
        guard !isEmpty else { return "" }
        return map { rdn in
            "/" + rdn.map { attribute in
                let known = SubjectAttributeType.forOID(attribute.type)
                let value = (String(attribute.value) ?? "#" + Hex.encode((try? DER.Serializer.bytes(of: ASN1Any(attribute.value))) ?? []))
                    .replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "/", with: "\\/")
                    .replacingOccurrences(of: "+", with: "\\+")
                return "\(known?.shortName ?? attribute.type.description)=\(value)"
            }.joined(separator: "+")
        }.joined()
    }

    /// The values of one attribute type, in order.
    public func values(of type: SubjectAttributeType) -> [String] {
        fields.filter { $0.oid == type.oid }.compactMap(\.value)
    }
}
