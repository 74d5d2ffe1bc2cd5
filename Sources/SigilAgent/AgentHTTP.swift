import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SigilCore

/// One HTTP answer, fully read (bounded).
public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? { headers.first(name: name) }

    /// RFC 9110 §10.2.3 Retry-After in seconds (delay-seconds or an HTTP date).
    public var retryAfter: TimeInterval? {
        guard let value = header("Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = TimeInterval(value) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    public func json() -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }

    /// The `detail` of an RFC 7807 / 9457 problem document, else the start of the body.
    public var problemSummary: String {
        if let object = json() {
            let type = (object["type"] as? String).map { " (\($0))" } ?? ""
            if let detail = object["detail"] as? String { return "\(detail)\(type)" }
            if let title = object["title"] as? String { return "\(title)\(type)" }
        }
        return String(text.prefix(300))
    }
}

/// The agent's HTTP client: TLS verified against the configured CA bundle (or the
/// system's roots), no proxies, bounded timeouts and bodies.
public final class AgentHTTP: Sendable {
    let client: HTTPClient
    public static let maximumBody = 4 << 20

    public init(caBundle: String?) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caBundle {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caBundle))
            } catch {
                throw SigilError.badInput("cannot read the CA bundle \(caBundle): \(error)")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(5), read: .seconds(60)))
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> HTTPReply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "sigil-agent/\(AgentVersion.current)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(request, timeout: .seconds(60))
            var buffer = try await response.body.collect(upTo: AgentHTTP.maximumBody)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            return HTTPReply(status: Int(response.status.code), headers: response.headers, body: bytes)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw UnreachableError(description: "\(method.rawValue) \(url): \(error)")
        }
    }
}

/// The server could not be reached or did not answer (as opposed to an answer that says no).
public struct UnreachableError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

public enum AgentVersion {
    public static let current = "0.1.0"
}
