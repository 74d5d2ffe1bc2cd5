import Foundation
import SigilTesting
import Testing

@Suite("sigil acme eab")
struct ACMECommandTests {
    @Test("keys are shown once, listed without their secret, refused on bad input, revoked once")
    func eabKeys() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let home = dir.file("home")
        let created = await sigil(["acme", "eab", "create", "--home", home, "--name", "web-team", "--allow", "*.corp.example"])
        #expect(created.code == 0, "\(created.err)")
        let lines = created.out.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix("kid: kid-") && lines[1].hasPrefix("hmac key: "))
        let secret = String(lines[1].dropFirst("hmac key: ".count))
        #expect(!secret.hasPrefix("-") && secret.count == 43)

        let listed = await sigil(["acme", "eab", "list", "--home", home, "--json"])
        #expect(listed.code == 0 && listed.out.contains("web-team") && !listed.out.contains(secret) && !listed.out.contains("hmac_key"))

        let badName = await sigil(["acme", "eab", "create", "--home", home, "--name", "bad name!"])
        #expect(badName.code == 2 && badName.out.isEmpty && badName.err.contains("EAB key name"))
        let badPattern = await sigil(["acme", "eab", "create", "--home", home, "--name", "other", "--allow", "*.*.example"])
        #expect(badPattern.code == 2 && badPattern.out.isEmpty)
        let twice = await sigil(["acme", "eab", "create", "--home", home, "--name", "web-team"])
        #expect(twice.code != 0 && twice.out.isEmpty && twice.err.contains("already exists"))

        #expect(await sigil(["acme", "eab", "revoke", "--home", home, "web-team"]).code == 0)
        let again = await sigil(["acme", "eab", "revoke", "--home", home, "web-team"])
        #expect(again.code != 0 && again.err.contains("already revoked"))
        #expect(await sigil(["acme", "eab", "revoke", "--home", home, "nobody"]).code != 0)
        // Only one key was ever recorded: the refused commands left nothing behind.
        let final = await sigil(["acme", "eab", "list", "--home", home, "--json"])
        #expect(final.out.components(separatedBy: "\"kid\"").count == 2)
    }
}
