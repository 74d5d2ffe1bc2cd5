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
        try await solver.publish(token: token, keyAuthorization: "\(token).thumbprint")
        #expect(try String(contentsOfFile: "\(challenges)/\(token)", encoding: .utf8) == "\(token).thumbprint")
        #expect(mode("\(challenges)/\(token)") == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: challenges) == [token], "no temporary file left")
        await solver.withdraw(token: token)
        #expect(try FileManager.default.contentsOfDirectory(atPath: challenges).isEmpty)
    }

    @Test("a token that is not base64url is refused before it names a file", arguments: ["../../etc/passwd", "a/b", "", "tok en", "tök", "a.b"])
    func hostileTokens(_ token: String) async throws {
        let directory = try TemporaryDirectory("agent-webroot-token")
        defer { directory.remove() }
        let solver = WebrootPublisher(webroot: directory.path)
        try await solver.start()
        await #expect(throws: SigilError.self) { try await solver.publish(token: token, keyAuthorization: "x") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [".well-known"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/.well-known/acme-challenge").isEmpty)
        let responder = HTTP01Responder(listen: "127.0.0.1:0")
        await #expect(throws: SigilError.self) { try await responder.publish(token: token, keyAuthorization: "x") }
    }

    @Test("a webroot that is not a directory is a clear error")
    func missingWebroot() async throws {
        let solver = WebrootPublisher(webroot: "/nonexistent/www")
        await #expect(throws: SigilError(.io, "http01_webroot /nonexistent/www is not a directory")) { try await solver.start() }
    }
}
