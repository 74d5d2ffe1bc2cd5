import Crypto
import Foundation
import SigilCore
import SQLKit

/// The compliance engine: every check is one SQL condition over the inventory (so a count
/// costs one indexed or sequential pass, whatever the inventory's size), and the report,
/// the dashboard and the REST API all read it from here.
extension SQLSession {
    public func complianceReport(_ policy: CompliancePolicy, now: Date, examples: Int?) async throws -> ComplianceReport {
        let scope = ComplianceSQL(policy: policy, now: now)
        var results: [ComplianceCheckResult] = []
        for check in ComplianceCheck.allCases {
            let condition = scope.condition(check)
            var select: SQLQueryString = "SELECT c.* FROM certificates c WHERE \(condition) ORDER BY c.not_after, c.fingerprint"
            if let examples { select += " LIMIT \(bind: max(0, examples))" }
            let records = try await db.raw(select).all().map(decodeCertificate)
            var count = records.count
            if let examples, records.count >= examples {
                count = Int(try await db.raw("SELECT COUNT(*) AS n FROM certificates c WHERE \(condition)").first()?.decode(column: "n", as: Int64.self) ?? 0)
            }
            results.append(ComplianceCheckResult(check: check, count: count, findings: try await findings(check, records, scope)))
        }
        return ComplianceReport(
            generatedAt: now, policy: policy,
            inventory: try await countCertificates(),
            inScope: try await count("SELECT COUNT(*) AS n FROM certificates c WHERE \(scope.inScope("c"))"),
            inUse: try await count("SELECT COUNT(*) AS n FROM certificates c WHERE \(scope.inUse("c", leafOnly: false))"),
            results: results, agility: try await agility(scope))
    }

    private func count(_ sql: SQLQueryString) async throws -> Int {
        Int(try await db.raw(sql).first()?.decode(column: "n", as: Int64.self) ?? 0)
    }

    /// Adds each certificate's sightings, its detail sentence and, for a shared key, the others.
    private func findings(_ check: ComplianceCheck, _ records: [CertificateRecord], _ scope: ComplianceSQL) async throws -> [ComplianceFinding] {
        guard !records.isEmpty else { return [] }
        let seen = try await sightings(of: records.map(\.fingerprint))
        var sharing: [String: (count: Int, fingerprints: [String])] = [:]
        if check == .sharedKey {
            for key in Set(records.compactMap(\.publicKeySHA256)) {
                let inScope = scope.inScope("k")
                let total = try await count("SELECT COUNT(*) AS n FROM certificates k WHERE k.public_key_sha256 = \(bind: key) AND COALESCE(k.is_ca, 0) = 0 AND \(inScope)")
                let some = try await db.raw("""
                    SELECT k.fingerprint FROM certificates k WHERE k.public_key_sha256 = \(bind: key) AND COALESCE(k.is_ca, 0) = 0 AND \(inScope)
                    ORDER BY k.fingerprint LIMIT 21
                    """).all().map { try $0.decode(column: "fingerprint", as: String.self) }
                sharing[key] = (total, some)
            }
        }
        return records.map { record in
            let places = seen[record.fingerprint] ?? []
            var related: [String] = []
            if let key = record.publicKeySHA256, let group = sharing[key] {
                related = Array(group.fingerprints.filter { $0 != record.fingerprint }.prefix(20))
            }
            let others = record.publicKeySHA256.flatMap { sharing[$0] }.map { $0.count - 1 } ?? related.count
            return ComplianceFinding(check: check, certificate: record,
                                     detail: ComplianceDetail.text(check, record, policy: scope.policy, now: scope.now, sightings: places, sharedWith: others),
                                     sightings: places, related: related)
        }
    }

    /// Sightings of many certificates, a few hundred fingerprints per statement.
    private func sightings(of fingerprints: [String]) async throws -> [String: [CertificateSighting]] {
        var result: [String: [CertificateSighting]] = [:]
        let unique = Array(Set(fingerprints)).sorted()
        for start in stride(from: 0, to: unique.count, by: 500) {
            let chunk = Array(unique[start..<min(start + 500, unique.count)])
            let rows = try await db.raw("""
                SELECT * FROM certificate_sightings WHERE fingerprint IN (\(binds: chunk)) ORDER BY last_seen DESC, location, server_name
                """).all()
            for row in rows {
                let fingerprint = try row.decode(column: "fingerprint", as: String.self)
                result[fingerprint, default: []].append(try sighting(row))
            }
        }
        return result
    }

    private func agility(_ scope: ComplianceSQL) async throws -> CryptoAgility {
        let inScope = scope.inScope("c")
        let keys = try await db.raw("""
            SELECT c.key_algorithm AS algorithm, c.key_size AS size, COUNT(*) AS n FROM certificates c WHERE \(inScope)
            GROUP BY c.key_algorithm, c.key_size
            """).all().map { row -> CryptoAgility.Count in
            let algorithm = try row.decode(column: "algorithm", as: String.self)
            let size = try row.decode(column: "size", as: Int.self)
            return CryptoAgility.Count(name: algorithm == "unknown" ? "unknown" : "\(algorithm) \(size)", count: Int(try row.decode(column: "n", as: Int64.self)),
                                       quantumVulnerable: CryptoAgility.isQuantumVulnerable(keyAlgorithm: algorithm))
        }
        let signatures = try await db.raw("""
            SELECT c.signature_algorithm AS algorithm, COUNT(*) AS n FROM certificates c WHERE \(inScope)
            GROUP BY c.signature_algorithm
            """).all().map { row -> CryptoAgility.Count in
            let name = try row.decode(column: "algorithm", as: String.self)
            return CryptoAgility.Count(name: name, count: Int(try row.decode(column: "n", as: Int64.self)), quantumVulnerable: !name.hasPrefix("ML-DSA"))
        }
        let order: (CryptoAgility.Count, CryptoAgility.Count) -> Bool = { ($0.count, $1.name) > ($1.count, $0.name) }
        return CryptoAgility(keys: keys.sorted(by: order), signatures: signatures.sorted(by: order))
    }

    /// Fills `public_key_sha256` and `is_ca` for certificates recorded before migration 9.
    func fillKeyFacts() async throws {
        var after = ""
        while true {
            let page = try await db.raw("""
                SELECT fingerprint, pem FROM certificates WHERE fingerprint > \(bind: after) ORDER BY fingerprint LIMIT 1000
                """).all().map { (try $0.decode(column: "fingerprint", as: String.self), try $0.decode(column: "pem", as: String.self)) }
            for (fingerprint, pem) in page {
                guard let facts = KeyFacts(pem: pem) else { continue }
                try await db.raw("""
                    UPDATE certificates SET public_key_sha256 = \(bind: facts.publicKeySHA256), is_ca = \(bind: facts.isCA ? 1 : 0)
                    WHERE fingerprint = \(bind: fingerprint)
                    """).run()
            }
            guard let last = page.last, page.count == 1000 else { return }
            after = last.0
        }
    }
}

/// The SQL of each check, with the report's time and windows bound in.
struct ComplianceSQL {
    let policy: CompliancePolicy
    let now: Date
    var t: Int64 { seconds(now) }
    var since: Int64 { t - Int64(policy.seenWithin) }

    /// Served by a TLS endpoint within the window. `leafOnly`: as the certificate the endpoint
    /// presents first, the one whose issuer the client must know.
    func inUse(_ alias: String, leafOnly: Bool) -> SQLQueryString {
        let leaf = leafOnly ? " AND chain_position = 0" : ""
        return "\(unsafeRaw: alias).fingerprint IN (SELECT fingerprint FROM certificate_sightings WHERE kind = 'tls'\(unsafeRaw: leaf) AND last_seen >= \(bind: since))"
    }

    /// Not revoked, and valid or still in use: what a finding is worth raising about.
    func inScope(_ alias: String) -> SQLQueryString {
        "(\(unsafeRaw: alias).status = 'active' AND (\(unsafeRaw: alias).not_after > \(bind: t) OR \(inUse(alias, leafOnly: false))))"
    }

    /// A self-signed CA certificate is a trust anchor: its own signature is never relied on (RFC 5280 §6.1).
    var notTrustAnchor: SQLQueryString { "NOT (COALESCE(c.is_ca, 0) = 1 AND c.subject = c.issuer)" }

    /// The longest validity allowed, in seconds, as an SQL expression over `c.not_before`.
    var maximumValidity: SQLQueryString {
        if let days = policy.maxValidityDays { return "\(bind: Int64(days) * 86_400)" }
        var sql: SQLQueryString = "CASE"
        for step in BaselineRequirements.steps.reversed() {
            sql += " WHEN c.not_before >= \(bind: step.start) THEN \(bind: Int64(step.days) * 86_400)"
        }
        sql += " ELSE \(bind: Int64(BaselineRequirements.initialMaximumDays) * 86_400) END"
        return sql
    }

    func condition(_ check: ComplianceCheck) -> SQLQueryString {
        let scope = inScope("c")
        let urgent = min(CompliancePolicy.urgentWindow, policy.expiringWithin)
        switch check {
        case .weakKey:
            return "\(scope) AND ((c.key_algorithm = 'RSA' AND c.key_size < 2048) OR (c.key_algorithm IN ('ECDSA', 'EC') AND c.key_size < 256))"
        case .md5Signature:
            return "\(scope) AND LOWER(c.signature_algorithm) LIKE '%md5%' AND \(notTrustAnchor)"
        case .sha1Signature:
            return "\(scope) AND LOWER(c.signature_algorithm) LIKE '%sha1%' AND \(notTrustAnchor)"
        case .expiredInUse:
            return "c.status = 'active' AND c.not_after <= \(bind: t) AND \(inUse("c", leafOnly: false))"
        case .expiringSoonInUse:
            return "c.status = 'active' AND c.not_after > \(bind: t) AND c.not_after <= \(bind: t + Int64(urgent)) AND \(inUse("c", leafOnly: false))"
        case .expiringInUse:
            return """
                c.status = 'active' AND c.not_after > \(bind: t + Int64(urgent)) AND c.not_after <= \(bind: t + Int64(policy.expiringWithin)) \
                AND \(inUse("c", leafOnly: false))
                """
        case .selfSignedInUse:
            // The CA flag does not excuse a self-signed certificate served as the leaf (`openssl req -x509` sets it by default).
            return "c.status = 'active' AND c.subject = c.issuer AND \(inUse("c", leafOnly: true))"
        case .unknownIssuerInUse:
            return """
                c.status = 'active' AND c.subject <> c.issuer AND \(inUse("c", leafOnly: true)) \
                AND c.issuer NOT IN (SELECT name FROM issuers) AND c.issuer NOT IN (SELECT subject FROM issuers) \
                AND NOT EXISTS (SELECT 1 FROM certificates ca WHERE ca.is_ca = 1 AND ca.subject = c.issuer)
                """
        case .longValidity:
            // TLS certificates: end-entity ones with a DNS name or IP address (CA certificates have their own cryptoperiods).
            return """
                \(scope) AND COALESCE(c.is_ca, 0) = 0 AND (c.profile IS NULL OR c.profile NOT IN ('root-ca', 'sub-ca', 'ca')) \
                AND (c.sans LIKE '%"DNS:%' OR c.sans LIKE '%"IP:%') AND c.not_after - c.not_before > \(maximumValidity)
                """
        case .sharedKey:
            return """
                \(scope) AND COALESCE(c.is_ca, 0) = 0 AND c.public_key_sha256 IN (SELECT k.public_key_sha256 FROM certificates k \
                WHERE \(inScope("k")) AND COALESCE(k.is_ca, 0) = 0 AND k.public_key_sha256 IS NOT NULL \
                GROUP BY k.public_key_sha256 HAVING COUNT(*) > 1)
                """
        case .rsa2048AfterSunset:
            return """
                \(scope) AND c.key_algorithm = 'RSA' AND c.key_size >= 2048 AND c.key_size < 3072 \
                AND c.not_after >= \(bind: seconds(CompliancePolicy.rsa2048Sunset))
                """
        case .wildcard:
            return "\(scope) AND (c.sans LIKE '%\"DNS:*%' OR c.common_name LIKE '*%')"
        }
    }
}

/// The sentence that says what exactly a check found in one certificate.
enum ComplianceDetail {
    static func text(_ check: ComplianceCheck, _ c: CertificateRecord, policy: CompliancePolicy, now: Date, sightings: [CertificateSighting], sharedWith: Int) -> String {
        let lastSeen = sightings.filter { $0.kind == .tls }.map(\.lastSeen).max()
        let seen = lastSeen.map { "; last seen in use \(RFC3339.string($0))" } ?? ""
        switch check {
        case .weakKey:
            let minimum = c.keyAlgorithm == "RSA" ? "2048 bits" : "P-256"
            return "\(c.keyAlgorithm) \(c.keySize)-bit key; at least \(minimum) (112-bit security) is required"
        case .md5Signature, .sha1Signature:
            return "signed with \(c.signatureAlgorithm); collisions make such signatures forgeable"
        case .expiredInUse:
            return "expired \(RFC3339.string(c.notAfter)) (\(days(now.timeIntervalSince(c.notAfter))) ago)\(seen)"
        case .expiringSoonInUse, .expiringInUse:
            return "expires \(RFC3339.string(c.notAfter)) (in \(days(c.notAfter.timeIntervalSince(now))))\(seen)"
        case .selfSignedInUse:
            return "self-signed (issuer = subject) and served as a TLS server's certificate\(seen)"
        case .unknownIssuerInUse:
            return "issuer \(c.issuer) is neither a Sigil CA nor a CA certificate in the inventory\(seen)"
        case .longValidity:
            let valid = days(c.notAfter.timeIntervalSince(c.notBefore))
            let rule = policy.maxValidityDays.map { "the policy maximum is \($0) days" }
                ?? "the CA/B Forum Baseline Requirements (§6.3.2) allowed \(BaselineRequirements.maximumValidityDays(at: c.notBefore)) days at its notBefore"
            return "valid \(valid); \(rule)"
        case .sharedKey:
            return "its public key (SHA-256 \(c.publicKeySHA256?.prefix(16) ?? "")…) is also in \(sharedWith) other certificate\(sharedWith == 1 ? "" : "s")"
        case .rsa2048AfterSunset:
            return "RSA \(c.keySize) gives 112-bit security, acceptable only through 2030; valid until \(RFC3339.string(c.notAfter)) (NIST SP 800-57 Part 1 Rev. 5 §5.6.3 wants RSA 3072 from 2031)"
        case .wildcard:
            let names = ([c.commonName].compactMap { $0 } + c.sans.map { $0.hasPrefix("DNS:") ? String($0.dropFirst(4)) : $0 }).filter { $0.hasPrefix("*") }
            return "wildcard name\(Set(names).count == 1 ? "" : "s") \(Array(Set(names)).sorted().joined(separator: ", ")): one key answers for every host under the domain"
        }
    }

    /// Whole days, as text: "1 day", "30 days".
    static func days(_ interval: TimeInterval) -> String {
        let n = Int((interval / 86_400).rounded(.down))
        return n == 1 ? "1 day" : "\(n) days"
    }
}

/// What the store records about a certificate's key, read from its PEM.
struct KeyFacts {
    var publicKeySHA256: String
    var isCA: Bool

    init?(pem: String) {
        guard let certificate = try? X509Certificate(pemOrDER: Array(pem.utf8)) else { return nil }
        publicKeySHA256 = certificate.publicKeySHA256
        isCA = certificate.isCertificateAuthority
    }
}

extension X509Certificate {
    /// SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex: equal for one key in any certificate.
    public var publicKeySHA256: String { Hex.encode(SHA256.hash(data: subjectPublicKeyInfo)) }
}

extension CertificateRecord {
    /// The record with its key facts filled from the PEM when the caller did not know them.
    func withKeyFacts() -> CertificateRecord {
        guard publicKeySHA256 == nil, let facts = KeyFacts(pem: pem) else { return self }
        var filled = self
        filled.publicKeySHA256 = facts.publicKeySHA256
        filled.isCA = isCA ?? facts.isCA
        return filled
    }
}
