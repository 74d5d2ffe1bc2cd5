import Foundation

/// A rule about which names a profile or token may certify.
///
/// | pattern           | matches                                                     |
/// |-------------------|-------------------------------------------------------------|
/// | `*`               | every name                                                  |
/// | `www.example.com` | that DNS name                                               |
/// | `*.example.com`   | one label under example.com, and the wildcard itself        |
/// | `.example.com`    | any name under example.com, at any depth (not example.com)  |
/// | `10.0.0.0/8`      | IP addresses in the range (IPv4 or IPv6 CIDR); `10.1.2.3`   |
/// | `@example.com`    | email addresses at example.com; `a@example.com` exactly     |
/// | `spiffe://x/*`    | URIs with that prefix; a URI without `*` exactly            |
public struct NamePattern: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable {
        case any
        case dnsExact(String)
        case dnsOneLabel(String)
        case dnsSuffix(String)
        case ipRange([UInt8], Int)
        case emailDomain(String)
        case emailExact(String)
        case uriPrefix(String)
        case uriExact(String)
    }

    let kind: Kind
    public let description: String

    public init(_ text: String) throws {
        description = text
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "*" {
            kind = .any
        } else if t.contains("://") {
            kind = t.hasSuffix("*") ? .uriPrefix(String(t.dropLast())) : .uriExact(t)
        } else if t.hasPrefix("@") {
            kind = .emailDomain(String(t.dropFirst()).lowercased())
        } else if t.contains("@") {
            kind = .emailExact(t.lowercased())
        } else if let slash = t.firstIndex(of: "/") {
            guard let address = NameRules.parseIPAddress(String(t[..<slash])), let bits = Int(t[t.index(after: slash)...]),
                  bits >= 0, bits <= address.count * 8 else {
                throw SigilError.badInput("invalid IP range '\(text)': use CIDR such as 10.0.0.0/8 or 2001:db8::/32")
            }
            kind = .ipRange(address, bits)
        } else if let address = NameRules.parseIPAddress(t) {
            kind = .ipRange(address, address.count * 8)
        } else if t.hasPrefix("*.") {
            let rest = String(t.dropFirst(2)).lowercased()
            guard NameRules.dnsNameProblem(rest) == nil || !rest.contains(".") && !rest.isEmpty else {
                throw SigilError.badInput("invalid name pattern '\(text)'")
            }
            kind = .dnsOneLabel(rest)
        } else if t.hasPrefix(".") {
            let rest = String(t.dropFirst()).lowercased()
            guard !rest.isEmpty, NameRules.dnsNameProblem(rest) == nil || !rest.contains(".") else {
                throw SigilError.badInput("invalid name pattern '\(text)'")
            }
            kind = .dnsSuffix(rest)
        } else {
            guard NameRules.dnsNameProblem(t) == nil || (!t.contains(".") && !t.isEmpty && t.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" })) else {
                throw SigilError.badInput("invalid name pattern '\(text)'")
            }
            kind = .dnsExact(t.lowercased())
        }
    }

    public func matches(_ name: SubjectAltName) -> Bool {
        switch (kind, name) {
        case (.any, _): return true
        case (.dnsExact(let exact), .dns(let host)): return host.lowercased() == exact
        case (.dnsOneLabel(let parent), .dns(let host)):
            let h = host.lowercased()
            guard h.hasSuffix("." + parent) else { return false }
            let label = h.dropLast(parent.count + 1)
            return !label.isEmpty && !label.contains(".")
        case (.dnsSuffix(let parent), .dns(let host)):
            return host.lowercased().hasSuffix("." + parent)
        case (.ipRange(let network, let bits), .ip(let address)):
            guard network.count == address.count else { return false }
            var remaining = bits
            for (a, b) in zip(network, address) {
                if remaining <= 0 { return true }
                let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
                if a & mask != b & mask { return false }
                remaining -= 8
            }
            return true
        case (.emailDomain(let domain), .email(let address)):
            return address.lowercased().hasSuffix("@" + domain)
        case (.emailExact(let exact), .email(let address)):
            return address.lowercased() == exact
        case (.uriPrefix(let prefix), .uri(let uri)): return uri.hasPrefix(prefix)
        case (.uriExact(let exact), .uri(let uri)): return uri == exact
        default: return false
        }
    }
}
