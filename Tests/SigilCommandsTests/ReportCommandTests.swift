import Foundation
import SigilAuthority
import SigilCommands
import SigilCore
import SigilStore
import SigilTesting
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `sigil report compliance` over an inventory whose every finding is known in advance:
/// Sigil's own certificates and outside ones (RSA 1024, SHA-1, self-signed, expired, an
/// unknown issuer), some seen on TLS endpoints.
@Suite("sigil report compliance")
struct ReportCommandTests {
    struct Seeded {
        let ca: TestAuthority
        /// check id → serials it must find, nothing more.
        let expected: Set<String>
        var home: String { ca.directory.path }
    }

    static func seed() async throws -> Seeded {
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let day = 86_400.0
        let ca = try await TestAuthority.make(now: now)
        var expected = Set<String>()
        func issue(_ names: [String], days: Int? = nil, key: (CertificationRequest, PrivateKey)? = nil, keyType: KeyType = .ecP256, profile: String = "tls-server") async throws -> CertificateRecord {
            let csr = try key?.0 ?? TestAuthority.csr(names, keyType: keyType).0
            guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: profile, days: days, requester: "test")) else {
                throw SigilError.badInput("not issued")
            }
            return issued.record
        }
        let wildcard = try await issue(["*.apps.example.com"])
        expected.insert("wildcard \(wildcard.serial)")
        let sharedKey = try TestAuthority.csr(["shared.example.com"])
        for _ in 0..<2 { expected.insert("shared-key \(try await issue([], key: sharedKey).serial)") }
        let soon = try await issue(["soon.example.com"], days: 5)
        expected.insert("expiring-soon-in-use \(soon.serial)")
        let postQuantum = try await issue(["pq.example.com"], keyType: .mldsa65, profile: "tls-client")

        // Outside certificates, recorded the way discovery records them (issuer = the issuer's DN).
        let outsideKey = try PrivateKey.generate(.ecP256)
        let outsideCA = try OutsideCertificates.make(subject: "/O=Elsewhere/CN=Outside CA", publicKey: outsideKey.publicKey, notBefore: now.addingTimeInterval(-day),
                                                     notAfter: now.addingTimeInterval(1000 * day), isCA: true, signer: .key(outsideKey))
        let weak = try OutsideCertificates.make(subject: "/CN=weak.example.com", issuer: "/O=Elsewhere/CN=Outside CA", publicKey: try OutsideCertificates.rsaKey(bits: 1024).public,
                                                notBefore: now.addingTimeInterval(-day), notAfter: now.addingTimeInterval(90 * day), names: ["weak.example.com"], signer: .key(outsideKey))
        let legacyKey = try OutsideCertificates.rsaKey(bits: 2048)
        let legacy = try OutsideCertificates.make(subject: "/CN=legacy.example.com", issuer: "/CN=Legacy CA", publicKey: legacyKey.public, notBefore: now.addingTimeInterval(-day),
                                                  notAfter: now.addingTimeInterval(90 * day), names: ["legacy.example.com"], signer: .rsaSHA1(legacyKey.private))
        let selfKey = try PrivateKey.generate(.ecP256)
        let selfSigned = try OutsideCertificates.make(subject: "/CN=selfie.example.com", publicKey: selfKey.publicKey, notBefore: now.addingTimeInterval(-day),
                                                      notAfter: now.addingTimeInterval(60 * day), names: ["selfie.example.com"], signer: .key(selfKey))
        let expired = try OutsideCertificates.make(subject: "/CN=old.example.com", issuer: "/O=Elsewhere/CN=Outside CA", publicKey: try PrivateKey.generate(.ecP256).publicKey,
                                                   notBefore: now.addingTimeInterval(-100 * day), notAfter: now.addingTimeInterval(-2 * day), names: ["old.example.com"],
                                                   signer: .key(outsideKey))
        let orphan = try OutsideCertificates.make(subject: "/CN=orphan.example.com", issuer: "/CN=Vanished CA", publicKey: try PrivateKey.generate(.ecP256).publicKey,
                                                  notBefore: now.addingTimeInterval(-day), notAfter: now.addingTimeInterval(60 * day), names: ["orphan.example.com"],
                                                  signer: .key(try PrivateKey.generate(.ecP256)))
        let outside = [outsideCA, weak, legacy, selfSigned, expired, orphan]
        expected.formUnion(["weak-key \(weak.serialHex)", "sha1-signature \(legacy.serialHex)", "self-signed-in-use \(selfSigned.serialHex)",
                            "expired-in-use \(expired.serialHex)", "unknown-issuer-in-use \(orphan.serialHex)"])
        let records = try outside.map { try CertificateRecord($0, issuer: $0.issuer.openSSLString, source: .discovered, profile: nil, now: now) }
        func seen(_ fingerprint: String, _ location: String, daysAgo: Double = 1) -> CertificateSighting {
            let at = now.addingTimeInterval(-daysAgo * day)
            return CertificateSighting(fingerprint: fingerprint, location: location, serverName: "", kind: .tls, host: "127.0.0.1", port: 443,
                                       tlsVersion: "TLSv1.3", firstSeen: at, lastSeen: at)
        }
        let sightings = [
            seen(selfSigned.sha256Fingerprint, "127.0.0.1:8443"), seen(expired.sha256Fingerprint, "127.0.0.1:9443"),
            seen(orphan.sha256Fingerprint, "127.0.0.1:10443"), seen(soon.fingerprint, "127.0.0.1:11443"),
            seen(postQuantum.fingerprint, "127.0.0.1:12443", daysAgo: 45),  // too long ago to be in use
            CertificateSighting(fingerprint: weak.sha256Fingerprint, location: "/etc/ssl/weak.pem", kind: .file, path: "/etc/ssl/weak.pem", firstSeen: now, lastSeen: now),
        ]
        try await ca.store.write { session in
            for r in records { try await session.insertCertificate(r) }
            for s in sightings { try await session.recordSighting(s) }
        }
        try await ca.store.close()
        return Seeded(ca: ca, expected: expected)
    }

    static func findings(_ document: [String: Any]) -> Set<String> {
        Set((document["findings"] as? [[String: Any]] ?? []).map { f in
            "\(f["check"] as? String ?? "") \((f["certificate"] as? [String: Any])?["serial"] as? String ?? "")"
        })
    }

    @Test func everyFormatHasExactlyTheExpectedFindings() async throws {
        let seeded = try await Self.seed()
        defer { seeded.ca.directory.remove() }
        let env = ["SIGIL_HOME": seeded.home]

        let json = await sigil(["report", "compliance", "--format", "json"], environment: env)
        #expect(json.code == 0, "\(json.err)")
        let document = try SigilCommandsTests.json(json.out)
        #expect(Self.findings(document) == seeded.expected,
                "missing \(seeded.expected.subtracting(Self.findings(document))), extra \(Self.findings(document).subtracting(seeded.expected))")
        #expect(document["schema"] as? String == "sigil.compliance-report.v1")
        let summary = try #require(document["summary"] as? [String: Any])
        #expect(summary["highest_severity"] as? String == "critical" && summary["findings"] as? Int == seeded.expected.count)
        let agility = try #require(document["crypto_agility"] as? [String: Any])
        #expect(agility["post_quantum"] as? Int == 1, "the ML-DSA certificate: \(agility)")
        #expect(agility["quantum_vulnerable"] as? Int == (agility["total"] as? Int ?? 0) - 1)
        let all = document["findings"] as? [[String: Any]] ?? []
        let expiredFinding = try #require(all.first { $0["check"] as? String == "expired-in-use" })
        #expect((expiredFinding["locations"] as? [[String: Any]])?.first?["location"] as? String == "127.0.0.1:9443")
        #expect((expiredFinding["controls"] as? [String])?.contains("PCI DSS v4.0 4.2.1") == true)
        let wildcardFinding = try #require(all.first { $0["check"] as? String == "wildcard" })
        #expect((wildcardFinding["issued_by_sigil"] as? [String: Any])?["profile"] as? String == "tls-server")
        let weakFinding = try #require(all.first { $0["check"] as? String == "weak-key" })
        #expect((weakFinding["locations"] as? [[String: Any]])?.first?["kind"] as? String == "file")

        // CSV: one row per finding, RFC 4180 quoting (subjects hold commas: O=Elsewhere, CN=...).
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let csv = await sigil(["report", "compliance", "--format", "csv", "--output", dir.file("report.csv")], environment: env)
        #expect(csv.code == 0 && csv.out.isEmpty, "\(csv.err)")
        #expect(mode(of: dir.file("report.csv")) == 0o644)
        let rows = CSV.parse(try String(contentsOfFile: dir.file("report.csv"), encoding: .utf8))
        let header = try #require(rows.first)
        #expect(header.starts(with: ["severity", "check", "title", "serial", "fingerprint", "subject"]))
        #expect(rows.dropFirst().allSatisfy { $0.count == header.count }, "every row has every column")
        #expect(Set(rows.dropFirst().map { "\($0[1]) \($0[3])" }) == seeded.expected && rows.count == seeded.expected.count + 1)

        // HTML: well-formed (parsed as XML), self-contained, every finding present.
        let html = await sigil(["report", "compliance", "--format", "html"], environment: env)
        #expect(html.code == 0)
        #expect(!html.out.contains("<script") && !html.out.contains("src=") && !html.out.contains("href="), "no external assets")
        let parser = XMLParser(data: Data(html.out.utf8))
        #expect(parser.parse(), "the HTML is well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
        for line in seeded.expected { #expect(html.out.contains(String(line.split(separator: " ")[1]))) }

        // Text: the summary first, then the findings grouped by severity, most severe first.
        let text = await sigil(["report", "compliance"], environment: env)
        #expect(text.code == 0)
        #expect(text.out.hasPrefix("Sigil compliance report"))
        let critical = try #require(text.out.range(of: "\nCRITICAL\n")), high = try #require(text.out.range(of: "\nHIGH\n")),
            medium = try #require(text.out.range(of: "\nMEDIUM\n")), low = try #require(text.out.range(of: "\nLOW\n"))
        #expect(critical.lowerBound < high.lowerBound && high.lowerBound < medium.lowerBound && medium.lowerBound < low.lowerBound)
        #expect(text.out.contains("at tls 127.0.0.1:8443") && text.out.contains("issued by Sigil (CA intermediate, profile tls-server)"))
    }

    @Test func failOnGatesAndBadFlagsExitTwo() async throws {
        let seeded = try await Self.seed()
        defer { seeded.ca.directory.remove() }
        let env = ["SIGIL_HOME": seeded.home]
        let gate = await sigil(["report", "compliance", "--format", "json", "--fail-on", "critical"], environment: env)
        #expect(gate.code == 1 && gate.err.contains("at or above critical"), "\(gate.err)")
        #expect(Self.findings(try SigilCommandsTests.json(gate.out)) == seeded.expected, "the report is still written when the gate fails")
        // Only Sigil's own CAs: nothing at all, so even --fail-on info passes.
        let clean = try await TestAuthority.make()
        try await clean.store.close()
        defer { clean.directory.remove() }
        let passes = await sigil(["report", "compliance", "--fail-on", "info"], environment: ["SIGIL_HOME": clean.directory.path])
        #expect(passes.code == 0, "\(passes.err)\(passes.out)")
        #expect(passes.out.contains("Findings: 0"))

        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for (flags, message) in [(["--format", "xml"], "--format must be text, json, csv or html"), (["--fail-on", "severe"], "--fail-on must be"),
                                 (["--expiring-within", "soon"], "--expiring-within must be a duration"), (["--seen-within=-3d"], "--seen-within must be"),
                                 (["--max-validity", "0"], "--max-validity must be")] {
            let result = await sigil(["report", "compliance", "--output", dir.file("r.txt")] + flags, environment: env)
            #expect(result.code == 2 && result.err.contains(message), "\(flags): \(result.code) \(result.err)")
        }
        #expect(dir.entries().isEmpty, "a refused run writes nothing")
        let missing = await sigil(["report", "compliance"], environment: ["SIGIL_HOME": dir.file("nowhere")])
        #expect(missing.code == 2 && missing.err.contains("does not exist"), "\(missing.err)")
        // A home without a database, or a --database that is not there: exit 2, and no database is created.
        let empty = await sigil(["report", "compliance", "--home", dir.path], environment: [:])
        #expect(empty.code == 2 && empty.err.contains("there is no SQLite database at \(dir.path)/sigil.db"), "\(empty.err)")
        let absent = await sigil(["report", "compliance", "--database", dir.file("other.db")], environment: env)
        #expect(absent.code == 2 && absent.err.contains("there is no SQLite database"), "\(absent.err)")
        #expect(dir.entries().isEmpty, "nothing created")
    }
}

/// RFC 4180 reading, enough to check what the report writes.
enum CSV {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false, afterQuote = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" { if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false; afterQuote = true } } else { field.append(c) }
            } else if c == "\"" && field.isEmpty && !afterQuote {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""; afterQuote = false
            } else if c == "\r\n" || c == "\n" {
                row.append(field); rows.append(row); row = []; field = ""; afterQuote = false
            } else {
                field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}
