import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// What one endpoint presented during a TLS handshake.
public struct TLSObservation: Sendable, Equatable {
    public var endpoint: ScanEndpoint
    /// The IP address actually connected to (after DNS).
    public var address: String?
    /// `TLSv1.3`, `TLSv1.2`, ...
    public var tlsVersion: String?
    /// The IANA name of the suite the server chose, read from its ServerHello.
    public var cipher: String?
    /// DER certificates in the order the server sent them (leaf first).
    public var chain: [[UInt8]]
    public var time: Date
}

/// Why an endpoint gave no certificate. Not fatal to a scan: each is counted and listed.
public struct ProbeFailure: Error, Sendable, Equatable {
    public enum Reason: String, Sendable, Codable {
        case refused = "connection refused"
        case timedOut = "timed out"
        case unreachable
        case unresolved = "name not resolved"
        case notTLS = "TLS handshake failed"
    }
    public var reason: Reason
    public var detail: String
}

/// One endpoint's outcome.
public struct ProbeResult: Sendable {
    public var endpoint: ScanEndpoint
    public var outcome: Result<TLSObservation, ProbeFailure>
}

/// A TLS client for discovery: it accepts any certificate (this is inventory, not
/// trust) and records the chain exactly as presented, with the negotiated version
/// and cipher suite.
public struct TLSProber: Sendable {
    public let timeout: TimeAmount
    private let context: NIOSSLContext
    private let group: any EventLoopGroup

    public init(timeout: Duration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let (seconds, attoseconds) = timeout.components
        self.timeout = .nanoseconds(max(1_000_000, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        var configuration = TLSConfiguration.makeClientConfiguration()
        // Verification must stay on for BoringSSL to call the custom callback, which accepts everything;
        // no trust roots are loaded because none are consulted.
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([])
        configuration.minimumTLSVersion = .tlsv1
        self.context = try NIOSSLContext(configuration: configuration)
        self.group = group
    }

    /// Probes every endpoint, at most `concurrency` at once; results come back in input order.
    public func probe(_ endpoints: [ScanEndpoint], concurrency: Int, progress: @escaping @Sendable (Int) -> Void = { _ in }) async -> [ProbeResult] {
        var results = [ProbeResult?](repeating: nil, count: endpoints.count)
        await withTaskGroup(of: (Int, ProbeResult).self) { tasks in
            var next = 0
            var done = 0
            func start() {
                let index = next
                let endpoint = endpoints[index]
                tasks.addTask { (index, ProbeResult(endpoint: endpoint, outcome: await self.probe(endpoint))) }
                next += 1
            }
            while next < endpoints.count && next < max(1, concurrency) { start() }
            while let (index, result) = await tasks.next() {
                results[index] = result
                done += 1
                progress(done)
                if next < endpoints.count { start() }
            }
        }
        return results.map { $0! }
    }

    /// One connection and handshake, bounded by `timeout` for the connect and again for the handshake.
    public func probe(_ endpoint: ScanEndpoint) async -> Result<TLSObservation, ProbeFailure> {
        let serverName = endpoint.serverName.isEmpty ? nil : endpoint.serverName
        let context = self.context
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                // Runs once per connection attempt (several for a name with several addresses), so each has its own recorder.
                channel.eventLoop.makeCompletedFuture {
                    let recorder = HandshakeRecorder(promise: channel.eventLoop.makePromise(of: Void.self))
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName, customVerificationCallback: { certificates, verification in
                        // Discovery records what was presented and accepts it: trust is judged later, by people and reports.
                        recorder.chain = certificates.compactMap { try? $0.toDERBytes() }
                        verification.succeed(.certificateVerified)
                    })
                    try channel.pipeline.syncOperations.addHandlers([ServerHelloSniffer(recorder: recorder), tls, HandshakeWatcher(recorder: recorder)])
                }
            }
        let channel: any Channel
        do {
            if endpoint.isAddress {
                channel = try await bootstrap.connect(to: SocketAddress(ipAddress: endpoint.host, port: endpoint.port)).get()
            } else {
                channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
            }
        } catch {
            return .failure(Self.classify(error))
        }
        let address = channel.remoteAddress?.ipAddress
        let recorder: HandshakeRecorder
        do {
            recorder = try await channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: HandshakeWatcher.self).recorder }.get()
        } catch {
            channel.close(promise: nil)
            return .failure(ProbeFailure(reason: .notTLS, detail: "the connection closed before the handshake"))
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            recorder.fail(ProbeFailure(reason: .timedOut, detail: "no TLS handshake within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        do {
            try await recorder.future.get()
        } catch let failure as ProbeFailure {
            return .failure(failure)
        } catch {
            return .failure(Self.classify(error))
        }
        let observation = try? await channel.eventLoop.submit { () -> TLSObservation in
            let version = try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).tlsVersion
            return TLSObservation(endpoint: endpoint, address: address, tlsVersion: version.map(Self.name), cipher: recorder.cipher.map(TLSCipherSuites.name),
                                  chain: recorder.chain, time: Date())
        }.get()
        guard let observation else { return .failure(ProbeFailure(reason: .notTLS, detail: "the connection closed after the handshake")) }
        return .success(observation)
    }

    static func name(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: return "TLSv1"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }

    static func classify(_ error: any Error) -> ProbeFailure {
        if let failure = error as? ProbeFailure { return failure }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return ProbeFailure(reason: .timedOut, detail: "connect timed out")
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return classify(first.error) }
            if error.dnsAError != nil || error.dnsAAAAError != nil || error.connectionErrors.isEmpty {
                return ProbeFailure(reason: .unresolved, detail: "no address for \(error.host)")
            }
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return ProbeFailure(reason: .refused, detail: "connection refused")
            case ETIMEDOUT: return ProbeFailure(reason: .timedOut, detail: "connect timed out")
            default: return ProbeFailure(reason: .unreachable, detail: "\(error)")
            }
        }
        if error is NIOSSLError || error is BoringSSLError {
            return ProbeFailure(reason: .notTLS, detail: "\(error)")
        }
        return ProbeFailure(reason: .unreachable, detail: "\(error)")
    }
}

/// What one handshake saw. @unchecked: its mutable state is touched only on the
/// channel's event loop (the initializer, the handlers, the verify callback and the
/// timer all run there); `future` is immutable.
final class HandshakeRecorder: @unchecked Sendable {
    var chain: [[UInt8]] = []
    var cipher: UInt16?
    private let promise: EventLoopPromise<Void>
    let future: EventLoopFuture<Void>
    private var finished = false

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
        future = promise.futureResult
    }

    func succeed() {
        guard !finished else { return }
        finished = true
        promise.succeed(())
    }

    func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        promise.fail(error)
    }
}

/// Waits for the handshake's end, placed after the TLS handler.
final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let recorder: HandshakeRecorder

    init(recorder: HandshakeRecorder) { self.recorder = recorder }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent { recorder.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        recorder.fail(TLSProber.classify(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        recorder.fail(ProbeFailure(reason: .notTLS, detail: "the server closed the connection during the handshake"))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// A connection attempt that never became active (refused, lost the happy-eyeballs race) ends here too.
    func handlerRemoved(context: ChannelHandlerContext) {
        recorder.fail(ProbeFailure(reason: .notTLS, detail: "the connection closed"))
    }
}

/// Reads the cipher suite from the server's ServerHello as it passes (RFC 8446 §4.1.3,
/// RFC 5246 §7.4.1.3): NIOSSL has no public accessor for the negotiated suite, and the
/// ServerHello is cleartext in every TLS version. The bytes pass through unchanged.
final class ServerHelloSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let recorder: HandshakeRecorder
    private var records: [UInt8] = []
    private var done = false

    init(recorder: HandshakeRecorder) { self.recorder = recorder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !done {
            let buffer = unwrapInboundIn(data)
            records += buffer.readableBytesView
            if let suite = ServerHello.cipherSuite(inRecords: records) {
                recorder.cipher = suite
                done = true
            } else if records.count > 32 * 1024 || (records.first.map { $0 != 0x16 } ?? false) {
                done = true  // Not a TLS handshake: NIOSSL reports the failure.
            }
            if done { records = [] }
        }
        context.fireChannelRead(data)
    }
}

enum ServerHello {
    /// The cipher suite of the ServerHello at the start of `bytes` (TLS records), or nil
    /// while more bytes are needed or when the bytes are no ServerHello.
    static func cipherSuite(inRecords bytes: [UInt8]) -> UInt16? {
        // Concatenate the payloads of the leading handshake records (content type 22).
        var handshake: [UInt8] = []
        var offset = 0
        while offset + 5 <= bytes.count, bytes[offset] == 0x16 {
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            let end = min(bytes.count, offset + 5 + length)
            handshake += bytes[(offset + 5)..<end]
            offset += 5 + length
        }
        // Handshake header: type 2 (server_hello), 3-byte length; then version (2), random (32), session id (1 + n), cipher (2).
        guard handshake.count >= 39, handshake[0] == 0x02 else { return nil }
        let sessionIDLength = Int(handshake[38])
        let at = 39 + sessionIDLength
        guard handshake.count >= at + 2 else { return nil }
        return UInt16(handshake[at]) << 8 | UInt16(handshake[at + 1])
    }
}

/// IANA names of the suites BoringSSL can negotiate as a client
/// (IANA "TLS Cipher Suites" registry; RFC 8446 §B.4 for TLS 1.3).
enum TLSCipherSuites {
    static let names: [UInt16: String] = [
        0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x1301: "TLS_AES_128_GCM_SHA256",
        0x1302: "TLS_AES_256_GCM_SHA384",
        0x1303: "TLS_CHACHA20_POLY1305_SHA256",
        0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ]

    static func name(_ value: UInt16) -> String {
        names[value] ?? String(format: "0x%04X", value)
    }
}
