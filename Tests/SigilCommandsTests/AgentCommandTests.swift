import Foundation
import SigilTesting
import Testing

@Suite("sigil agent")
struct AgentCommandTests {
    @Test("a bad configuration is exit 2 naming the file and the key; nothing is created")
    func badConfiguration() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let config = try dir.write("certificates:\n  - name: web\n    names: [www.example.com]\n    key: k.pem\n", to: "agent.yaml")
        let result = await sigil(["agent", "--once", "--config", config])
        #expect(result.code == 2)
        #expect(result.err.contains(config) && result.err.contains("certificates[0].certificate: required") && result.err.contains("certificates[0].ca"))
        #expect(dir.entries() == ["agent.yaml"])
        let status = await sigil(["agent", "status", "--config", dir.file("nope.yaml")])
        #expect(status.code == 2 && status.err.contains("nope.yaml"))
    }

    @Test("status --json of a certificate never obtained: not deployed, due now, stable keys")
    func statusBeforeFirstRun() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let config = try dir.write("""
            ca: {sigil: {url: "https://127.0.0.1:1", token_env: SIGIL_AGENT_TEST_TOKEN}}
            certificates:
              - {name: web, names: [www.example.com], key: web.key, certificate: web.crt}
            """, to: "agent.yaml")
        let result = await sigil(["agent", "status", "--json", "--config", config])
        #expect(result.code == 0, "\(result.err)")
        let rows = try #require(JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [[String: Any]])
        let row = try #require(rows.first)
        #expect(row["name"] as? String == "web" && row["deployed"] as? Bool == false && row["renewal_reason"] as? String == "now")
        for key in ["serial", "not_after", "next_renewal", "last_success", "last_error", "consecutive_failures", "next_attempt", "last_reload"] {
            #expect(row.keys.contains(key), "missing \(key)")
        }
        #expect(mode(of: dir.file("agent.state")) == 0o700)
        let unknown = await sigil(["agent", "renew", "nosuch", "--config", config])
        #expect(unknown.code == 2 && unknown.err.contains("no certificate named 'nosuch'"))
    }
}
