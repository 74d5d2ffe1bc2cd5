import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import SigilCore
import SigilStore
import SwiftASN1
import Synchronization
import X509

/// Proves that an applicant controls an identifier. The server calls it when a client
/// answers a challenge; it throws the ACME problem that explains a failure.
public protocol ChallengeValidator: Sendable {
    func validate(type: String, identifier: ACMEIdentifier, token: String, keyAuthorization: String) async throws(ACMEProblem)
}

/// Where validation connects: the ports and the resolver are configurable so tests run on
/// loopback without root (defaults: 80, 443 and the system's resolver).
public struct ValidationSettings: Sendable {
    public var http01Port: Int
    public var tlsALPN01Port: Int
    /// `HOST:PORT` of a recursive DNS resolver; nil: /etc/resolv.conf for TXT, the system for addresses.
    public var dnsResolver: String?
    public var timeout: TimeAmount

    public init(http01Port: Int = 80, tlsALPN01Port: Int = 443, dnsResolver: String? = nil, timeout: TimeAmount = .seconds(10)) {
        self.http01Port = http01Port
        self.tlsALPN01Port = tlsALPN01Port
        self.dnsResolver = dnsResolver
        self.timeout = timeout
    }
}

/// http-01 (RFC 8555 §8.3), dns-01 (§8.4) and tls-alpn-01 (RFC 8737), over the network.
public struct NetworkValidator: ChallengeValidator {
    public let settings: ValidationSettings

    public init(settings: ValidationSettings) {
        self.settings = settings
    }

    public func validate(type: String, identifier: ACMEIdentifier, token: String, keyAuthorization: String) async throws(ACMEProblem) {
        do {
            switch type {
            case "http-01": try await http01(identifier, token: token, keyAuthorization: keyAuthorization)
            case "dns-01": try await dns01(identifier, keyAuthorization: keyAuthorization)
            case "tls-alpn-01": try await tlsALPN01(identifier, keyAuthorization: keyAuthorization)
            default: throw ACMEProblem(.malformed, "unknown challenge type \(type)")
            }
        } catch let problem as ACMEProblem {
            throw problem
        } catch let error as DNSClient.LookupError {
            throw ACMEProblem(.dns, "DNS lookup for \(identifier.value) failed: \(error)")
        } catch is CancellationError {
            throw ACMEProblem(.connection, "\(type) validation of \(identifier.value) timed out after \(settings.timeout.nanoseconds / 1_000_000_000) s")
        } catch {
            throw ACMEProblem(.connection, "\(type) validation could not reach \(identifier.value): \(error)")
        }
    }

    // MARK: http-01

    /// RFC 8555 §8.3: GET http://{domain}/.well-known/acme-challenge/{token}; the body is the key
    /// authorization (trailing whitespace allowed). Redirects are followed (at most 10) to port
    /// 80/443 equivalents only.
    func http01(_ identifier: ACMEIdentifier, token: String, keyAuthorization: String) async throws {
        var host = identifier.value
        var path = "/.well-known/acme-challenge/\(token)"
        for _ in 0..<10 {
            let address = try await resolve(identifier.type == "ip" ? nil : host, ip: identifier.type == "ip" ? host : nil)
            let (currentHost, currentPath, port) = (host, path, settings.http01Port)
            let response = try await withTimeout { try await HTTPGet.fetch(address: address, port: port, host: currentHost, path: currentPath) }
            if (300..<400).contains(response.status), let location = response.location, let url = URL(string: location, relativeTo: URL(string: "http://\(host)\(path)")) {
                // RFC 8555 §8.3: follow redirects, only to http on the validation port (https would need
                // a TLS client that ignores certificate errors; Sigil refuses it instead of guessing).
                guard url.scheme == "http", let newHost = url.host else {
                    throw ACMEProblem(.connection, "http-01 for \(identifier.value) redirected to \(location); only http redirects are followed")
                }
                host = newHost
                path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?\($0)" } ?? "")
                continue
            }
            guard response.status == 200 else {
                throw ACMEProblem(.unauthorized, "http-01: http://\(identifier.value)/.well-known/acme-challenge/\(token) answered HTTP \(response.status)")
            }
            let body = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard body == keyAuthorization else {
                throw ACMEProblem(.incorrectResponse, "http-01: the key authorization served for \(identifier.value) does not match (got \(body.prefix(100).debugDescription))")
            }
            return
        }
        throw ACMEProblem(.connection, "http-01 for \(identifier.value): too many redirects")
    }

    // MARK: dns-01

    /// RFC 8555 §8.4: a TXT record at _acme-challenge.{domain} holding base64url(SHA-256(key authorization)).
    func dns01(_ identifier: ACMEIdentifier, keyAuthorization: String) async throws {
        guard identifier.type == "dns" else { throw ACMEProblem(.malformed, "dns-01 applies to dns identifiers only (RFC 8738 §7)") }
        let expected = Base64URL.encode(SHA256.hash(data: Array(keyAuthorization.utf8)))
        let client = try settings.dnsResolver.map { try DNSClient(resolver: $0) } ?? DNSClient.system()
        let name = "_acme-challenge.\(identifier.value)"
        let records = try await withTimeout { try await client.txt(name) }
        guard !records.isEmpty else { throw ACMEProblem(.dns, "dns-01: no TXT record at \(name)") }
        guard records.contains(expected) else {
            throw ACMEProblem(.incorrectResponse, "dns-01: none of the \(records.count) TXT record(s) at \(name) holds the expected digest")
        }
    }

    // MARK: tls-alpn-01

    static let acmeIdentifierOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    /// RFC 8737 §3: a TLS handshake with SNI = the domain and ALPN `acme-tls/1`; the self-signed
    /// certificate must name exactly the identifier and carry a critical acmeIdentifier extension
    /// holding SHA-256(key authorization).
    func tlsALPN01(_ identifier: ACMEIdentifier, keyAuthorization: String) async throws {
        let address = try await resolve(identifier.type == "ip" ? nil : identifier.value, ip: identifier.type == "ip" ? identifier.value : nil)
        // RFC 8738 §6: for an IP identifier the SNI is the reverse-DNS name.
        let sni = identifier.type == "ip" ? Self.reverseName(identifier.value) : identifier.value
        let port = settings.tlsALPN01Port
        let (leaf, protocolName) = try await withTimeout {
            do {
                return try await TLSProbe.handshake(address: address, port: port, serverName: sni, rsaKeyExchange: false)
            } catch let problem as ACMEProblem where problem.detail.contains("KEY_USAGE_BIT_INCORRECT") {
                // Some responders (lego's) sign their RSA challenge certificate for keyEncipherment only, which
                // BoringSSL refuses for a signing handshake; RSA key exchange over TLS 1.2 uses exactly that bit.
                return try await TLSProbe.handshake(address: address, port: port, serverName: sni, rsaKeyExchange: true)
            }
        }
        guard protocolName == "acme-tls/1" else {
            throw ACMEProblem(.tls, "tls-alpn-01: \(identifier.value) did not negotiate ALPN acme-tls/1")
        }
        guard let leaf, let certificate = try? X509Certificate(derEncoded: leaf) else {
            throw ACMEProblem(.tls, "tls-alpn-01: \(identifier.value) sent no readable certificate")
        }
        let names = certificate.subjectAltNames
        let wanted: SubjectAltName = identifier.type == "ip" ? .ip(NameRules.parseIPAddress(identifier.value) ?? []) : .dns(identifier.value.lowercased())
        let normalized = names.map { name -> SubjectAltName in if case .dns(let d) = name { return .dns(d.lowercased()) }; return name }
        guard normalized == [wanted] else {
            throw ACMEProblem(.incorrectResponse, "tls-alpn-01: the certificate must name exactly \(identifier.value) in its subjectAltName")
        }
        guard let ext = certificate.extensions.first(where: { $0.oid == Self.acmeIdentifierOID }) else {
            throw ACMEProblem(.incorrectResponse, "tls-alpn-01: the certificate has no acmeIdentifier extension")
        }
        guard ext.critical else { throw ACMEProblem(.incorrectResponse, "tls-alpn-01: the acmeIdentifier extension is not critical") }
        let digest = Array(SHA256.hash(data: Array(keyAuthorization.utf8)))
        guard Array(ext.value) == [0x04, 0x20] + digest else {
            throw ACMEProblem(.incorrectResponse, "tls-alpn-01: the acmeIdentifier extension does not hold the expected digest")
        }
    }

    static func reverseName(_ ip: String) -> String {
        guard let bytes = NameRules.parseIPAddress(ip) else { return ip }
        if bytes.count == 4 { return bytes.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa" }
        let nibbles = bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0x0F, radix: 16)] }
        return nibbles.reversed().joined(separator: ".") + ".ip6.arpa"
    }

    // MARK: Plumbing

    /// The address to connect to: an IP identifier as is; a name through the configured resolver,
    /// or through the system's when none is configured.
    func resolve(_ name: String?, ip: String?) async throws -> String {
        if let ip { return ip }
        guard let name else { throw ACMEProblem(.malformed, "nothing to resolve") }
        if NameRules.parseIPAddress(name) != nil { return name }
        guard let resolver = settings.dnsResolver else { return name }
        let addresses = try await withTimeout { try await DNSClient(resolver: resolver).addresses(name) }
        guard let first = addresses.first else { throw ACMEProblem(.dns, "no A or AAAA record for \(name)") }
        return first
    }

    func withTimeout<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = settings.timeout
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                throw CancellationError()
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}

/// One HTTP/1.1 GET on a fresh connection; the body is capped at 64 KiB.
enum HTTPGet {
    struct Response: Sendable {
        var status: Int
        var location: String?
        var body: [UInt8]
    }

    static func fetch(address: String, port: Int, host: String, path: String) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: address, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: port == 80 ? host : "\(host):\(port)")
            head.headers.add(name: "User-Agent", value: "Sigil-ACME-validator")
            head.headers.add(name: "Accept", value: "*/*")
            head.headers.add(name: "Connection", value: "close")
            // One write for the whole request: a responder that answers and closes at once must not
            // turn a correct answer into a failed write.
            try? await outbound.write(contentsOf: [.head(head), .end(nil)])
            var response = Response(status: 0, location: nil, body: [])
            for try await part in inbound {
                switch part {
                case .head(let h):
                    response.status = Int(h.status.code)
                    response.location = h.headers.first(name: "Location")
                case .body(let buffer):
                    guard response.body.count + buffer.readableBytes <= 64 * 1024 else {
                        throw ACMEProblem(.incorrectResponse, "http-01: the response body is larger than 64 KiB")
                    }
                    response.body += buffer.readableBytesView
                case .end:
                    return response
                }
            }
            return response
        }
    }
}

/// A TLS handshake that captures the peer's certificate and the negotiated ALPN protocol
/// without judging the certificate (tls-alpn-01 certificates are self-signed by design).
enum TLSProbe {
    static func handshake(address: String, port: Int, serverName: String, rsaKeyExchange: Bool) async throws -> (leaf: [UInt8]?, protocolName: String?) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["acme-tls/1"]
        configuration.minimumTLSVersion = .tlsv12
        if rsaKeyExchange {
            configuration.maximumTLSVersion = .tlsv12
            configuration.cipherSuites = "AES128-GCM-SHA256:AES256-GCM-SHA384"
        }
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let captured = CapturedLeaf()
        let (channel, waiter) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: address, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { () -> (Channel, HandshakeWaiter) in
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName.isIPAddressLike ? nil : serverName,
                                                          customVerificationCallback: { chain, promise in
                                                              captured.set(chain.first.flatMap { try? $0.toDERBytes() })
                                                              promise.succeed(.certificateVerified)
                                                          })
                    try channel.pipeline.syncOperations.addHandler(handler)
                    let waiter = HandshakeWaiter(promise: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(waiter)
                    return (channel, waiter)
                }
            }
        defer { channel.close(promise: nil) }
        // The handshake runs after connect; the waiter reports its end (or its failure).
        let negotiated = try await waiter.promise.futureResult.get()
        return (captured.value, negotiated)
    }

    final class CapturedLeaf: Sendable {
        private let der = Mutex<[UInt8]?>(nil)
        func set(_ value: [UInt8]?) { der.withLock { $0 = value } }
        var value: [UInt8]? { der.withLock { $0 } }
    }

    final class HandshakeWaiter: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String?>
        init(promise: EventLoopPromise<String?>) { self.promise = promise }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
                promise.succeed(negotiated)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(ACMEProblem(.tls, "tls-alpn-01 handshake failed: \(error)"))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ACMEProblem(.tls, "tls-alpn-01: the connection closed during the handshake"))
            context.fireChannelInactive()
        }
    }
}

extension String {
    var isIPAddressLike: Bool { NameRules.parseIPAddress(self) != nil }
}
