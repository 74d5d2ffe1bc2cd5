import Foundation
import SigilCore

/// One TLS endpoint to probe: where to connect and what to call it.
public struct ScanEndpoint: Sendable, Hashable {
    /// The host as the user named it (a DNS name or an address literal).
    public var host: String
    public var port: Int
    /// The SNI name to send (RFC 6066 §3), or empty for none.
    public var serverName: String

    public init(host: String, port: Int, serverName: String) {
        self.host = host
        self.port = port
        self.serverName = serverName
    }

    /// True when `host` is an IP address literal (no DNS lookup, no SNI by default:
    /// RFC 6066 §3 forbids literal addresses in server_name).
    public var isAddress: Bool { IPAddress(host) != nil }

    /// The sighting location: `host:port`, with IPv6 literals in brackets (RFC 3986 §3.2.2).
    public var location: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// An IPv4 or IPv6 address as 16 bytes (IPv4 in the first 4) plus its family.
struct IPAddress: Hashable, Comparable {
    var bytes: [UInt8]
    var isV6: Bool { bytes.count == 16 }

    init?(_ text: String) {
        if let v4 = IPAddress.parseV4(text) {
            bytes = v4
        } else if let v6 = IPAddress.parseV6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    static func parseV4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            // No leading zeros: "010" is octal to some parsers and decimal to others.
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit), part == "0" || !part.hasPrefix("0"),
                  let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseV6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        var storage = in6_addr()
        guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
        return withUnsafeBytes(of: &storage) { Array($0) }
    }

    var text: String {
        if !isV6 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address `offset` after this one (no wrap-around; the caller bounds the count).
    func advanced(by offset: UInt64) -> IPAddress {
        var out = bytes
        var carry = offset
        var i = out.count - 1
        while carry > 0 && i >= 0 {
            let sum = UInt64(out[i]) + (carry & 0xFF)
            out[i] = UInt8(sum & 0xFF)
            carry = (carry >> 8) + (sum >> 8)
            i -= 1
        }
        return IPAddress(bytes: out)
    }

    /// The number of addresses from `self` to `other` inclusive, or nil when over `cap`.
    func count(through other: IPAddress, cap: UInt64) -> UInt64? {
        guard bytes.count == other.bytes.count, self <= other else { return nil }
        var difference: UInt64 = 0
        for (a, b) in zip(bytes, other.bytes) {
            // Stop before the running difference overflows: anything that large is over the cap anyway.
            guard difference <= cap else { return nil }
            difference = difference * 256 + UInt64(b) &- UInt64(a)
        }
        let total = difference &+ 1
        return total <= cap && total > 0 ? total : nil
    }

    static func < (lhs: IPAddress, rhs: IPAddress) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// What `sigil scan` accepts, parsed and expanded to endpoints.
///
/// Forms: `host:port`, `host:port,port`, `host` (uses the default ports), IPv4 and
/// IPv6 literals (`[::1]:443`), CIDR blocks (`10.0.0.0/28:443,8443`), ranges
/// (`10.0.0.1-10.0.0.20`, or the short `10.0.0.1-20`). A port list may hold
/// ranges (`8000-8010`).
public struct ScanTargets: Sendable {
    /// Refuse expansions past this many endpoints: a typo such as `/8` must not start a scan of 16 million hosts.
    public static let defaultLimit = 65_536

    public private(set) var endpoints: [ScanEndpoint] = []
    private var seen: Set<ScanEndpoint> = []
    public let defaultPorts: [Int]
    public let serverName: String?
    public let limit: Int

    /// - Parameters:
    ///   - defaultPorts: ports for targets that name none (`--ports`, else 443).
    ///   - serverName: the SNI name to send everywhere (`--sni`); else a DNS name target sends its own name.
    public init(defaultPorts: [Int] = [443], serverName: String? = nil, limit: Int = ScanTargets.defaultLimit) throws {
        guard !defaultPorts.isEmpty else { throw SigilError.badInput("the port list is empty") }
        if let serverName {
            guard ScanTargets.isHostName(serverName) else { throw SigilError.badInput("--sni '\(serverName)' is not a DNS name") }
        }
        self.defaultPorts = defaultPorts
        self.serverName = serverName
        self.limit = limit
    }

    /// Parses `10.0.0.1,443` style port lists: numbers 1–65535 and `a-b` ranges.
    public static func parsePorts(_ text: String) throws -> [Int] {
        var ports: [Int] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = port(bounds[0]), let high = port(bounds.last!), low <= high else {
                throw SigilError.badInput("'\(item)' is not a port or port range (1-65535) in '\(text)'")
            }
            for p in low...high where !ports.contains(p) { ports.append(p) }
        }
        return ports
    }

    private static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigit), let value = Int(text), (1...65535).contains(value) else { return nil }
        return value
    }

    /// A DNS name (RFC 1123 §2.1 labels; `_` allowed, as real internal names use it).
    public static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 253 else { return false }
        let labels = text.hasSuffix(".") ? text.dropLast().split(separator: ".", omittingEmptySubsequences: false) : text.split(separator: ".", omittingEmptySubsequences: false)
        guard !labels.isEmpty else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        } && !labels.last!.allSatisfy(\.isASCIIDigit)
    }

    /// Adds every target in a file's text: whitespace-separated, `#` starts a comment.
    public mutating func add(fileText text: String, source: String) throws {
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) {
                do {
                    try add(String(word))
                } catch var error as SigilError {
                    error.message = "\(source):\(index + 1): " + error.message
                    throw error
                }
            }
        }
    }

    /// Adds one target and its expansion.
    public mutating func add(_ target: String) throws {
        let target = target.trimmingCharacters(in: .whitespaces)
        guard !target.isEmpty else { throw SigilError.badInput("empty target") }
        let (hostPart, ports) = try ScanTargets.splitPorts(target)
        let portList = try ports.map(ScanTargets.parsePorts) ?? defaultPorts
        if let slash = hostPart.firstIndex(of: "/") {
            try addCIDR(String(hostPart[..<slash]), prefix: String(hostPart[hostPart.index(after: slash)...]), ports: portList, target: target)
        } else if let range = try ScanTargets.parseRange(hostPart) {
            try addRange(from: range.0, to: range.1, ports: portList, target: target)
        } else if let address = IPAddress(hostPart) {
            try addHosts([address.text], count: 1, ports: portList, target: target)
        } else if ScanTargets.isHostName(hostPart) {
            try addHosts([hostPart.lowercased()], count: 1, ports: portList, target: target)
        } else {
            throw SigilError.badInput("'\(target)' is not a host, address, CIDR block or address range")
        }
    }

    /// Splits `host:ports`, `[v6]:ports`, a bare IPv6 literal (no port), or `host`.
    static func splitPorts(_ target: String) throws -> (String, String?) {
        if target.hasPrefix("[") {
            guard let close = target.firstIndex(of: "]") else { throw SigilError.badInput("'\(target)': '[' without ']'") }
            let host = String(target[target.index(after: target.startIndex)..<close])
            let rest = target[target.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), rest.count > 1 else { throw SigilError.badInput("'\(target)': expected ':port' after ']'") }
            return (host, String(rest.dropFirst()))
        }
        let colons = target.filter { $0 == ":" }.count
        if colons > 1 { return (target, nil) }  // a bare IPv6 address or block
        if colons == 1, let colon = target.firstIndex(of: ":") {
            let ports = String(target[target.index(after: colon)...])
            guard !ports.isEmpty else { throw SigilError.badInput("'\(target)': empty port after ':'") }
            return (String(target[..<colon]), ports)
        }
        return (target, nil)
    }

    /// `a.b.c.d-e.f.g.h` or the short `a.b.c.d-h`; nil when the text is no range at all.
    static func parseRange(_ text: String) throws -> (IPAddress, IPAddress)? {
        let sides = text.split(separator: "-", omittingEmptySubsequences: false)
        guard sides.count == 2, let first = IPAddress(String(sides[0])) else { return nil }
        var last = IPAddress(String(sides[1]))
        if last == nil, !first.isV6, let octet = UInt8(sides[1]), sides[1].allSatisfy(\.isASCIIDigit) {
            last = IPAddress(bytes: Array(first.bytes.prefix(3)) + [octet])
        }
        guard let last, last.isV6 == first.isV6 else { throw SigilError.badInput("'\(text)' is not an address range (first-last, same family)") }
        guard first <= last else { throw SigilError.badInput("address range '\(text)' ends before it starts") }
        return (first, last)
    }

    private mutating func addCIDR(_ base: String, prefix: String, ports: [Int], target: String) throws {
        guard let address = IPAddress(base) else { throw SigilError.badInput("'\(target)': '\(base)' is not an IP address") }
        let width = address.bytes.count * 8
        guard prefix.allSatisfy(\.isASCIIDigit), let length = Int(prefix), (0...width).contains(length), !prefix.isEmpty else {
            throw SigilError.badInput("'\(target)': prefix length must be 0–\(width)")
        }
        let hostBits = width - length
        guard hostBits <= 32 else { throw tooLarge(target, count: nil) }
        // The network address: host bits cleared.
        var network = address.bytes
        for bit in 0..<hostBits {
            let index = network.count - 1 - bit / 8
            network[index] &= ~UInt8(1 << (bit % 8))
        }
        try addRange(from: IPAddress(bytes: network), to: IPAddress(bytes: network).advanced(by: (UInt64(1) << hostBits) - 1), ports: ports, target: target)
    }

    private mutating func addRange(from first: IPAddress, to last: IPAddress, ports: [Int], target: String) throws {
        guard let count = first.count(through: last, cap: UInt64(limit)) else { throw tooLarge(target, count: nil) }
        try addHosts((0..<count).lazy.map { first.advanced(by: $0).text }, count: Int(count), ports: ports, target: target)
    }

    private mutating func addHosts<S: Sequence>(_ hosts: S, count: Int, ports: [Int], target: String) throws where S.Element == String {
        let (total, overflow) = count.multipliedReportingOverflow(by: ports.count)
        guard !overflow, endpoints.count + total <= limit else { throw tooLarge(target, count: overflow ? nil : endpoints.count + total) }
        for host in hosts {
            let name = serverName ?? (IPAddress(host) == nil ? host : "")
            for port in ports {
                let endpoint = ScanEndpoint(host: host, port: port, serverName: name)
                if seen.insert(endpoint).inserted { endpoints.append(endpoint) }
            }
        }
    }

    private func tooLarge(_ target: String, count: Int?) -> SigilError {
        SigilError.badInput("'\(target)' expands the scan to \(count.map { "\($0)" } ?? "too many") endpoints; the limit is \(limit)")
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
