import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SigilCore
import Synchronization

/// The built-in http-01 responder (RFC 8555 §8.3): answers
/// `GET /.well-known/acme-challenge/TOKEN` with the key authorization while an order
/// is being validated, 404 for anything else. It listens only while the agent needs it.
public final class HTTP01Responder: ChallengeSolver {
    private let tokens = Mutex<[String: String]>([:])
    private let channel: Mutex<Channel?> = Mutex(nil)
    /// host:port to bind.
    public let listen: String

    public init(listen: String) {
        self.listen = listen
    }

    public var challengeType: String { "http-01" }

    public func publish(identifier: String, token: String, keyAuthorization: String) async throws {
        guard Self.isValidToken(token) else { throw SigilError(.verificationFailed, "the CA sent a challenge token that is not base64url") }
        tokens.withLock { $0[token] = keyAuthorization }
    }

    public func withdraw(identifier: String, token: String, keyAuthorization: String) async {
        _ = tokens.withLock { $0.removeValue(forKey: token) }
    }

    func answer(_ path: String) -> String? {
        let prefix = "/.well-known/acme-challenge/"
        guard path.hasPrefix(prefix) else { return nil }
        let token = String(path.dropFirst(prefix.count))
        return tokens.withLock { $0[token] }
    }

    /// Binds `listen` (host:port). A busy port is a clear error, not a hang.
    public func start() async throws {
        guard let address = HostPort(listen) else { throw SigilError.badInput("http01_listen '\(listen)' must be HOST:PORT") }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // Validators may open several connections per challenge at once.
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(ChallengeHandler(responder: self))
                }
            }
        do {
            let bound = try await bootstrap.bind(host: address.host, port: address.port).get()
            channel.withLock { $0 = bound }
        } catch {
            throw SigilError(.io, "the http-01 responder cannot listen on \(listen): \(error)")
        }
    }

    public func stop() async {
        let current = channel.withLock { value -> Channel? in
            defer { value = nil }
            return value
        }
        try? await current?.close()
    }
}

private final class ChallengeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let responder: HTTP01Responder
    var path: String?
    var method: HTTPMethod = .GET

    init(responder: HTTP01Responder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            method = head.method
        case .body:
            break
        case .end:
            let value = (method == .GET || method == .HEAD) ? path.flatMap(responder.answer) : nil
            let body = Array((value ?? "not found\n").utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain")
            headers.add(name: "Content-Length", value: String(body.count))
            let head = HTTPResponseHead(version: .http1_1, status: value == nil ? .notFound : .ok, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            path = nil
        }
    }
}
