import Foundation
import SigilCommands
import SigilCore
import SigilTesting
import Testing

/// Runs `sigil` in-process with a capturing console.
func sigil(_ arguments: [String], environment: [String: String] = [:]) async -> (code: Int32, out: String, err: String) {
    let console = Console.capturing(environment: environment)
    let code = await Console.$current.withValue(console) { await Sigil.run(arguments: arguments) }
    return (code, console.standardOutput, console.standardError)
}

func mode(of path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

func json(_ text: String) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("sigil key")
struct KeyCommandTests {
    @Test func newKeyIsPKCS8And0600() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["key", "new", "--out", dir.file("k.pem"), "--no-passphrase"])
        #expect(result.code == 0, "\(result.err)")
        #expect(mode(of: dir.file("k.pem")) == 0o600)
        let text = try String(contentsOfFile: dir.file("k.pem"), encoding: .utf8)
        #expect(text.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(dir.entries() == ["k.pem"])
        let shown = await sigil(["key", "show", dir.file("k.pem"), "--json"])
        let report = try json(shown.out)
        #expect(report["type"] as? String == "ec:P-256")
        #expect(report["encrypted"] as? Bool == false)
    }

    @Test func neverOverwritesWithoutForce() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = await sigil(["key", "new", "--out", dir.file("k.pem"), "--no-passphrase"])
        let before = try String(contentsOfFile: dir.file("k.pem"), encoding: .utf8)
        let again = await sigil(["key", "new", "--out", dir.file("k.pem"), "--no-passphrase"])
        #expect(again.code == 1)
        #expect(again.err.contains("already exists"))
        #expect(try String(contentsOfFile: dir.file("k.pem"), encoding: .utf8) == before)
        let forced = await sigil(["key", "new", "--out", dir.file("k.pem"), "--no-passphrase", "--force", "--key-type", "ed25519"])
        #expect(forced.code == 0)
        #expect(try String(contentsOfFile: dir.file("k.pem"), encoding: .utf8) != before)
        #expect(dir.entries() == ["k.pem"])
    }

    @Test func refusesAnUnencryptedKeyUnlessAskedFor() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["key", "new", "--out", dir.file("k.pem")])
        #expect(result.code == 2)
        #expect(result.err.contains("--no-passphrase"))
        #expect(dir.entries().isEmpty)
    }

    @Test func encryptedWithPassphraseFromEnvironmentAndFile() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = ["KEYPASS": "a long passphrase"]
        let made = await sigil(["key", "new", "--key-type", "ec:P-384", "--out", dir.file("k.pem"), "--passphrase-env", "KEYPASS"], environment: env)
        #expect(made.code == 0, "\(made.err)")
        #expect(try String(contentsOfFile: dir.file("k.pem"), encoding: .utf8).hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        let passFile = try dir.write("a long passphrase\n", to: "pass.txt")
        let shown = await sigil(["key", "show", dir.file("k.pem"), "--passphrase-file", passFile, "--json"])
        #expect(shown.code == 0, "\(shown.err)")
        #expect(try json(shown.out)["encrypted"] as? Bool == true)
        let wrongFile = try dir.write("the wrong one\n", to: "wrong.txt")
        let wrong = await sigil(["key", "show", dir.file("k.pem"), "--passphrase-file", wrongFile])
        #expect(wrong.code == 2)
        #expect(wrong.err.contains("wrong passphrase"))
        let none = await sigil(["key", "show", dir.file("k.pem")])
        #expect(none.code == 2)
    }

    @Test func shortPassphraseAndMissingVariable() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let short = await sigil(["key", "new", "--out", dir.file("k.pem"), "--passphrase-env", "P"], environment: ["P": "short"])
        #expect(short.code == 2)
        #expect(short.err.contains("too short"))
        let missing = await sigil(["key", "new", "--out", dir.file("k.pem"), "--passphrase-env", "NOPE"])
        #expect(missing.code == 2)
        #expect(missing.err.contains("NOPE is not set"))
        #expect(dir.entries().isEmpty)
    }

    @Test func badKeyTypes() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for type in ["rsa:1024", "rsa:512", "dsa", "ec:P-192"] {
            let result = await sigil(["key", "new", "--key-type", type, "--out", dir.file("k.pem"), "--no-passphrase"])
            #expect(result.code == 2, "\(type)")
            #expect(result.err.split(separator: "\n").count == 1, "\(result.err)")
        }
        #expect(dir.entries().isEmpty)
    }

    @Test func unwritablePath() async throws {
        let result = await sigil(["key", "new", "--out", "/nonexistent-dir/k.pem", "--no-passphrase"])
        #expect(result.code == 1)
        #expect(result.err.contains("/nonexistent-dir/k.pem"))
    }

    @Test func showRejectsMalformedFiles() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let junk = try dir.write("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n", to: "trunc.pem")
        let result = await sigil(["key", "show", junk])
        #expect(result.code == 2)
        #expect(result.err.contains("truncated"))
        let missing = await sigil(["key", "show", dir.file("nope.pem")])
        #expect(missing.code == 1)
        #expect(missing.err.contains("no such file"))
    }
}

@Suite("sigil csr")
struct CSRCommandTests {
    let subject = "/C=US/ST=NY/L=New York/O=Example Corp/OU=IT Security/CN=www.example.com/emailAddress=admin@example.com"

    @Test("new key and CSR for every type", arguments: ["ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "ed25519", "mldsa:44", "mldsa:65", "mldsa:87"])
    func newKeyAndCSR(type: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil([
            "csr", "new", "--key-type", type, "--key-out", dir.file("k.pem"), "--no-passphrase", "--subject", subject,
            "--san", "DNS:example.com", "--san", "IP:10.0.0.1", "--out", dir.file("r.csr"),
        ])
        #expect(result.code == 0, "\(result.err)")
        #expect(mode(of: dir.file("k.pem")) == 0o600)
        let shown = await sigil(["csr", "show", dir.file("r.csr"), "--json"])
        let report = try json(shown.out)
        #expect(report["signature_valid"] as? Bool == true)
        #expect(report["subject"] as? String == subject)
        #expect(report["sans"] as? [String] == ["DNS:www.example.com", "DNS:example.com", "IP:10.0.0.1"])
        let key = try #require(report["key"] as? [String: Any])
        #expect(key["type"] as? String == type)
        let keyShown = try json(await sigil(["key", "show", dir.file("k.pem"), "--json"]).out)
        #expect(keyShown["public_key_sha256"] as? String == key["public_key_sha256"] as? String)
    }

    @Test func existingKeyPerFieldSubjectDERAndStdout() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = await sigil(["key", "new", "--out", dir.file("k.pem"), "--passphrase-env", "P"], environment: ["P": "passphrase!"])
        let der = await sigil([
            "csr", "new", "--key", dir.file("k.pem"), "--passphrase-env", "P", "--cn", "api.example.com", "--org", "Example Corp",
            "--country", "DE", "--format", "der", "--out", dir.file("r.der"), "--ext-key-usage", "serverAuth",
        ], environment: ["P": "passphrase!"])
        #expect(der.code == 0, "\(der.err)")
        let csr = try CertificationRequest(derEncoded: Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("r.der")))))
        #expect(csr.subject.openSSLString == "/C=DE/O=Example Corp/CN=api.example.com")
        #expect(csr.isSignatureValid)
        let stdout = await sigil(["csr", "new", "--key", dir.file("k.pem"), "--passphrase-env", "P", "--cn", "api.example.com", "--no-cn-san"],
                                 environment: ["P": "passphrase!"])
        #expect(stdout.code == 0)
        #expect(stdout.out.hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
        #expect(try CertificationRequest(pemOrDER: Array(stdout.out.utf8)).subjectAltNames().isEmpty)
    }

    @Test("failures leave no file behind", arguments: [
        (["--subject", "CN=no-slash"], 2),
        (["--subject", "/C=XX/CN=www.example.com"], 2),
        (["--cn", "www.example.com", "--san", "DNS:bad_name.example.com"], 2),
        (["--cn", "www.example.com", "--san", "IP:999.0.0.1"], 2),
        (["--cn", "www.example.com", "--key-usage", "signEverything"], 2),
        (["--cn", "www.example.com", "--key-type", "rsa:1024"], 2),
    ])
    func failuresLeaveNothing(extra: [String], code: Int) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--out", dir.file("r.csr")] + extra)
        #expect(Int(result.code) == code, "\(result.err)")
        #expect(result.err.hasPrefix("sigil: error:"))
        #expect(dir.entries().isEmpty, "\(dir.entries())")
    }

    @Test func unwritableCSRPathRemovesTheNewKey() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = await sigil(["csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--cn", "www.example.com", "--out", "/nonexistent-dir/r.csr"])
        #expect(result.code == 1)
        #expect(result.err.contains("/nonexistent-dir/r.csr"))
        #expect(dir.entries().isEmpty)
    }

    @Test func existingCSRIsNotReplacedAndNoKeyIsMade() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try dir.write("keep me", to: "r.csr")
        let result = await sigil(["csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--cn", "www.example.com", "--out", dir.file("r.csr")])
        #expect(result.code == 1)
        #expect(dir.entries() == ["r.csr"])
        #expect(try String(contentsOfFile: dir.file("r.csr"), encoding: .utf8) == "keep me")
    }

    @Test func templateViolationsAreAllListedAndNothingIsWritten() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let template = try dir.write("""
            subject:
              fixed: {O: Example Corp, C: US}
              required: [CN, O]
            key_types: [ec:P-256, ec:P-384]
            san:
              required_suffixes: [.example.com]
              allowed_types: [DNS, IP]
              min: 1
            """, to: "t.yaml")
        let bad = await sigil([
            "csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--key-type", "ed25519", "--template", template,
            "--subject", "/O=Other Inc/CN=www.example.org", "--san", "email:a@example.com", "--out", dir.file("r.csr"),
        ])
        #expect(bad.code == 1)
        #expect(bad.err.contains("4 rules"), "\(bad.err)")
        for fragment in ["must be 'Example Corp'", "ed25519 is not allowed", "email:a@example.com is not allowed", "www.example.org is not under"] {
            #expect(bad.err.contains(fragment), "\(fragment)")
        }
        #expect(dir.entries() == ["t.yaml"])

        let good = await sigil([
            "csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--template", template, "--cn", "www.example.com",
            "--out", dir.file("r.csr"),
        ])
        #expect(good.code == 0, "\(good.err)")
        let report = try json(await sigil(["csr", "show", dir.file("r.csr"), "--json"]).out)
        #expect(report["subject"] as? String == "/C=US/O=Example Corp/CN=www.example.com")
        let lint = await sigil(["csr", "lint", dir.file("r.csr"), "--template", template])
        #expect(lint.code == 0, "\(lint.out)")
    }

    @Test func lintExitCodesAndJSON() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = await sigil(["csr", "new", "--key-out", dir.file("k.pem"), "--no-passphrase", "--cn", "www.example.com", "--no-cn-san", "--out", dir.file("r.csr")])
        let lint = await sigil(["csr", "lint", dir.file("r.csr"), "--json"])
        #expect(lint.code == 1)
        let report = try json(lint.out)
        #expect(report["errors"] as? Int == 2)
        let findings = try #require(report["findings"] as? [[String: Any]])
        #expect(findings.contains { $0["code"] as? String == "no-san" && $0["severity"] as? String == "error" })
        #expect(findings.contains { $0["code"] as? String == "cn-not-in-san" && $0["severity"] as? String == "error" })
        let malformed = try dir.write("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", to: "bad.csr")
        let bad = await sigil(["csr", "lint", malformed])
        #expect(bad.code == 2)
        #expect(bad.err.contains("bad.csr"))
    }
}
