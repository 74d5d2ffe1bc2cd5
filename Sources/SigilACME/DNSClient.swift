import Foundation
import NIOCore
import NIOPosix

/// A small DNS stub resolver over UDP (RFC 1035 §4): A, AAAA and TXT lookups against
/// one recursive resolver, as challenge validation needs them. Sigil asks a configured
/// resolver (`acme.dns_resolver`) or the first `nameserver` of /etc/resolv.conf.
public struct DNSClient: Sendable {
    public enum RecordType: UInt16, Sendable {
        case a = 1, cname = 5, txt = 16, aaaa = 28
    }

    public struct LookupError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public let server: SocketAddress
    public let timeout: TimeAmount

    public init(server: SocketAddress, timeout: TimeAmount = .seconds(5)) {
        self.server = server
        self.timeout = timeout
    }

    /// `host:port`, `[v6]:port` or a bare address (port 53).
    public init(resolver: String, timeout: TimeAmount = .seconds(5)) throws {
        var host = resolver
        var port = 53
        if resolver.hasPrefix("["), let close = resolver.firstIndex(of: "]") {
            host = String(resolver[resolver.index(after: resolver.startIndex)..<close])
            let rest = resolver[resolver.index(after: close)...]
            if rest.hasPrefix(":"), let p = Int(rest.dropFirst()) { port = p }
        } else if resolver.filter({ $0 == ":" }).count == 1, let colon = resolver.firstIndex(of: ":") {
            host = String(resolver[..<colon])
            guard let p = Int(resolver[resolver.index(after: colon)...]) else { throw LookupError(description: "DNS resolver '\(resolver)' has a bad port") }
            port = p
        }
        do {
            self.init(server: try SocketAddress(ipAddress: host, port: port), timeout: timeout)
        } catch {
            throw LookupError(description: "DNS resolver '\(resolver)' is not an IP address (give HOST:PORT)")
        }
    }

    /// The system's resolver: the first `nameserver` line of /etc/resolv.conf.
    public static func system() throws -> DNSClient {
        let text = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "nameserver" { return try DNSClient(resolver: String(fields[1])) }
        }
        throw LookupError(description: "no nameserver in /etc/resolv.conf")
    }

    /// TXT strings of `name` (each record's character-strings joined).
    public func txt(_ name: String) async throws -> [String] {
        try await query(name, .txt).compactMap { record in
            guard record.type == .txt else { return nil }
            var strings = ""
            var i = 0
            let data = record.data
            while i < data.count {
                let length = Int(data[i])
                guard i + 1 + length <= data.count else { break }
                strings += String(decoding: data[(i + 1)..<(i + 1 + length)], as: UTF8.self)
                i += 1 + length
            }
            return strings
        }
    }

    /// IPv4 then IPv6 addresses of `name`.
    public func addresses(_ name: String) async throws -> [String] {
        let v4 = try await query(name, .a).filter { $0.type == .a && $0.data.count == 4 }.map { $0.data.map(String.init).joined(separator: ".") }
        if !v4.isEmpty { return v4 }
        return try await query(name, .aaaa).filter { $0.type == .aaaa && $0.data.count == 16 }.map { record in
            stride(from: 0, to: 16, by: 2).map { String(UInt16(record.data[$0]) << 8 | UInt16(record.data[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
    }

    struct Record {
        var type: RecordType?
        var data: [UInt8]
    }

    func query(_ name: String, _ type: RecordType) async throws -> [Record] {
        let id = UInt16.random(in: 0...UInt16.max)
        let message = try Self.encodeQuery(id: id, name: name, type: type)
        var lastError: Error = LookupError(description: "no answer from DNS resolver \(server)")
        for _ in 0..<2 {
            do {
                let reply = try await exchange(message)
                return try Self.parseReply(reply, id: id, name: name)
            } catch let error as LookupError {
                throw error
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func exchange(_ message: [UInt8]) async throws -> [UInt8] {
        let bindHost = server.protocol == .inet6 ? "::" : "0.0.0.0"
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: bindHost, port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
        let server = self.server
        let timeout = self.timeout
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: message)))
            return try await withThrowingTaskGroup(of: [UInt8].self) { group in
                group.addTask {
                    for try await envelope in inbound where envelope.remoteAddress == server {
                        return Array(envelope.data.readableBytesView)
                    }
                    throw LookupError(description: "the DNS resolver closed the exchange")
                }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                    throw CancellationError()
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }
    }

    static func encodeQuery(id: UInt16, name: String, type: RecordType) throws -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty, utf8.count < 64 else { throw LookupError(description: "'\(name)' is not a valid DNS name") }
            bytes.append(UInt8(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        bytes.append(0)
        bytes += [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, 1]
        return bytes
    }

    static func parseReply(_ bytes: [UInt8], id: UInt16, name: String) throws -> [Record] {
        guard bytes.count >= 12, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id else { throw LookupError(description: "a malformed DNS reply") }
        let rcode = bytes[3] & 0x0F
        if rcode == 3 { return [] }  // NXDOMAIN
        guard rcode == 0 else { throw LookupError(description: "the DNS resolver answered with error code \(rcode) for \(name)") }
        let questions = Int(bytes[4]) << 8 | Int(bytes[5])
        let answers = Int(bytes[6]) << 8 | Int(bytes[7])
        var offset = 12
        func skipName() throws {
            while true {
                guard offset < bytes.count else { throw LookupError(description: "a truncated DNS reply") }
                let length = bytes[offset]
                if length & 0xC0 == 0xC0 { offset += 2; return }
                offset += 1
                if length == 0 { return }
                offset += Int(length)
            }
        }
        for _ in 0..<questions {
            try skipName()
            offset += 4
        }
        var records: [Record] = []
        for _ in 0..<answers {
            try skipName()
            guard offset + 10 <= bytes.count else { throw LookupError(description: "a truncated DNS reply") }
            let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let length = Int(bytes[offset + 8]) << 8 | Int(bytes[offset + 9])
            offset += 10
            guard offset + length <= bytes.count else { throw LookupError(description: "a truncated DNS reply") }
            records.append(Record(type: RecordType(rawValue: type), data: Array(bytes[offset..<(offset + length)])))
            offset += length
        }
        return records
    }
}
