import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SigilAuthority
import SigilCore
import SigilStore
import SwiftASN1
import X509

/// The pages: each reads what it shows, renders one template, and never writes.
extension Dashboard {
    // MARK: Overview

    func overview(_ session: DashboardSessions.Active) async throws -> Response {
        let now = env.clock.now()
        let store = env.authority.store
        _ = store
        let snapshot = try await insights.snapshot()
        let stats = snapshot.statistics
        let issuers = try await env.authority.issuers()
        var data = try await common(session, title: "Overview")
        data["asOf"] = RFC3339.string(snapshot.computedAt)
        data["stats"] = ["active": stats.active, "expired": stats.expired, "revoked": stats.revoked, "total": stats.total,
                         "expiring7": stats.expiring7, "expiring30": stats.expiring30, "expiring90": stats.expiring90]
        let weekLabels = (0..<26).map { week in Self.shortDate(now.addingTimeInterval(Double(week) * 604_800)) }
        data["expiryChart"] = SVGChart.bars(zip(weekLabels, stats.expiryByWeek).map { SVGChart.Bar(label: $0, value: $1, kind: "bar") },
                                            title: "Active certificates by week of expiry, next 26 weeks", id: "expiry-chart", tickEvery: 4)
        let dayLabels = (0..<30).map { day in Self.shortDate(now.addingTimeInterval(Double(day - 29) * 86_400)) }
        data["issuanceChart"] = SVGChart.bars(zip(dayLabels, stats.issuedByDay).map { SVGChart.Bar(label: $0, value: $1, kind: "bar alt") },
                                              title: "Certificates recorded per day, last 30 days", id: "issuance-chart", tickEvery: 5)
        let activeTotal = max(1, stats.algorithms.map(\.count).reduce(0, +))
        let vulnerable = stats.algorithms.filter { $0.algorithm != "ML-DSA" }.map(\.count).reduce(0, +)
        data["algorithms"] = stats.algorithms.map { a -> [String: Any] in
            ["name": a.algorithm == "unknown" ? "unknown" : "\(a.algorithm) \(a.size)", "count": a.count,
             "share": String(format: "%.1f", 100 * Double(a.count) / Double(activeTotal)), "quantumVulnerable": a.algorithm != "ML-DSA"]
        }
        data["quantumShare"] = String(format: "%.1f", stats.algorithms.isEmpty ? 0 : 100 * Double(vulnerable) / Double(activeTotal))
        data["algorithmChart"] = SVGChart.shares([("quantum-vulnerable (RSA, ECDSA, EdDSA)", vulnerable, "warn"),
                                                  ("post-quantum (ML-DSA)", activeTotal - vulnerable, "ok")],
                                                 title: "Key algorithms of active certificates", id: "algorithm-chart")
        data["issuers"] = issuers.map { i -> [String: Any] in
            ["name": i.name, "subject": i.subject, "notAfter": RFC3339.string(i.notAfter), "root": i.isRoot, "status": i.status.rawValue,
             "certificates": stats.byIssuer[i.name] ?? 0]
        }
        let found = snapshot.compliance.results.filter { $0.count > 0 }
        data["findings"] = found.map { ["title": $0.check.title, "severity": $0.check.severity.rawValue, "count": $0.count, "id": $0.check.rawValue] }
        data["hasFindings"] = !found.isEmpty
        if let audit = await audit.current() {
            data["audit"] = ["ok": audit.ok, "entries": audit.entries, "problem": audit.problem ?? "", "checkedAt": RFC3339.string(audit.checkedAt)]
        } else {
            data["auditPending"] = true
        }
        return html("overview", data)
    }

    // MARK: Inventory

    static let pageSize = 50

    /// Counts stop here: a broad filter over a large inventory says "more than 1000" instead of walking every row.
    static let countCap = 1_000

    /// The inventory query a page's filters describe; unknown values are ignored, not errors.
    func inventoryQuery(_ q: [String: String], limit: Int) -> CertificateQuery {
        let now = env.clock.now()
        var query = CertificateQuery(now: now, limit: limit)
        func value(_ key: String) -> String? { q[key].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0.trimmingCharacters(in: .whitespaces) } }
        query.search = value("q")
        query.status = value("status").flatMap(CertificateStatus.init(rawValue:))
        query.issuer = value("issuer")
        query.profile = value("profile")
        query.owner = value("owner")
        query.tag = value("tag")
        query.source = value("source").flatMap(CertificateSource.init(rawValue:))
        query.keyAlgorithm = value("algorithm")
        if let days = value("expiring").flatMap(Int.init), days > 0 { query.expiringBefore = now.addingTimeInterval(Double(days) * 86_400) }
        query.sort = value("sort").flatMap(CertificateSort.init(rawValue:)) ?? .notAfter
        if let fingerprint = value("af"), let position = q["av"] {
            query.cursor = CertificateCursor(value: position, fingerprint: fingerprint)
        } else if let fingerprint = value("bf"), let position = q["bv"] {
            query.cursor = CertificateCursor(value: position, fingerprint: fingerprint, backward: true)
        }
        return query
    }

    func inventory(_ request: Request, _ session: DashboardSessions.Active) async throws -> Response {
        let q = Self.query(request)
        var query = inventoryQuery(q, limit: Self.pageSize + 1)
        let started = ContinuousClock.now
        let probe = query
        var countQuery = query
        countQuery.cursor = nil
        let counted = countQuery
        let (fetched, total) = try await env.authority.store.read { s in
            (try await s.certificates(probe), try await s.countCertificates(counted, upTo: Self.countCap + 1))
        }
        let elapsed = ContinuousClock.now - started
        // One row more than a page tells whether there is more in the direction of travel.
        let backward = query.cursor?.backward ?? false
        let more = fetched.count > Self.pageSize
        let rows = more ? (backward ? Array(fetched.suffix(Self.pageSize)) : Array(fetched.prefix(Self.pageSize))) : fetched
        query.limit = Self.pageSize
        let now = env.clock.now()
        var data = try await common(session, title: "Inventory")
        data["rows"] = rows.map { row(for: $0, now: now) }
        data["total"] = total > Self.countCap ? "more than \(Self.countCap)" : String(total)
        let keep = q.filter { !["af", "av", "bf", "bv"].contains($0.key) && !$0.value.isEmpty }
        func link(_ changes: [String: String]) -> String {
            let merged = keep.merging(changes) { _, new in new }
            return "/ui/certificates?" + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.encode($0.value))" }.joined(separator: "&")
        }
        if let last = rows.last, backward || more {
            data["next"] = link(["av": query.sort.value(of: last), "af": last.fingerprint])
        }
        if let first = rows.first, query.cursor != nil && (!backward || more) {
            data["previous"] = link(["bv": query.sort.value(of: first), "bf": first.fingerprint])
            data["first"] = link([:])
        }
        data["csv"] = "/ui/certificates.csv?" + keep.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.encode($0.value))" }.joined(separator: "&")
        for key in ["q", "issuer", "profile", "owner", "tag", "expiring"] { data["f_\(key)"] = q[key] ?? "" }
        data["statusOptions"] = options(["", "active", "expired", "revoked"], selected: q["status"])
        data["sourceOptions"] = options(["", "issued", "imported", "discovered"], selected: q["source"])
        data["algorithmOptions"] = options(["", "ECDSA", "RSA", "Ed25519", "ML-DSA"], selected: q["algorithm"])
        data["sortOptions"] = options(CertificateSort.allCases.map(\.rawValue), selected: q["sort"] ?? CertificateSort.notAfter.rawValue)
        let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        data["serverMillis"] = String(format: "%.1f", millis)
        var response = html("inventory", data)
        response.headers[HTTPField.Name("Server-Timing")!] = "db;dur=\(String(format: "%.1f", millis))"
        return response
    }

    func options(_ values: [String], selected: String?) -> [[String: Any]] {
        values.map { ["value": $0, "label": $0.isEmpty ? "any" : $0, "selected": $0 == (selected ?? "")] }
    }

    func row(for r: CertificateRecord, now: Date) -> [String: Any] {
        let status = r.status(at: now)
        return ["fingerprint": r.fingerprint, "serial": r.serial, "name": r.commonName ?? r.sans.first ?? r.subject, "sans": r.sans.joined(separator: ", "),
                "issuer": r.issuer, "profile": r.profile ?? "", "owner": r.owner ?? "", "tags": r.tags.joined(separator: ", "), "source": r.source.rawValue,
                "algorithm": "\(r.keyAlgorithm) \(r.keySize)", "notAfter": RFC3339.string(r.notAfter), "left": Self.timeLeft(r.notAfter, now: now),
                "status": status.rawValue, "soon": status == .active && r.notAfter.timeIntervalSince(now) < 30 * 86_400]
    }

    /// The current view as CSV (RFC 4180), up to 100,000 rows.
    func inventoryCSV(_ request: Request) async throws -> Response {
        var filter = inventoryQuery(Self.query(request), limit: 100_000)
        filter.cursor = nil
        let query = filter
        let rows = try await env.authority.store.read { try await $0.certificates(query) }
        let now = env.clock.now()
        var text = "serial,fingerprint,common_name,sans,issuer,profile,owner,tags,source,key,not_before,not_after,status\r\n"
        for r in rows {
            let fields = [r.serial, r.fingerprint, r.commonName ?? "", r.sans.joined(separator: " "), r.issuer, r.profile ?? "", r.owner ?? "",
                          r.tags.joined(separator: " "), r.source.rawValue, "\(r.keyAlgorithm) \(r.keySize)", RFC3339.string(r.notBefore),
                          RFC3339.string(r.notAfter), r.status(at: now).rawValue]
            text += fields.map(Self.csvField).joined(separator: ",") + "\r\n"
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"certificates.csv\"",
                                               .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// RFC 4180 quoting; a leading = + - @ is neutralised so a spreadsheet never runs it as a formula.
    static func csvField(_ value: String) -> String {
        var v = value
        if let first = v.first, "=+-@\t\r".contains(first) { v = "'" + v }
        if v.contains(where: { ",\"\r\n".contains($0) }) { return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return v
    }

    // MARK: Certificate

    func certificatePage(_ fingerprint: String, _ session: DashboardSessions.Active, flash: String? = nil) async throws -> Response {
        guard let record = try await env.authority.store.read({ try await $0.certificate(fingerprint: fingerprint) }) else {
            var data = try await common(session, title: "Not found")
            data["message"] = "no certificate with fingerprint \(fingerprint)"
            return html("error", data, status: .notFound)
        }
        let now = env.clock.now()
        let certificate = try X509Certificate(pemOrDER: Array(record.pem.utf8))
        var data = try await common(session, title: record.commonName ?? record.serial, flash: flash)
        data["c"] = row(for: record, now: now)
        data["subject"] = record.subject
        data["sanList"] = record.sans
        data["notBefore"] = RFC3339.string(record.notBefore)
        data["signatureAlgorithm"] = record.signatureAlgorithm
        data["keyType"] = record.keyType
        data["revoked"] = record.storedStatus == .revoked
        data["revokedAt"] = record.revokedAt.map(RFC3339.string) ?? ""
        data["reason"] = record.revocationReason.flatMap(RevocationReason.init(rawValue:))?.name ?? ""
        data["reasons"] = RevocationReason.allCases.filter { $0 != .removeFromCRL }.map { ["code": $0.rawValue, "name": $0.name] }
        data["extensions"] = certificate.extensions.map { ext -> [String: Any] in
            let (name, value) = Self.describe(ext)
            return ["name": name, "critical": ext.critical, "value": value]
        }
        let chain = (try? await env.authority.chain(issuer: record.issuer)) ?? []
        data["chain"] = chain.map { ["subject": $0.subject.openSSLString, "notAfter": RFC3339.string($0.notAfter), "fingerprint": $0.sha256Fingerprint] }
        let history = try await env.authority.store.read { s in
            try await s.auditEntries(AuditFilter(object: "certificate:\(record.serial)", limit: 50))
        }
        data["history"] = history.map(Self.auditRow)
        data["sightings"] = try await sightingRows(record.fingerprint)
        data["hasSightings"] = !(data["sightings"] as? [Any] ?? []).isEmpty
        data["renewable"] = record.source == .issued && record.profile != nil && session.role.allows(.certificatesRenew)
        data["canManage"] = session.role.allows(.certificatesRevoke)
        data["revocable"] = record.storedStatus != .revoked && session.role.allows(.certificatesRevoke)
        return html("certificate", data)
    }

    func certificatePEM(_ fingerprint: String) async throws -> Response {
        guard let record = try await env.authority.store.read({ try await $0.certificate(fingerprint: fingerprint) }) else {
            return Response(status: .notFound)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-pem-file",
                                               .contentDisposition: "attachment; filename=\"\(record.serial).pem\""],
                        body: .init(byteBuffer: ByteBuffer(string: record.pem)))
    }

    func revoke(_ fingerprint: String, _ session: DashboardSessions.Active, _ form: [String: String]) async throws -> Response {
        guard form["confirm"] == "yes" else {
            return try await certificatePage(fingerprint, session, flash: "Not revoked: tick the confirmation box to revoke.")
        }
        guard let code = form["reason"].flatMap(Int.init), let reason = RevocationReason(rawValue: code), reason != .removeFromCRL else {
            return try await certificatePage(fingerprint, session, flash: "Not revoked: choose a reason.")
        }
        do {
            _ = try await env.authority.revoke(fingerprint, reason: reason, actor: "token:\(session.record.name)")
            await insights.invalidate()
            return redirect("/ui/certificates/\(fingerprint)")
        } catch let error as SigilError {
            return try await certificatePage(fingerprint, session, flash: "Not revoked: \(error.message)")
        }
    }

    func renew(_ fingerprint: String, _ session: DashboardSessions.Active, _ form: [String: String]) async throws -> Response {
        guard let old = try await env.authority.store.read({ try await $0.certificate(fingerprint: fingerprint) }), let profile = old.profile else {
            return try await certificatePage(fingerprint, session, flash: "This certificate cannot be renewed here.")
        }
        do {
            let csr = try CertificationRequest(pemOrDER: Array((form["csr"] ?? "").utf8), source: "the pasted CSR")
            let requested = Set(try csr.subjectAltNames().map(\.description))
            guard requested == Set(old.sans) else {
                return try await certificatePage(fingerprint, session, flash: "Not renewed: the CSR must name exactly \(old.sans.joined(separator: ", ")).")
            }
            // The same limits as the API: a requester token renews only names it may ask for.
            let token = try await env.authority.store.read { try await $0.token(id: session.record.tokenID) }
            let allowed = token.flatMap { $0.allowedNames.isEmpty ? nil : $0.allowedNames }
            let outcome = try await env.authority.submit(IssuanceRequest(csr: csr, profile: profile, issuer: old.issuer, requester: "token:\(session.record.name)",
                                                                         owner: old.owner, tags: old.tags,
                                                                         allowedNames: try allowed.map { try $0.map(NamePattern.init) }))
            await insights.invalidate()
            switch outcome {
            case .issued(let issued): return redirect("/ui/certificates/\(issued.record.fingerprint)")
            case .pending(let request): return redirect("/ui/requests#\(request.id)")
            }
        } catch let error as SigilError {
            return try await certificatePage(fingerprint, session, flash: "Not renewed: \(([error.message] + error.reasons).joined(separator: " "))")
        }
    }

    func ownership(_ fingerprint: String, _ session: DashboardSessions.Active, _ form: [String: String]) async throws -> Response {
        let owner = form["owner"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let tags = (form["tags"] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { !$0.isEmpty }
        guard owner.count <= 128, tags.count <= 32, tags.allSatisfy({ $0.count <= 64 }) else {
            return try await certificatePage(fingerprint, session, flash: "Owner is at most 128 characters; at most 32 tags of 64.")
        }
        do {
            try await env.authority.setOwnership(fingerprint: fingerprint, owner: owner.isEmpty ? nil : owner, tags: tags, actor: "token:\(session.record.name)")
        } catch let error as SigilError {
            return try await certificatePage(fingerprint, session, flash: error.message)
        }
        return redirect("/ui/certificates/\(fingerprint)")
    }

    // MARK: Requests

    func requestsPage(_ session: DashboardSessions.Active, flash: String? = nil) async throws -> Response {
        let pending = try await env.authority.store.read { try await $0.requests(status: .pending) }
        let decided = try await env.authority.store.read { try await $0.requests(status: nil) }.filter { $0.status != .pending }.suffix(20)
        var data = try await common(session, title: "Requests", flash: flash)
        data["pendingRequests"] = pending.map { r -> [String: Any] in
            let csr = try? CertificationRequest(pemOrDER: Array(r.csrPEM.utf8))
            return ["id": r.id, "subject": r.subject, "names": r.names.joined(separator: ", "), "profile": r.profile, "requester": r.requester,
                    "created": RFC3339.string(r.createdAt), "reasons": r.reasons,
                    "key": csr.flatMap { try? PublicKey(spkiDER: $0.subjectPublicKeyInfo).keyType.description } ?? "unreadable",
                    "signatureValid": csr?.isSignatureValid ?? false]
        }
        data["decided"] = decided.reversed().map { ["id": $0.id, "subject": $0.subject, "status": $0.status.rawValue, "by": $0.decidedBy ?? "",
                                                     "at": $0.decidedAt.map(RFC3339.string) ?? ""] }
        return html("requests", data)
    }

    func decide(_ id: String, approve: Bool, _ session: DashboardSessions.Active, _ form: [String: String]) async throws -> Response {
        let actor = "token:\(session.record.name)"
        let note = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            if approve {
                let issued = try await env.authority.approve(requestID: id, actor: actor, note: note.isEmpty ? nil : note)
                await insights.invalidate()
                return try await requestsPage(session, flash: "Approved: certificate \(issued.record.serial) issued.")
            }
            guard !note.isEmpty else { return try await requestsPage(session, flash: "Give a reason to reject a request.") }
            _ = try await env.authority.reject(requestID: id, reason: note, actor: actor)
            return try await requestsPage(session, flash: "Rejected request \(id).")
        } catch let error as SigilError {
            return try await requestsPage(session, flash: ([error.message] + error.reasons).joined(separator: " "))
        }
    }

    // MARK: Audit

    func auditPage(_ request: Request, _ session: DashboardSessions.Active) async throws -> Response {
        let q = Self.query(request)
        func value(_ key: String) -> String? { q[key].flatMap { $0.isEmpty ? nil : $0 } }
        let filter = AuditFilter(actor: value("actor"), action: value("action"), since: value("since").flatMap(Self.parseDay),
                                 until: value("until").flatMap(Self.parseDay).map { $0.addingTimeInterval(86_400) },
                                 beforeSeq: value("before").flatMap(Int64.init), limit: 100)
        let entries = try await env.authority.store.read { try await $0.auditEntries(filter) }
        var data = try await common(session, title: "Audit")
        data["entries"] = entries.map(Self.auditRow)
        for key in ["actor", "action", "since", "until"] { data["f_\(key)"] = q[key] ?? "" }
        if entries.count == 100, let last = entries.last {
            let keep = q.filter { $0.key != "before" && !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.encode($0.value))" }
            data["older"] = "/ui/audit?" + (keep + ["before=\(last.seq)"]).joined(separator: "&")
        }
        if let audit = await audit.current() {
            data["audit"] = ["ok": audit.ok, "entries": audit.entries, "problem": audit.problem ?? "", "checkedAt": RFC3339.string(audit.checkedAt)]
        } else {
            data["auditPending"] = true
        }
        return html("audit", data)
    }

    static func auditRow(_ e: AuditEntry) -> [String: Any] {
        let details = (try? JSONSerialization.jsonObject(with: Data(e.details.utf8))) as? [String: Any] ?? [:]
        let text = details.keys.sorted().compactMap { key -> String? in
            let value = "\(details[key] ?? "")"
            return value.isEmpty ? nil : "\(key)=\(value)"
        }.joined(separator: "; ")
        return ["seq": e.seq, "time": RFC3339.string(e.time), "actor": e.actor, "action": e.action, "object": e.object, "details": text]
    }

    // MARK: Compliance

    func compliancePage(_ session: DashboardSessions.Active) async throws -> Response {
        let now = env.clock.now()
        let snapshot = try await insights.snapshot()
        let report = snapshot.compliance
        var data = try await common(session, title: "Compliance")
        data["asOf"] = RFC3339.string(snapshot.computedAt)
        data["policy"] = ComplianceLayout.policy(report.policy)
        data["findings"] = report.results.map { result -> [String: Any] in
            ["id": result.check.rawValue, "title": result.check.title, "severity": result.check.severity.rawValue, "count": result.count,
             "clean": result.count == 0, "controls": result.check.controls.map { ["id": $0.id, "title": $0.title] as [String: Any] },
             "examples": result.findings.map { f -> [String: Any] in
                 var r = row(for: f.certificate, now: now)
                 r["detail"] = f.detail
                 r["places"] = ComplianceLayout.places(f)
                 return r
             },
             "more": max(0, result.count - result.findings.count)]
        }
        let agility = report.agility
        data["agility"] = ["total": agility.total, "vulnerable": agility.quantumVulnerable, "postQuantum": agility.postQuantum,
                           "share": ComplianceLayout.percent(agility.quantumVulnerableShare),
                           "keys": agility.keys.map { ["name": $0.name, "count": $0.count, "vulnerable": $0.quantumVulnerable] as [String: Any] },
                           "signatures": agility.signatures.map { ["name": $0.name, "count": $0.count, "vulnerable": $0.quantumVulnerable] as [String: Any] }] as [String: Any]
        return html("compliance", data)
    }

    // MARK: Formatting

    static func timeLeft(_ date: Date, now: Date) -> String {
        let seconds = date.timeIntervalSince(now)
        let magnitude = abs(seconds)
        let text = magnitude >= 2 * 86_400 ? "\(Int(magnitude / 86_400)) days" : magnitude >= 7200 ? "\(Int(magnitude / 3600)) hours" : "\(Int(magnitude / 60)) minutes"
        return seconds >= 0 ? text : "expired \(text) ago"
    }

    static func shortDate(_ date: Date) -> String {
        let text = RFC3339.string(date)
        return String(text.dropFirst(5).prefix(5))
    }

    static func parseDay(_ text: String) -> Date? {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        var components = DateComponents()
        components.year = parts[0]; components.month = parts[1]; components.day = parts[2]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: components)
    }

    static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~*"))) ?? ""
    }

    /// An extension's name and a readable value (RFC 5280 §4.2).
    static func describe(_ ext: Certificate.Extension) -> (String, String) {
        switch ext.oid {
        case .X509ExtensionID.basicConstraints: return ("Basic constraints", (try? BasicConstraints(ext)).map { "\($0)" } ?? "unreadable")
        case .X509ExtensionID.keyUsage: return ("Key usage", (try? KeyUsage(ext)).map { "\($0)" } ?? "unreadable")
        case .X509ExtensionID.extendedKeyUsage: return ("Extended key usage", (try? ExtendedKeyUsage(ext)).map { "\($0)" } ?? "unreadable")
        case .X509ExtensionID.subjectAlternativeName: return ("Subject alternative names", (try? SubjectAlternativeNames(ext)).map { $0.map { SubjectAltName($0).description }.joined(separator: ", ") } ?? "unreadable")
        case .X509ExtensionID.subjectKeyIdentifier: return ("Subject key identifier", (try? SubjectKeyIdentifier(ext)).map { Hex.colonSeparated($0.keyIdentifier) } ?? "unreadable")
        case .X509ExtensionID.authorityKeyIdentifier:
            return ("Authority key identifier", (try? AuthorityKeyIdentifier(ext)).flatMap { $0.keyIdentifier.map { Hex.colonSeparated($0) } } ?? "unreadable")
        case .X509ExtensionID.authorityInformationAccess: return ("Authority information access", (try? AuthorityInformationAccess(ext)).map { "\($0)" } ?? "unreadable")
        case [2, 5, 29, 31]: return ("CRL distribution points", Self.urls(ext.value))
        case [2, 5, 29, 32]: return ("Certificate policies", Self.printable(ext.value))
        default: return ("\(ext.oid)", "\(ext.value.count) bytes")
        }
    }

    /// The http(s) URLs inside a DER value (distribution points).
    static func urls(_ bytes: ArraySlice<UInt8>) -> String {
        let text = printable(bytes)
        let found = text.components(separatedBy: ", ").compactMap { run -> String? in
            guard let start = run.range(of: "http") else { return nil }
            return String(run[start.lowerBound...])
        }
        return found.isEmpty ? text : found.joined(separator: ", ")
    }

    /// The printable runs of a DER value (URLs and OIDs in text form show through).
    static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        var runs: [String] = []
        var current = ""
        for b in bytes {
            if b >= 0x20 && b < 0x7F { current.append(Character(UnicodeScalar(b))) } else {
                if current.count >= 4 { runs.append(current) }
                current = ""
            }
        }
        if current.count >= 4 { runs.append(current) }
        return runs.isEmpty ? "\(bytes.count) bytes" : runs.joined(separator: ", ")
    }
}
