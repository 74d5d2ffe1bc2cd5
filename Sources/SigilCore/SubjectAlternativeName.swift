import Foundation
import SwiftASN1
import X509

/// One subject alternative name in the form users write it (`DNS:www.example.com`,
/// `IP:10.0.0.1`, `IP:2001:db8::1`, `email:a@example.com`, `URI:spiffe://x/y`).
public enum SubjectAltName: Hashable, Sendable, CustomStringConvertible {
    case dns(String)
    case ip([UInt8])
    case email(String)
    case uri(String)
    /// A GeneralName kind Sigil shows but does not make (otherName, directoryName, ...).
    case other(String)

    /// Parses `TYPE:value`. Validates the value: a malformed name is refused here,
    /// before it can reach a request.
    public init(parsing text: String) throws {
        guard let colon = text.firstIndex(of: ":") else {
            throw SigilError.badInput("SAN '\(text)' must be TYPE:value, with TYPE one of DNS, IP, email, URI")
        }
        let type = text[..<colon].lowercased()
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty else { throw SigilError.badInput("SAN '\(text)' has an empty value") }
        switch type {
        case "dns":
            if let problem = NameRules.dnsNameProblem(value) { throw SigilError.badInput("SAN '\(text)': \(problem)") }
            self = .dns(value.lowercased())
        case "ip":
            guard let bytes = NameRules.parseIPAddress(value) else {
                throw SigilError.badInput("SAN '\(text)': '\(value)' is not an IPv4 or IPv6 address")
            }
            self = .ip(bytes)
        case "email", "rfc822", "rfc822name":
            if let problem = NameRules.emailProblem(value) { throw SigilError.badInput("SAN '\(text)': \(problem)") }
            self = .email(value)
        case "uri", "url":
            if let problem = NameRules.uriProblem(value) { throw SigilError.badInput("SAN '\(text)': \(problem)") }
            self = .uri(value)
        default:
            throw SigilError.badInput("SAN '\(text)': unknown type '\(text[..<colon])'; use DNS, IP, email or URI")
        }
    }

    public init(_ name: GeneralName) {
        switch name {
        case .dnsName(let value): self = .dns(value)
        case .ipAddress(let octets): self = .ip(Array(octets.bytes))
        case .rfc822Name(let value): self = .email(value)
        case .uniformResourceIdentifier(let value): self = .uri(value)
        case .directoryName(let dn): self = .other("DirName:\(dn.openSSLString)")
        case .otherName(let other): self = .other("othername:\(other.typeID)")
        case .registeredID(let oid): self = .other("RID:\(oid)")
        default: self = .other("\(name)")
        }
    }

    public var generalName: GeneralName? {
        switch self {
        case .dns(let value): return .dnsName(value)
        case .ip(let bytes): return .ipAddress(ASN1OctetString(contentBytes: bytes[...]))
        case .email(let value): return .rfc822Name(value)
        case .uri(let value): return .uniformResourceIdentifier(value)
        case .other: return nil
        }
    }

    public var typeName: String {
        switch self {
        case .dns: return "DNS"
        case .ip: return "IP"
        case .email: return "email"
        case .uri: return "URI"
        case .other: return "other"
        }
    }

    public var value: String {
        switch self {
        case .dns(let v), .email(let v), .uri(let v), .other(let v): return v
        case .ip(let bytes): return NameRules.formatIPAddress(bytes)
        }
    }

    public var description: String {
        if case .other(let v) = self { return v }
        return "\(typeName):\(value)"
    }
}

/// Syntax rules for names in certificates, each with the rule it comes from.
public enum NameRules {
    /// Why `name` is not a valid DNS name for a certificate, or nil.
    /// RFC 1034 §3.5 preferred name syntax as RFC 5280 §4.2.1.6 requires, with the
    /// wildcard form of RFC 6125 §6.4.3 (`*` as the whole leftmost label only).
    public static func dnsNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "empty DNS name" }
        if !name.allSatisfy(\.isASCII) {
            return "'\(name)' is not ASCII; give internationalized names in their A-label (xn--) form"
        }
        if name.hasSuffix(".") { return "'\(name)' ends with a dot; certificates carry names without the root dot" }
        if name.count > 253 { return "'\(name)' is longer than 253 characters" }
        if parseIPAddress(name) != nil { return "'\(name)' is an IP address; put it in an IP SAN, not a DNS SAN" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for (index, label) in labels.enumerated() {
            if label.isEmpty { return "'\(name)' has an empty label" }
            if label.contains("*") {
                if index != 0 || label != "*" {
                    return "'\(name)' has a wildcard that is not the whole leftmost label (only '*.example.com' is allowed)"
                }
                if labels.count < 3 { return "'\(name)' is a wildcard over a top-level domain or a bare name" }
                continue
            }
            if label.count > 63 { return "'\(name)' has a label longer than 63 characters" }
            if label.hasPrefix("-") || label.hasSuffix("-") { return "'\(name)': label '\(label)' starts or ends with a hyphen" }
            if label.contains("_") { return "'\(name)' contains '_', which is not allowed in host names (CA/B Forum BR 7.1.4.2)" }
            if !label.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) {
                return "'\(name)': label '\(label)' may contain only letters, digits and hyphens"
            }
        }
        if let last = labels.last, last.allSatisfy(\.isNumber) { return "'\(name)' has an all-numeric top-level label" }
        return nil
    }

    /// True when the string is shaped like a host name (used to decide whether a CN goes into the SANs).
    public static func looksLikeDNSName(_ name: String) -> Bool {
        name.contains(".") && dnsNameProblem(name) == nil
    }

    /// RFC 5321 §4.1.2 Mailbox with a DNS domain (no quoted local parts, no address literals).
    public static func emailProblem(_ address: String) -> String? {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return "'\(address)' is not an email address (local@domain)"
        }
        let local = parts[0]
        let allowed = Set("!#$%&'*+-/=?^_`{|}~.")
        guard local.count <= 64, local.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || allowed.contains($0)) }),
              !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
        else { return "'\(address)' has an invalid local part" }
        if let problem = dnsNameProblem(String(parts[1])) { return "'\(address)' has an invalid domain: \(problem)" }
        if parts[1].hasPrefix("*") { return "'\(address)' has a wildcard domain" }
        return nil
    }

    /// RFC 3986 §3: a scheme and something after it, no spaces.
    public static func uriProblem(_ uri: String) -> String? {
        guard let colon = uri.firstIndex(of: ":"), colon != uri.startIndex else {
            return "'\(uri)' is not a URI (scheme:...)"
        }
        let scheme = uri[..<colon]
        guard let first = scheme.first, first.isLetter, first.isASCII,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return "'\(uri)' has an invalid scheme" }
        if uri.index(after: colon) == uri.endIndex { return "'\(uri)' is empty after its scheme" }
        if uri.contains(where: { $0.isWhitespace || !$0.isASCII }) { return "'\(uri)' contains spaces or non-ASCII characters" }
        return nil
    }

    /// 4 or 16 bytes, or nil.
    public static func parseIPAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if text.contains("."), !text.contains(":"), inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if text.contains(":"), inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    public static func formatIPAddress(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch bytes.count {
        case 4:
            var addr = in_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
            guard inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)) != nil else { break }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case 16:
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
            guard inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)) != nil else { break }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        default:
            break
        }
        return "<\(bytes.count)-byte address \(Hex.encode(bytes))>"
    }
}
