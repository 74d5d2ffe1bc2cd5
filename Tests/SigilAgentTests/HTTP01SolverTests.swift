import Foundation
import SigilAgent
import SigilCore
import SigilTesting
import Testing

@Suite("http-01 solvers")
struct HTTP01SolverTests {
    func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o777
    }

    @Test("webroot: the key authorization is a world-readable file under .well-known/acme-challenge, gone after withdraw")
    func webroot() async throws {
        let directory = try TemporaryDirectory("agent-webroot")
        defer { directory.remove() }
        let root = directory.file("www")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let solver = WebrootPublisher(webroot: root)
        try await solver.start()
        let challenges = root + "/.well-known/acme-challenge"
        #expect(mode(challenges) == 0o755)
        let token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
        try await solver.publish(identifier: "www.example.com", token: token, keyAuthorization: "\(token).thumbprint")
        #expect(try String(contentsOfFile: "\(challenges)/\(token)", encoding: .utf8) == "\(token).thumbprint")
        #expect(mode("\(challenges)/\(token)") == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: challenges) == [token], "no temporary file left")
        await solver.withdraw(identifier: "www.example.com", token: token, keyAuthorization: "")
        #expect(try FileManager.default.contentsOfDirectory(atPath: challenges).isEmpty)
    }

    @Test("a token that is not base64url is refused before it names a file", arguments: ["../../etc/passwd", "a/b", "", "tok en", "tök", "a.b"])
    func hostileTokens(_ token: String) async throws {
        let directory = try TemporaryDirectory("agent-webroot-token")
        defer { directory.remove() }
        let solver = WebrootPublisher(webroot: directory.path)
        try await solver.start()
        await #expect(throws: SigilError.self) { try await solver.publish(identifier: "www.example.com", token: token, keyAuthorization: "x") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [".well-known"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/.well-known/acme-challenge").isEmpty)
        let responder = HTTP01Responder(listen: "127.0.0.1:0")
        await #expect(throws: SigilError.self) { try await responder.publish(identifier: "a.example", token: token, keyAuthorization: "x") }
    }

    @Test("a webroot that is not a directory is a clear error")
    func missingWebroot() async throws {
        let solver = WebrootPublisher(webroot: "/nonexistent/www")
        await #expect(throws: SigilError(.io, "http01_webroot /nonexistent/www is not a directory")) { try await solver.start() }
    }
}

@Suite("dns-01 hook")
struct DNS01HookTests {
    @Test("record name and value (RFC 8555 §8.4)")
    func record() {
        #expect(DNS01Hook.recordName(identifier: "www.example.com") == "_acme-challenge.www.example.com.")
        #expect(DNS01Hook.recordName(identifier: "*.example.com") == "_acme-challenge.example.com.")
        // §8.4's value for the key authorization "token.thumbprint": base64url(SHA-256), no padding.
        #expect(DNS01Hook.recordValue(keyAuthorization: "token.thumbprint") == "61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I")
    }

    @Test("the hook gets the action, record and value in its environment; a failure carries its stderr")
    func runsTheHook() async throws {
        let directory = try TemporaryDirectory("agent-dns-hook")
        defer { directory.remove() }
        let log = directory.file("calls")
        let script = directory.file("hook.sh")
        try """
            #!/bin/sh
            echo "$SIGIL_DNS01_ACTION $SIGIL_DNS01_DOMAIN $SIGIL_DNS01_RECORD $SIGIL_DNS01_VALUE $SIGIL_AGENT_CERTIFICATE" >> \(log)
            [ "$SIGIL_DNS01_DOMAIN" = "fail.example" ] && { echo "zone locked" >&2; exit 4; }
            exit 0
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let hook = DNS01Hook(command: ReloadCommand(argv: [script]), wait: ValidityPeriod(seconds: 0), scratch: directory.path, certificate: "web") { _ in }
        try await hook.publish(identifier: "*.example.com", token: "t", keyAuthorization: "token.thumbprint")
        await hook.withdraw(identifier: "*.example.com", token: "t", keyAuthorization: "token.thumbprint")
        await #expect(throws: SigilError.self) { try await hook.publish(identifier: "fail.example", token: "t", keyAuthorization: "k.t") }
        do {
            try await hook.publish(identifier: "fail.example", token: "t", keyAuthorization: "k.t")
        } catch let error as SigilError {
            #expect(error.message.contains("_acme-challenge.fail.example."))
            #expect(error.reasons.contains { $0.contains("zone locked") })
        }
        let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(calls.prefix(2) == ["present *.example.com _acme-challenge.example.com. 61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I web",
                                    "cleanup *.example.com _acme-challenge.example.com. 61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I web"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["calls", "hook.sh"], "no stderr capture files left")
    }
}
