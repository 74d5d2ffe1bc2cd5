import Foundation
import SigilAgent
import SigilCore
import SigilTesting
import Testing

@Suite("Agent configuration")
struct AgentConfigurationTests {
    static let good = """
        state_dir: state
        backoff: {base: 2s, max: 30s}
        ca:
          sigil:
            url: https://127.0.0.1:8443
            token_env: SIGIL_TOKEN
            profile: tls-server
        certificates:
          - name: web
            names: [www.example.com, 10.0.0.1]
            key_type: rsa:2048
            key: {path: tls/web.key, mode: "0640"}
            certificate: tls/web.crt
            fullchain: tls/web.fullchain.pem
            reload: [systemctl, reload, nginx]
          - name: api
            names: [api.example.com]
            reuse_key: true
            ca:
              acme:
                directory: https://acme.example.com/directory
                email: ops@example.com
                http01_listen: 127.0.0.1:5002
            key: /etc/api.key
            certificate: /etc/api.crt
            reload: {shell: "kill -HUP $(cat /run/api.pid)"}
        """

    func problems(_ text: String) -> [String] {
        do {
            _ = try AgentConfiguration.parse(text, file: "/etc/sigil/agent.yaml")
            return []
        } catch let error as SigilError {
            #expect(error.kind == .badInput)
            #expect(error.message.hasPrefix("/etc/sigil/agent.yaml: "))
            return error.reasons
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test("a complete file parses, with defaults and paths relative to the file")
    func parsesGood() throws {
        let c = try AgentConfiguration.parse(Self.good, file: "/etc/sigil/agent.yaml")
        #expect(c.stateDirectory == "/etc/sigil/state")
        #expect(c.backoff == BackoffSettings(base: ValidityPeriod(seconds: 2), cap: ValidityPeriod(seconds: 30)))
        #expect(c.certificates.count == 2)
        let web = c.certificates[0]
        #expect(web.names == ["www.example.com", "10.0.0.1"])
        #expect(web.keyType == .rsa(bits: 2048))
        #expect(web.reuseKey == false)
        #expect(web.key == DeployTarget(path: "/etc/sigil/tls/web.key", mode: 0o640))
        #expect(web.certificate.mode == 0o644)
        #expect(web.reload?.argv == ["systemctl", "reload", "nginx"])
        #expect(web.authority == .sigil(SigilAuthorityEndpoint(url: "https://127.0.0.1:8443", tokenEnv: "SIGIL_TOKEN", profile: "tls-server")))
        let api = c.certificates[1]
        #expect(api.reuseKey)
        #expect(api.keyType == .ecP256)
        #expect(api.key.mode == 0o600)
        #expect(api.reload?.argv == ["/bin/sh", "-c", "kill -HUP $(cat /run/api.pid)"])
        guard case .acme(let acme) = api.authority else { Issue.record("not ACME"); return }
        #expect(acme.http01Listen == "127.0.0.1:5002")
        #expect(acme.email == "ops@example.com")
    }

    @Test("the state directory defaults to one next to the file")
    func defaultState() throws {
        let text = Self.good.replacingOccurrences(of: "state_dir: state\n", with: "")
        #expect(try AgentConfiguration.parse(text, file: "/srv/agent.yaml").stateDirectory == "/srv/agent.state")
    }

    @Test("every mistake is named with its line, key and reason")
    func reportsEverything() {
        let text = """
            ca:
              sigil:
                url: http://127.0.0.1:8443
            certificates:
              - name: "bad name"
                names: [www..example.com]
                key_type: rsa:1024
                key: {path: k.pem, mode: "0644"}
                certificate: {path: c.pem, mode: rwx}
                colour: blue
                reload: "systemctl reload nginx && echo done"
            """
        let found = problems(text)
        let expected = [
            "ca.sigil.url: 'http://127.0.0.1:8443' must be an https:// URL",
            "ca.sigil: give the API token with token_file or token_env",
            "certificates[0].name: 'bad name' must be",
            "certificates[0].names[0]:",
            "certificates[0].key_type: RSA keys of 1024 bits are too weak",
            "certificates[0].key.mode: 0644 lets every user read the private key",
            "certificates[0].certificate.mode: 'rwx' is not a file mode",
            "certificates[0].colour: unknown key",
            "certificates[0].reload: 'systemctl reload nginx && echo done' needs a shell",
        ]
        for text in expected {
            #expect(found.contains { $0.contains(text) }, "missing '\(text)' in \(found)")
        }
        #expect(found.contains { $0.hasPrefix("line ") && $0.contains("certificates[0].certificate.mode") }, "\(found)")
    }

    @Test("missing pieces are reported", arguments: [
        ("certificates: []", "certificates: expected a non-empty list"),
        ("ca: {sigil: {url: https://x, token_env: T}}", "certificates: required"),
        ("certificates:\n  - name: a\n    names: [a.example]\n    key: k\n    certificate: c", "certificates[0].ca: no CA"),
        ("ca: {acme: {directory: https://x/d}, sigil: {url: https://x}}\ncertificates: []", "ca: give either 'acme' or 'sigil', not both"),
        ("ca: {acme: {directory: https://x/d, http01_listen: nope}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.http01_listen: 'nope' must be HOST:PORT"),
        ("ca: {acme: {directory: https://x/d, challenge: dns-01}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.dns01_hook: challenge: dns-01 needs the command"),
        ("ca: {acme: {directory: https://x/d, dns01_hook: [/bin/true], http01_listen: '127.0.0.1:80'}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.http01_listen: belongs to challenge: http-01, not dns-01"),
        ("ca: {acme: {directory: https://x/d, challenge: http-01, dns01_wait: 10s}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.dns01_wait: belongs to challenge: dns-01"),
        ("ca: {acme: {directory: https://x/d, challenge: tls-alpn-01}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.challenge: 'tls-alpn-01' is not supported; the agent answers http-01 or dns-01"),
        ("ca: {acme: {directory: https://x/d}}\ncertificates:\n  - {name: a, names: ['*.a.example'], key: k, certificate: c}",
         "certificates[0].names: '*.a.example' is a wildcard: ACME CAs validate those only by dns-01"),
        ("ca: {acme: {directory: https://x/d, http01_webroot: /nonexistent/www}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.http01_webroot: /nonexistent/www is not a directory"),
        ("ca: {acme: {directory: https://x/d, http01_webroot: /, http01_listen: '127.0.0.1:80'}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "ca.acme.http01_webroot: give either http01_listen"),
        ("backoff: {base: 1h, max: 1m}\nca: {acme: {directory: https://x/d}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "backoff: base (1h) exceeds max (1m)"),
        ("backoff: {base: soon}\nca: {acme: {directory: https://x/d}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}",
         "backoff.base: invalid duration 'soon'"),
        ("ca: {acme: {directory: https://x/d}}\ncertificates:\n  - {name: a, names: [a.example], key: k, certificate: c}\n  - {name: a, names: [b.example], key: k, certificate: d}",
         "certificates[1].name: 'a' is already used by certificates[0]"),
        ("ca: {acme: {directory: https://x/d}}\ncertificates:\n  - {name: a, names: [a.example], key: k}",
         "certificates[0].certificate: required"),
    ])
    func missing(_ text: String, _ expected: String) {
        let found = problems(text)
        #expect(found.contains { $0.contains(expected) }, "missing '\(expected)' in \(found)")
    }

    @Test("not YAML, or an empty file, is bad input naming the file")
    func notYAML() {
        #expect(throws: SigilError.self) { try AgentConfiguration.parse("certificates: [\n", file: "/x.yaml") }
        #expect(problems("").contains { $0.contains("the file is empty") })
    }

    @Test("an unreadable file is a bad-input error that names it")
    func unreadable() {
        do {
            _ = try AgentConfiguration.load(path: "/nonexistent/agent.yaml")
            Issue.record("no error")
        } catch let error as SigilError {
            #expect(error.kind == .badInput)
            #expect(error.message.contains("/nonexistent/agent.yaml"))
        } catch { Issue.record("\(error)") }
    }
}

@Suite("Validity periods")
struct ValidityPeriodTests {
    @Test("units parse and print back", arguments: [("90s", 90), ("10m", 600), ("2h", 7_200), ("6d", 518_400), ("45", 45), ("2w", 1_209_600), ("1.5h", 5_400), ("7D", 604_800)])
    func units(_ text: String, _ seconds: Int64) throws {
        let value = try ValidityPeriod(parsing: text)
        #expect(value.seconds == seconds)
        #expect(try ValidityPeriod(parsing: value.description) == value)
    }

    @Test("junk is refused", arguments: ["", "m", "10 minutes", "-5m", "1.5s", "9999999999999999999d", "500ms"])
    func junk(_ text: String) {
        #expect(throws: SigilError.self) { try ValidityPeriod(parsing: text) }
    }
}
