import Crypto
import Foundation
import SigilCore

/// Puts the answer to an ACME challenge where the CA's validator will look for it, and
/// takes it away again once the authorization is decided.
///
/// http-01 (RFC 8555 §8.3, `http://NAME/.well-known/acme-challenge/TOKEN`) two ways: the
/// agent's own listener (`HTTP01Responder`, for hosts where nothing else holds port 80)
/// or files in the document root of the web server that does (`WebrootPublisher`, so
/// nginx or Apache never stops for a renewal). dns-01 (§8.4, a TXT record) through the
/// operator's hook for their DNS (`DNS01Hook`), which is also the only way to a wildcard.
public protocol ChallengeSolver: Sendable {
    /// The challenge type answered: "http-01" or "dns-01".
    var challengeType: String { get }
    func start() async throws
    /// `identifier` is the authorization's identifier value (for a wildcard order, the base
    /// domain, RFC 8555 §7.1.4).
    func publish(identifier: String, token: String, keyAuthorization: String) async throws
    func withdraw(identifier: String, token: String, keyAuthorization: String) async
    func stop() async
}

extension ChallengeSolver {
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
public struct WebrootPublisher: ChallengeSolver {
    public let webroot: String
    public var challengeType: String { "http-01" }

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

    public func publish(identifier: String, token: String, keyAuthorization: String) async throws {
        guard Self.isValidToken(token) else { throw SigilError(.verificationFailed, "the CA sent a challenge token that is not base64url") }
        try AtomicFile.write(Array(keyAuthorization.utf8), to: "\(directory)/\(token)", mode: 0o644)
    }

    public func withdraw(identifier: String, token: String, keyAuthorization: String) async {
        guard Self.isValidToken(token) else { return }
        unlink("\(directory)/\(token)")
    }

    public func stop() async {}
}

/// dns-01 through the operator's hook (RFC 8555 §8.4): a command run with
/// `SIGIL_DNS01_ACTION=present` to publish the TXT record `SIGIL_DNS01_VALUE` at
/// `SIGIL_DNS01_RECORD` (`_acme-challenge.DOMAIN.`), and with `cleanup` to remove it. The hook
/// returns once the record is published (a provider's API call, `nsupdate`, ...); `wait`
/// adds a fixed delay for secondaries to catch up before the CA is told to look. Records
/// are presented one authorization at a time, so a name and its wildcard, which share a
/// record name, never hold two values at once.
public struct DNS01Hook: ChallengeSolver {
    public let command: ReloadCommand
    public let wait: ValidityPeriod
    /// Where the hook's standard error is kept while it runs.
    public let scratch: String
    public let certificate: String
    public let log: @Sendable (String) -> Void
    public var challengeType: String { "dns-01" }

    public init(command: ReloadCommand, wait: ValidityPeriod, scratch: String, certificate: String, log: @escaping @Sendable (String) -> Void) {
        self.command = command
        self.wait = wait
        self.scratch = scratch
        self.certificate = certificate
        self.log = log
    }

    /// §8.4: the record's value is base64url(SHA-256(key authorization)).
    public static func recordValue(keyAuthorization: String) -> String {
        B64URL.encode(Array(SHA256.hash(data: Array(keyAuthorization.utf8))))
    }

    /// §8.4: `_acme-challenge.` before the domain (a wildcard's base domain), fully qualified.
    public static func recordName(identifier: String) -> String {
        let domain = identifier.hasPrefix("*.") ? String(identifier.dropFirst(2)) : identifier
        return "_acme-challenge.\(domain.hasSuffix(".") ? domain : domain + ".")"
    }

    func environment(_ action: String, _ identifier: String, _ keyAuthorization: String) -> [String: String] {
        ["SIGIL_DNS01_ACTION": action, "SIGIL_DNS01_DOMAIN": identifier, "SIGIL_DNS01_RECORD": Self.recordName(identifier: identifier),
         "SIGIL_DNS01_VALUE": Self.recordValue(keyAuthorization: keyAuthorization), "SIGIL_AGENT_CERTIFICATE": certificate]
    }

    public func start() async throws {}

    public func publish(identifier: String, token: String, keyAuthorization: String) async throws {
        let result = await CommandRunner.run(command, environment: environment("present", identifier, keyAuthorization),
                                             label: "dns01-\(certificate)", scratch: scratch, now: { Date() })
        guard result.succeeded else {
            throw SigilError(.io, "the dns-01 hook could not present \(Self.recordName(identifier: identifier)): \(result.summary)",
                             reasons: result.stderr.isEmpty ? [] : [String(result.stderr.suffix(500))])
        }
        if wait.seconds > 0 { try await Task.sleep(for: .seconds(wait.seconds)) }
    }

    public func withdraw(identifier: String, token: String, keyAuthorization: String) async {
        let result = await CommandRunner.run(command, environment: environment("cleanup", identifier, keyAuthorization),
                                             label: "dns01-\(certificate)", scratch: scratch, now: { Date() })
        // A record left behind does no harm beyond clutter: said, not fatal.
        if !result.succeeded { log("\(certificate): the dns-01 hook's cleanup of \(Self.recordName(identifier: identifier)) failed: \(result.summary)") }
    }

    public func stop() async {}
}
