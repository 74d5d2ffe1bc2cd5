import Foundation
import SigilCore
import SigilStore

/// The ways a compliance report is written: for a terminal, for programs (JSON, a stable
/// shape), for spreadsheets (CSV, RFC 4180) and for people without Sigil (one HTML file with
/// no external assets). The CLI and the REST API write the same bytes.
public enum ComplianceReportFormat: String, Sendable, CaseIterable {
    case text, json, csv, html

    public var contentType: String {
        switch self {
        case .text: return "text/plain; charset=utf-8"
        case .json: return "application/json"
        case .csv: return "text/csv; charset=utf-8"
        case .html: return "text/html; charset=utf-8"
        }
    }

    public func render(_ report: ComplianceReport) throws -> [UInt8] {
        switch self {
        case .text: return Array(ComplianceText.render(report).utf8)
        case .json: return try ComplianceJSON.render(report)
        case .csv: return Array(ComplianceCSV.render(report).utf8)
        case .html: return Array(ComplianceHTML.render(report).utf8)
        }
    }
}

/// What the formats share: severities most severe first, and how a finding names its places.
enum ComplianceLayout {
    static let severities: [ComplianceSeverity] = ComplianceSeverity.allCases.reversed()

    static func results(_ report: ComplianceReport, at severity: ComplianceSeverity) -> [ComplianceCheckResult] {
        report.results.filter { $0.check.severity == severity && $0.count > 0 }
    }

    static func place(_ s: CertificateSighting) -> String {
        switch s.kind {
        case .tls:
            let sni = s.serverName.isEmpty ? "" : " (SNI \(s.serverName))"
            let position = s.chainPosition == 0 ? "" : ", chain position \(s.chainPosition)"
            return "tls \(s.location)\(sni)\(position), last seen \(RFC3339.string(s.lastSeen))"
        case .file:
            return "file \(s.path ?? s.location), last seen \(RFC3339.string(s.lastSeen))"
        }
    }

    /// Where the certificate lives: its sightings, and Sigil itself when Sigil issued it.
    static func places(_ f: ComplianceFinding) -> [String] {
        var places = f.sightings.map(place)
        if let sigil = sigilOrigin(f.certificate) { places.append(sigil) }
        return places
    }

    static func sigilOrigin(_ c: CertificateRecord) -> String? {
        guard c.source == .issued else { return nil }
        return "issued by Sigil (CA \(c.issuer)\(c.profile.map { ", profile \($0)" } ?? ""))"
    }

    static func names(_ c: CertificateRecord) -> [String] {
        let sans = c.sans.map { san -> String in
            let parts = san.split(separator: ":", maxSplits: 1)
            return parts.count == 2 && (parts[0] == "DNS" || parts[0] == "IP" || parts[0] == "email" || parts[0] == "URI") ? String(parts[1]) : san
        }
        return sans.isEmpty ? [c.commonName].compactMap { $0 } : sans
    }

    static func label(_ c: CertificateRecord) -> String { c.commonName ?? names(c).first ?? c.subject }

    static func policy(_ p: CompliancePolicy) -> String {
        let validity = p.maxValidityDays.map { "\($0) days" } ?? "CA/B Forum Baseline Requirements at notBefore"
        return "in use = seen on a TLS endpoint within \(days(p.seenWithin)) days; expiring = within \(days(p.expiringWithin)) days; maximum validity: \(validity)"
    }

    static func days(_ seconds: TimeInterval) -> String {
        let d = seconds / 86_400
        return d == d.rounded() ? String(Int(d)) : String(format: "%.2f", d)
    }

    static func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }

    /// Every control the findings bear on, once, in the order first met.
    static func controls(_ report: ComplianceReport) -> [ComplianceControl] {
        var seen: [ComplianceControl] = []
        for result in report.results where result.count > 0 {
            for control in result.check.controls where !seen.contains(control) { seen.append(control) }
        }
        return seen
    }
}

enum ComplianceText {
    static func render(_ r: ComplianceReport) -> String {
        let counts = r.countsBySeverity
        let total = r.results.map(\.count).reduce(0, +)
        var out = "Sigil compliance report, \(RFC3339.string(r.generatedAt))\n"
        out += "Inventory: \(r.inventory) certificates, \(r.inScope) in scope (valid, or expired but in use), \(r.inUse) seen in use\n"
        out += "Findings: \(total) (" + ComplianceLayout.severities.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ") + ")\n"
        out += "Policy: \(ComplianceLayout.policy(r.policy))\n"
        for severity in ComplianceLayout.severities {
            let results = ComplianceLayout.results(r, at: severity)
            guard !results.isEmpty else { continue }
            out += "\n\(severity.rawValue.uppercased())\n"
            for result in results {
                out += "  [\(result.check.rawValue)] \(result.check.title): \(result.count)\n"
                out += "    controls: \(result.check.controls.map(\.id).joined(separator: "; "))\n"
                for f in result.findings {
                    let c = f.certificate
                    out += "    - \(ComplianceLayout.label(c))  serial \(c.serial)  sha256 \(c.fingerprint)\n"
                    out += "      subject \(c.subject); issuer \(c.issuer); not after \(RFC3339.string(c.notAfter))\n"
                    out += "      \(f.detail)\n"
                    for place in ComplianceLayout.places(f) { out += "      at \(place)\n" }
                }
                if result.findings.count < result.count { out += "    … and \(result.count - result.findings.count) more\n" }
            }
        }
        let clean = r.results.filter { $0.count == 0 }.map(\.check.rawValue)
        if !clean.isEmpty { out += "\nClean: \(clean.joined(separator: ", "))\n" }
        let a = r.agility
        out += "\nCrypto agility: \(a.total) certificates in scope; \(a.quantumVulnerable) quantum-vulnerable (RSA, ECDSA, EdDSA), "
        out += "\(ComplianceLayout.percent(a.quantumVulnerableShare)); \(a.postQuantum) post-quantum (ML-DSA)\n"
        func list(_ counts: [CryptoAgility.Count]) -> String { counts.isEmpty ? "none" : counts.map { "\($0.name) \($0.count)" }.joined(separator: ", ") }
        out += "  keys: \(list(a.keys))\n  signatures: \(list(a.signatures))\n"
        let controls = ComplianceLayout.controls(r)
        if !controls.isEmpty {
            out += "\nControls\n"
            for control in controls { out += "  \(control.id): \(control.title)\n" }
        }
        return out
    }
}

/// The JSON shape (`schema: sigil.compliance-report.v1`); README "Compliance report" documents it.
enum ComplianceJSON {
    struct Document: Encodable {
        var schema = "sigil.compliance-report.v1"
        var generatedAt: String
        var policy: Policy
        var summary: Summary
        var checks: [Check]
        var findings: [Finding]
        var cryptoAgility: Agility
        enum CodingKeys: String, CodingKey {
            case schema, generatedAt = "generated_at", policy, summary, checks, findings, cryptoAgility = "crypto_agility"
        }
    }

    struct Policy: Encodable {
        var seenWithinDays: Double
        var expiringWithinDays: Double
        /// null: the CA/B Forum Baseline Requirements maximum at each certificate's notBefore.
        var maxValidityDays: Int?
        enum CodingKeys: String, CodingKey {
            case seenWithinDays = "seen_within_days", expiringWithinDays = "expiring_within_days", maxValidityDays = "max_validity_days"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(seenWithinDays, forKey: .seenWithinDays)
            try c.encode(expiringWithinDays, forKey: .expiringWithinDays)
            try c.encode(maxValidityDays, forKey: .maxValidityDays)
        }
    }

    struct Summary: Encodable {
        var inventory: Int
        var inScope: Int
        var inUse: Int
        var findings: Int
        var bySeverity: [String: Int]
        var highestSeverity: String?
        enum CodingKeys: String, CodingKey {
            case inventory, inScope = "in_scope", inUse = "in_use", findings, bySeverity = "by_severity", highestSeverity = "highest_severity"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(inventory, forKey: .inventory)
            try c.encode(inScope, forKey: .inScope)
            try c.encode(inUse, forKey: .inUse)
            try c.encode(findings, forKey: .findings)
            try c.encode(bySeverity, forKey: .bySeverity)
            try c.encode(highestSeverity, forKey: .highestSeverity)
        }
    }

    struct Check: Encodable {
        var id: String
        var title: String
        var severity: String
        var count: Int
        var controls: [ComplianceControl]
    }

    struct Certificate: Encodable {
        var serial: String
        var fingerprint: String
        var subject: String
        var names: [String]
        var issuer: String
        var notBefore: String
        var notAfter: String
        var key: String
        var signatureAlgorithm: String
        var source: String
        enum CodingKeys: String, CodingKey {
            case serial, fingerprint, subject, names, issuer, notBefore = "not_before", notAfter = "not_after", key
            case signatureAlgorithm = "signature_algorithm", source
        }
    }

    struct Location: Encodable {
        var kind: String
        var location: String
        var serverName: String
        var chainPosition: Int
        var tlsVersion: String?
        var cipher: String?
        var firstSeen: String
        var lastSeen: String
        enum CodingKeys: String, CodingKey {
            case kind, location, serverName = "server_name", chainPosition = "chain_position", tlsVersion = "tls_version", cipher
            case firstSeen = "first_seen", lastSeen = "last_seen"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(location, forKey: .location)
            try c.encode(serverName, forKey: .serverName)
            try c.encode(chainPosition, forKey: .chainPosition)
            try c.encode(tlsVersion, forKey: .tlsVersion)
            try c.encode(cipher, forKey: .cipher)
            try c.encode(firstSeen, forKey: .firstSeen)
            try c.encode(lastSeen, forKey: .lastSeen)
        }
    }

    struct SigilOrigin: Encodable {
        var issuer: String
        var profile: String?
    }

    struct Finding: Encodable {
        var check: String
        var severity: String
        var title: String
        var detail: String
        var controls: [String]
        var certificate: Certificate
        var locations: [Location]
        var issuedBySigil: SigilOrigin?
        var sharesKeyWith: [String]
        enum CodingKeys: String, CodingKey {
            case check, severity, title, detail, controls, certificate, locations, issuedBySigil = "issued_by_sigil", sharesKeyWith = "shares_key_with"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(check, forKey: .check)
            try c.encode(severity, forKey: .severity)
            try c.encode(title, forKey: .title)
            try c.encode(detail, forKey: .detail)
            try c.encode(controls, forKey: .controls)
            try c.encode(certificate, forKey: .certificate)
            try c.encode(locations, forKey: .locations)
            try c.encode(issuedBySigil, forKey: .issuedBySigil)
            try c.encode(sharesKeyWith, forKey: .sharesKeyWith)
        }
    }

    struct Count: Encodable {
        var name: String
        var count: Int
        var quantumVulnerable: Bool
        enum CodingKeys: String, CodingKey { case name, count, quantumVulnerable = "quantum_vulnerable" }
    }

    struct Agility: Encodable {
        var total: Int
        var quantumVulnerable: Int
        var postQuantum: Int
        var quantumVulnerableShare: Double
        var keys: [Count]
        var signatures: [Count]
        enum CodingKeys: String, CodingKey {
            case total, quantumVulnerable = "quantum_vulnerable", postQuantum = "post_quantum", quantumVulnerableShare = "quantum_vulnerable_share", keys, signatures
        }
    }

    static func document(_ r: ComplianceReport) -> Document {
        let counts = r.countsBySeverity
        let a = r.agility
        return Document(
            generatedAt: RFC3339.string(r.generatedAt),
            policy: Policy(seenWithinDays: r.policy.seenWithin / 86_400, expiringWithinDays: r.policy.expiringWithin / 86_400, maxValidityDays: r.policy.maxValidityDays),
            summary: Summary(inventory: r.inventory, inScope: r.inScope, inUse: r.inUse, findings: r.results.map(\.count).reduce(0, +),
                             bySeverity: Dictionary(uniqueKeysWithValues: ComplianceSeverity.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
                             highestSeverity: r.highestSeverity?.rawValue),
            checks: r.results.map { Check(id: $0.check.rawValue, title: $0.check.title, severity: $0.check.severity.rawValue, count: $0.count, controls: $0.check.controls) },
            findings: r.findings.map { f in
                let c = f.certificate
                return Finding(
                    check: f.check.rawValue, severity: f.severity.rawValue, title: f.check.title, detail: f.detail, controls: f.check.controls.map(\.id),
                    certificate: Certificate(serial: c.serial, fingerprint: c.fingerprint, subject: c.subject, names: ComplianceLayout.names(c), issuer: c.issuer,
                                             notBefore: RFC3339.string(c.notBefore), notAfter: RFC3339.string(c.notAfter), key: "\(c.keyAlgorithm) \(c.keySize)",
                                             signatureAlgorithm: c.signatureAlgorithm, source: c.source.rawValue),
                    locations: f.sightings.map {
                        Location(kind: $0.kind.rawValue, location: $0.location, serverName: $0.serverName, chainPosition: $0.chainPosition, tlsVersion: $0.tlsVersion,
                                 cipher: $0.cipher, firstSeen: RFC3339.string($0.firstSeen), lastSeen: RFC3339.string($0.lastSeen))
                    },
                    issuedBySigil: c.source == .issued ? SigilOrigin(issuer: c.issuer, profile: c.profile) : nil,
                    sharesKeyWith: f.related)
            },
            cryptoAgility: Agility(total: a.total, quantumVulnerable: a.quantumVulnerable, postQuantum: a.postQuantum,
                                   quantumVulnerableShare: (a.quantumVulnerableShare * 10_000).rounded() / 10_000,
                                   keys: a.keys.map { Count(name: $0.name, count: $0.count, quantumVulnerable: $0.quantumVulnerable) },
                                   signatures: a.signatures.map { Count(name: $0.name, count: $0.count, quantumVulnerable: $0.quantumVulnerable) }))
    }

    static func render(_ r: ComplianceReport) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(document(r))) + [0x0a]
    }
}

/// One row per finding × certificate, CRLF line ends and quoting as RFC 4180 §2 says.
enum ComplianceCSV {
    static let header = ["severity", "check", "title", "serial", "fingerprint", "subject", "names", "issuer", "not_after", "key",
                         "signature_algorithm", "detail", "locations", "controls"]

    static func render(_ r: ComplianceReport) -> String {
        var text = header.joined(separator: ",") + "\r\n"
        for f in r.findings {
            let c = f.certificate
            let fields = [f.severity.rawValue, f.check.rawValue, f.check.title, c.serial, c.fingerprint, c.subject, ComplianceLayout.names(c).joined(separator: " "),
                          c.issuer, RFC3339.string(c.notAfter), "\(c.keyAlgorithm) \(c.keySize)", c.signatureAlgorithm, f.detail,
                          ComplianceLayout.places(f).joined(separator: "; "), f.check.controls.map(\.id).joined(separator: "; ")]
            text += fields.map(Dashboard.csvField).joined(separator: ",") + "\r\n"
        }
        return text
    }
}

/// One self-contained page: inline style, no scripts, no external assets; every value escaped.
enum ComplianceHTML {
    static func e(_ text: String) -> String { SVGChart.escape(text) }

    static func render(_ r: ComplianceReport) -> String {
        let counts = r.countsBySeverity
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"/><title>Sigil compliance report \(e(RFC3339.string(r.generatedAt)))</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1f24}table{border-collapse:collapse;margin:.5em 0 1.5em}
            td,th{border:1px solid #ccd;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#eef}
            .critical{color:#8b0000}.high{color:#c0392b}.medium{color:#b9770e}.low{color:#2e6da4}.info{color:#555}
            .mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
            </style></head><body>
            <h1>Sigil compliance report</h1>
            <p>Generated <time>\(e(RFC3339.string(r.generatedAt)))</time>. Policy: \(e(ComplianceLayout.policy(r.policy))).</p>
            <h2>Summary</h2>
            <table id="summary"><tr><th>Certificates</th><td>\(r.inventory)</td></tr><tr><th>In scope</th><td>\(r.inScope)</td></tr>
            <tr><th>Seen in use</th><td>\(r.inUse)</td></tr>
            """
        for severity in ComplianceLayout.severities {
            h += "<tr><th class=\"\(severity.rawValue)\">\(severity.rawValue)</th><td>\(counts[severity] ?? 0)</td></tr>"
        }
        h += "</table>\n<h2>Checks</h2>\n<table id=\"checks\"><thead><tr><th>Check</th><th>Severity</th><th>Findings</th><th>Controls</th></tr></thead><tbody>\n"
        for result in r.results {
            h += "<tr><td>\(e(result.check.title)) <span class=\"mono\">(\(e(result.check.rawValue)))</span></td><td class=\"\(result.check.severity.rawValue)\">"
            h += "\(result.check.severity.rawValue)</td><td>\(result.count)</td><td>\(e(result.check.controls.map(\.id).joined(separator: "; ")))</td></tr>\n"
        }
        h += "</tbody></table>\n<h2>Findings</h2>\n"
        if r.findings.isEmpty { h += "<p>None.</p>\n" }
        for severity in ComplianceLayout.severities {
            for result in ComplianceLayout.results(r, at: severity) {
                h += "<h3 class=\"\(severity.rawValue)\" id=\"\(e(result.check.rawValue))\">\(e(result.check.title)) (\(severity.rawValue), \(result.count))</h3>\n"
                h += "<table class=\"findings\"><thead><tr><th>Certificate</th><th>Issuer</th><th>Not after</th><th>Finding</th><th>Where</th></tr></thead><tbody>\n"
                for f in result.findings {
                    let c = f.certificate
                    h += "<tr><td>\(e(ComplianceLayout.label(c)))<br/><span class=\"mono\">serial \(e(c.serial))<br/>sha256 \(e(c.fingerprint))</span></td>"
                    h += "<td>\(e(c.issuer))</td><td>\(e(RFC3339.string(c.notAfter)))</td><td>\(e(f.detail))</td>"
                    h += "<td>\(ComplianceLayout.places(f).map(e).joined(separator: "<br/>"))</td></tr>\n"
                }
                h += "</tbody></table>\n"
                if result.findings.count < result.count { h += "<p>… and \(result.count - result.findings.count) more.</p>\n" }
            }
        }
        let a = r.agility
        h += "<h2>Crypto agility</h2>\n<p>\(a.total) certificates in scope; \(a.quantumVulnerable) quantum-vulnerable (RSA, ECDSA, EdDSA), "
        h += "\(e(ComplianceLayout.percent(a.quantumVulnerableShare))); \(a.postQuantum) post-quantum (ML-DSA).</p>\n"
        for (id, title, rows) in [("keys", "Key algorithm", a.keys), ("signatures", "Signature algorithm", a.signatures)] {
            h += "<table id=\"\(id)\"><thead><tr><th>\(title)</th><th>Certificates</th><th>Quantum-vulnerable</th></tr></thead><tbody>"
            for row in rows { h += "<tr><td>\(e(row.name))</td><td>\(row.count)</td><td>\(row.quantumVulnerable ? "yes" : "no")</td></tr>" }
            h += "</tbody></table>\n"
        }
        let controls = ComplianceLayout.controls(r)
        if !controls.isEmpty {
            h += "<h2>Controls</h2>\n<table id=\"controls\"><tbody>"
            for control in controls { h += "<tr><th>\(e(control.id))</th><td>\(e(control.title))</td></tr>" }
            h += "</tbody></table>\n"
        }
        return h + "</body></html>\n"
    }
}
