import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// How the connection to the mail server is protected.
public enum SMTPSecurity: String, Sendable, CaseIterable {
    /// Plain connection upgraded with STARTTLS (RFC 3207), refused when the server does not offer it.
    case starttls
    /// TLS from the first byte (RFC 8314 §3.3, port 465).
    case tls
    /// No encryption at all; only when explicitly configured, and never with a password.
    case none
}

/// A mail server and the account Sigil uses on it.
public struct SMTPSettings: Sendable {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    public var username: String?
    /// From a file or an environment variable, never from sigil.yaml itself.
    public var password: [UInt8]?
    /// PEM file of the CAs to trust for the server's certificate (default: the system's).
    public var caFile: String?
    /// The name Sigil gives in EHLO (RFC 5321 §4.1.1.1).
    public var heloName: String
    /// For connecting and for each reply.
    public var timeout: TimeAmount

    public init(host: String, port: Int, security: SMTPSecurity = .starttls, username: String? = nil, password: [UInt8]? = nil,
                caFile: String? = nil, heloName: String = "sigil.localdomain", timeout: TimeAmount = .seconds(15)) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.heloName = heloName
        self.timeout = timeout
    }
}

public struct SMTPError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A small SMTP client (RFC 5321) on SwiftNIO: one message per connection, no
/// pipelining, each reply awaited with a timeout. STARTTLS (RFC 3207) is
/// required unless the settings say otherwise, and AUTH (RFC 4954; PLAIN
/// RFC 4616, or LOGIN) is only ever done inside TLS.
public struct SMTPClient: Sendable {
    public let settings: SMTPSettings

    public init(settings: SMTPSettings) {
        self.settings = settings
    }

    public func send(_ message: EmailMessage) async throws {
        for address in [message.from] + message.to where !EmailMessage.isPlainAddress(address) {
            throw SMTPError("'\(address)' is not a plain mail address")
        }
        guard settings.heloName.range(of: "^[A-Za-z0-9.-]+$", options: .regularExpression) != nil else {
            throw SMTPError("the EHLO name must be a host name")
        }
        if settings.username != nil && settings.security == .none {
            throw SMTPError("refusing to send the SMTP password over an unencrypted connection (security: none)")
        }
        let tls = try makeTLSContext()
        let reader = SMTPReplyReader(timeout: settings.timeout)
        let host = settings.host
        let implicitTLS = settings.security == .tls
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(settings.timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS { try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(tls, host: host)) }
                    try channel.pipeline.syncOperations.addHandler(reader)
                }
            }
            .connect(host: settings.host, port: settings.port).get()
        do {
            try await converse(channel, reader, tls: tls, message: message)
            try? await channel.close()
        } catch {
            try? await channel.close()
            throw error
        }
    }

    private func converse(_ channel: any Channel, _ reader: SMTPReplyReader, tls: NIOSSLContext, message: EmailMessage) async throws {
        func reply() async throws -> SMTPReply { try await reader.next(on: channel.eventLoop).get() }
        func command(_ line: String, expect: (SMTPReply) -> Bool, what: String, secret: Bool = false) async throws -> SMTPReply {
            try await channel.writeAndFlush(ByteBuffer(string: line + "\r\n")).get()
            let answer = try await reply()
            guard expect(answer) else {
                throw SMTPError("the mail server refused \(secret ? what : line.prefix(60).description): \(answer.code) \(answer.text)")
            }
            return answer
        }
        let greeting = try await reply()
        guard greeting.code == 220 else { throw SMTPError("the mail server did not greet with 220: \(greeting.code) \(greeting.text)") }
        var ehlo = try await command("EHLO \(settings.heloName)", expect: \.isPositive, what: "EHLO")
        var encrypted = settings.security == .tls
        if settings.security == .starttls {
            guard ehlo.extensions.contains("STARTTLS") else {
                throw SMTPError("the mail server does not offer STARTTLS (RFC 3207); set security: none only if the mail may travel unencrypted")
            }
            _ = try await command("STARTTLS", expect: { $0.code == 220 }, what: "STARTTLS")
            // RFC 3207 §4.2 / CVE-2011-0411: anything that arrived with the 220 was sent before TLS and
            // could have been injected; it must not be read as if it came through the encrypted channel.
            guard try await reader.isDrained(on: channel.eventLoop) else {
                throw SMTPError("the mail server sent data after its STARTTLS reply (possible command injection)")
            }
            let host = settings.host
            try await channel.eventLoop.flatSubmit {
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(tls, host: host), position: .first)
                }
            }.get()
            encrypted = true
            // RFC 3207 §4.2: forget what was learned before TLS and ask again.
            ehlo = try await command("EHLO \(settings.heloName)", expect: \.isPositive, what: "EHLO")
        }
        if let username = settings.username {
            guard encrypted else { throw SMTPError("refusing to authenticate without TLS") }
            try await authenticate(username: username, password: settings.password ?? [], offered: ehlo.authMechanisms, command: command)
        }
        let eightBit = ehlo.extensions.contains("8BITMIME") && !message.data().allSatisfy { $0 < 0x80 }
        _ = try await command("MAIL FROM:<\(message.from)>\(eightBit ? " BODY=8BITMIME" : "")", expect: \.isPositive, what: "MAIL FROM")
        for recipient in message.to {
            // 250 or 251 (RFC 5321 §4.2.2); any refusal fails the whole message, so a retry never repeats a copy.
            _ = try await command("RCPT TO:<\(recipient)>", expect: \.isPositive, what: "RCPT TO")
        }
        _ = try await command("DATA", expect: { $0.code == 354 }, what: "DATA")
        try await channel.writeAndFlush(ByteBuffer(bytes: message.data())).get()
        let accepted = try await reply()
        guard accepted.isPositive else { throw SMTPError("the mail server refused the message: \(accepted.code) \(accepted.text)") }
        // The message is accepted; a failed QUIT changes nothing.
        _ = try? await command("QUIT", expect: { _ in true }, what: "QUIT")
    }

    private func authenticate(username: String, password: [UInt8], offered: Set<String>,
                              command: (String, (SMTPReply) -> Bool, String, Bool) async throws -> SMTPReply) async throws {
        if offered.contains("PLAIN") {
            // RFC 4616 §2: authzid NUL authcid NUL passwd, in one initial response (RFC 4954 §4).
            let token = Data([0] + Array(username.utf8) + [0] + password).base64EncodedString()
            _ = try await command("AUTH PLAIN \(token)", { $0.code == 235 }, "AUTH PLAIN", true)
        } else if offered.contains("LOGIN") {
            _ = try await command("AUTH LOGIN", { $0.code == 334 }, "AUTH LOGIN", true)
            _ = try await command(Data(username.utf8).base64EncodedString(), { $0.code == 334 }, "the user name", true)
            _ = try await command(Data(password).base64EncodedString(), { $0.code == 235 }, "the password", true)
        } else {
            throw SMTPError("the mail server offers no AUTH mechanism Sigil speaks (PLAIN, LOGIN): \(offered.sorted().joined(separator: " "))")
        }
    }

    private func makeTLSContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SMTPError("cannot set up TLS for the mail server (CA file \(settings.caFile ?? "system")): \(error)")
        }
    }

    private static func tlsHandler(_ context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        // SNI carries host names only (RFC 6066 §3); an IP address is still checked against the certificate.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }
}

/// Collects bytes into replies and hands them out one at a time.
/// Only ever touched on its channel's event loop (handler callbacks and the futures `next` makes there).
final class SMTPReplyReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var buffer: [UInt8] = []
    private var ready: [Result<SMTPReply, any Error>] = []
    private var waiting: EventLoopPromise<SMTPReply>?
    private var ended: (any Error)?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readBytes(length: bytes.readableBytes) ?? []
        do {
            while let reply = try SMTPReplyParser.parse(&buffer) { hand(.success(reply)) }
        } catch {
            buffer.removeAll()
            hand(.failure(SMTPError("the mail server's reply is malformed: \(error)")))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(SMTPError("the mail server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(SMTPError("connection to the mail server failed: \(error)"))
        context.close(promise: nil)
    }

    private func finish(_ error: any Error) {
        if ended == nil { ended = error }
        if let waiting {
            self.waiting = nil
            waiting.fail(error)
        }
    }

    private func hand(_ result: Result<SMTPReply, any Error>) {
        if let waiting {
            self.waiting = nil
            waiting.completeWith(result)
        } else {
            ready.append(result)
        }
    }

    /// The next reply, failing after the timeout.
    func next(on loop: any EventLoop) -> EventLoopFuture<SMTPReply> {
        loop.flatSubmit {
            if !self.ready.isEmpty { return loop.makeCompletedFuture(self.ready.removeFirst()) }
            if let ended = self.ended { return loop.makeFailedFuture(ended) }
            let promise = loop.makePromise(of: SMTPReply.self)
            self.waiting = promise
            let timeout = self.timeout
            let task = loop.scheduleTask(in: timeout) {
                if self.waiting?.futureResult === promise.futureResult {
                    self.waiting = nil
                    promise.fail(SMTPError("the mail server did not answer within \(timeout.nanoseconds / 1_000_000_000) s"))
                }
            }
            promise.futureResult.whenComplete { _ in task.cancel() }
            return promise.futureResult
        }
    }

    /// Nothing received beyond the replies already handed out.
    func isDrained(on loop: any EventLoop) async throws -> Bool {
        try await loop.submit { self.buffer.isEmpty && self.ready.isEmpty }.get()
    }
}
