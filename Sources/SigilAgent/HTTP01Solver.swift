import Foundation
import SigilCore

/// Puts an http-01 key authorization where the CA's validator will fetch it
/// (`http://NAME/.well-known/acme-challenge/TOKEN`, RFC 8555 §8.3) and takes it away
/// again. Two ways: the agent's own listener (`HTTP01Responder`, for hosts where nothing
/// else holds port 80) or files in the document root of the web server that does
/// (`WebrootPublisher`, so nginx or Apache never stops for a renewal).
public protocol HTTP01Solver: Sendable {
    func start() async throws
    func publish(token: String, keyAuthorization: String) async throws
    func withdraw(token: String) async
    func stop() async
}

extension HTTP01Solver {
    /// RFC 8555 §8.1: a token holds only base64url characters. Checked before it names a
    /// URL path or a file, so a hostile or broken CA cannot write outside the challenge
    /// directory (`../../etc/...`) or answer for a path it should not.
    public static func isValidToken(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.count <= 256 && token.utf8.allSatisfy {
            ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F
        }
    }
}

/// http-01 through the web server that already answers on port 80: the key
/// authorization goes to `WEBROOT/.well-known/acme-challenge/TOKEN` (written to a
/// temporary file and renamed, so the web server never serves half of it; mode 0644
/// because the web server runs as another user), and is deleted once the authorization
/// is decided. Directories the agent had to create are made 0755 and left in place
/// (the web server's configuration may point at them).
public struct WebrootPublisher: HTTP01Solver {
    public let webroot: String

    public init(webroot: String) {
        self.webroot = webroot
    }

    var directory: String { webroot + "/.well-known/acme-challenge" }

    public func start() async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: webroot, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SigilError(.io, "http01_webroot \(webroot) is not a directory")
        }
        try AtomicFile.makeDirectory(directory, mode: 0o755)
    }

    public func publish(token: String, keyAuthorization: String) async throws {
        guard Self.isValidToken(token) else { throw SigilError(.verificationFailed, "the CA sent a challenge token that is not base64url") }
        try AtomicFile.write(Array(keyAuthorization.utf8), to: "\(directory)/\(token)", mode: 0o644)
    }

    public func withdraw(token: String) async {
        guard Self.isValidToken(token) else { return }
        unlink("\(directory)/\(token)")
    }

    public func stop() async {}
}
