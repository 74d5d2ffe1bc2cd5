import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SigilACME
import SigilAuthority
import SigilCore
import SigilStore
import X509

/// Everything the API handlers work with.
public struct ServerEnvironment: Sendable {
    public let authority: CertificateAuthority
    public let tokens: AccessTokens
    public let metrics: SigilMetrics
    public let clock: any SigilClock
    let crls: CRLCache
    public let ocsp: OCSPResponder
    /// The ACME server (RFC 8555) under `/acme/{provisioner}/...`; nil: ACME is off.
    public var acme: ACMEServer?

    public init(authority: CertificateAuthority, metrics: SigilMetrics, ocspSigner: OCSPResponder.SignerMode = .ca) {
        self.authority = authority
        self.tokens = AccessTokens(store: authority.store, clock: authority.clock)
        self.metrics = metrics
        self.clock = authority.clock
        self.crls = CRLCache(authority: authority)
        self.ocsp = OCSPResponder(authority: authority, mode: ocspSigner)
    }

    /// Rebuilds due CRLs; `sigil serve` runs this every minute.
    public func refreshRevocationData() async {
        await crls.refreshDue()
    }
}

/// One API route: what it answers, who may call it, and the handler. The table
/// below is the single list that the router registers and that the OpenAPI
/// drift test compares with `openapi.yaml`.
public struct APIRoute: Sendable {
    public typealias Handler = @Sendable (Request, SigilRequestContext, ServerEnvironment) async throws -> Response
    public let method: HTTPRequest.Method
    /// OpenAPI-style path: `/api/v1/certificates/{serial}`.
    public let path: String
    /// nil: public (operations endpoints).
    public let permission: Permission?
    public let handler: Handler
}

public enum APIRoutes {
    public static let all: [APIRoute] = [
        APIRoute(method: .post, path: "/api/v1/certificates", permission: .certificatesCreate, handler: createCertificate),
        APIRoute(method: .get, path: "/api/v1/certificates", permission: .certificatesRead, handler: listCertificates),
        APIRoute(method: .get, path: "/api/v1/certificates/{serial}", permission: .certificatesRead, handler: getCertificate),
        APIRoute(method: .get, path: "/api/v1/certificates/{serial}/pem", permission: .certificatesRead, handler: getCertificatePEM),
        APIRoute(method: .post, path: "/api/v1/certificates/{serial}/revoke", permission: .certificatesRevoke, handler: revokeCertificate),
        APIRoute(method: .post, path: "/api/v1/certificates/{serial}/renew", permission: .certificatesRenew, handler: renewCertificate),
        APIRoute(method: .get, path: "/api/v1/requests", permission: .requestsRead, handler: listRequests),
        APIRoute(method: .get, path: "/api/v1/requests/{id}", permission: .requestsRead, handler: getRequest),
        APIRoute(method: .post, path: "/api/v1/requests/{id}/approve", permission: .requestsDecide, handler: approveRequest),
        APIRoute(method: .post, path: "/api/v1/requests/{id}/reject", permission: .requestsDecide, handler: rejectRequest),
        APIRoute(method: .get, path: "/api/v1/profiles", permission: .catalogRead, handler: listProfiles),
        APIRoute(method: .get, path: "/api/v1/issuers", permission: .catalogRead, handler: listIssuers),
        APIRoute(method: .get, path: "/api/v1/issuers/{name}", permission: .catalogRead, handler: getIssuer),
        APIRoute(method: .get, path: "/api/v1/issuers/{name}/chain", permission: .catalogRead, handler: getIssuerChain),
        APIRoute(method: .get, path: "/api/v1/audit", permission: .auditRead, handler: listAudit),
        APIRoute(method: .get, path: "/api/v1/audit/verify", permission: .auditRead, handler: verifyAudit),
        APIRoute(method: .get, path: "/api/v1/reports/compliance", permission: .auditRead, handler: ComplianceAPI.report),
        APIRoute(method: .get, path: "/api/v1/tokens", permission: .tokensManage, handler: listTokens),
        APIRoute(method: .post, path: "/api/v1/tokens", permission: .tokensManage, handler: createToken),
        APIRoute(method: .delete, path: "/api/v1/tokens/{id}", permission: .tokensManage, handler: revokeToken),
        APIRoute(method: .post, path: "/api/v1/agent/reports", permission: .certificatesRenew, handler: NotificationRoutes.agentReport),
        APIRoute(method: .get, path: "/api/v1/notifications/deliveries", permission: .auditRead, handler: NotificationRoutes.listDeliveries),
    ] + DiscoveryRoutes.all

    // MARK: Certificates

    static func createCertificate(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["csr", "profile", "issuer", "days", "owner", "tags"], required: ["csr", "profile"])
        let csr = try body.csr("csr")
        let identity = context.identity!
        let started = ContinuousClock.now
        let profile = try body.string("profile")
        do {
            let outcome = try await env.authority.submit(IssuanceRequest(
                csr: csr, profile: profile, issuer: try body.optionalString("issuer"), days: try body.optionalInt("days"),
                requester: identity.actor, owner: try body.optionalString("owner"), tags: try body.optionalStrings("tags") ?? [],
                allowedNames: try identity.allowedNames.map { try $0.map(NamePattern.init) }))
            env.metrics.recordIssuance(profile: profile, outcome: outcomeName(outcome), duration: ContinuousClock.now - started)
            switch outcome {
            case .issued(let issued):
                return try json(.created, issuedBody(issued))
            case .pending(let record):
                return try json(.accepted, ["request_id": record.id, "status": "pending"], location: "/api/v1/requests/\(record.id)")
            }
        } catch {
            env.metrics.recordIssuance(profile: profile, outcome: "rejected", duration: ContinuousClock.now - started)
            throw error
        }
    }

    static func outcomeName(_ outcome: IssuanceOutcome) -> String {
        if case .issued = outcome { return "issued" }
        return "pending"
    }

    static func issuedBody(_ issued: IssuedCertificate) -> [String: Any] {
        [
            "serial": issued.record.serial, "fingerprint": issued.record.fingerprint, "certificate": issued.certificate.pemString,
            "chain": issued.chain.map(\.pemString), "not_after": iso(issued.record.notAfter), "modifications": issued.modifications,
        ]
    }

    static func listCertificates(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let q = try Query(request, allowed: ["status", "name", "owner", "issuer", "profile", "source", "expiring_within", "limit", "cursor"])
        let now = env.clock.now()
        var query = CertificateQuery(now: now, limit: try q.int("limit", default: 100, range: 1...1000) + 1)
        if let status = q["status"] {
            guard let parsed = CertificateStatus(rawValue: status) else { throw Problem(.malformedRequest, "status must be active, revoked or expired") }
            query.status = parsed
        }
        if let source = q["source"] {
            guard let parsed = CertificateSource(rawValue: source) else { throw Problem(.malformedRequest, "source must be issued, imported or discovered") }
            query.source = parsed
        }
        query.namePattern = q["name"]
        query.owner = q["owner"]
        query.issuer = q["issuer"]
        query.profile = q["profile"]
        if let within = q["expiring_within"] {
            guard let seconds = try? DurationText.parse(within) else { throw Problem(.malformedRequest, "expiring_within must be a duration such as 30d") }
            query.expiringBefore = now.addingTimeInterval(seconds)
        }
        if let cursor = q["cursor"] { query.after = try Cursor.decode(cursor) }
        let limit = query.limit - 1
        let records = try await env.authority.store.read { [query] in try await $0.certificates(query) }
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last.map { Cursor.encode(notAfter: $0.notAfter, fingerprint: $0.fingerprint) } : nil
        return try encodable(.ok, CertificatePage(items: page.map { CertificateReport($0, now: now) }, nextCursor: next))
    }

    static func getCertificate(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let record = try await env.authority.findCertificate(try context.parameter("serial"))
        return try encodable(.ok, CertificateReport(record, now: env.clock.now()))
    }

    static func getCertificatePEM(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let record = try await env.authority.findCertificate(try context.parameter("serial"))
        var pem = record.pem
        if record.source == .issued, (try? await env.authority.issuer(record.issuer)) != nil {
            pem += try await env.authority.chain(issuer: record.issuer).map(\.pemString).joined()
        }
        return Response(status: .ok, headers: [.contentType: "application/pem-certificate-chain"], body: .init(byteBuffer: ByteBuffer(string: pem)))
    }

    static func revokeCertificate(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["reason", "invalidity_date"], required: [])
        let reason = try RevocationReason(parsing: try body.optionalString("reason") ?? "unspecified")
        var invalidity: Date?
        if let text = try body.optionalString("invalidity_date") {
            guard let date = try? Date(text, strategy: .iso8601) else { throw Problem(.malformedRequest, "invalidity_date must be an RFC 3339 time") }
            invalidity = date
        }
        let record = try await env.authority.revoke(try context.parameter("serial"), reason: reason, invalidityDate: invalidity, actor: context.identity!.actor)
        env.metrics.recordRevocation(reason: reason)
        return try encodable(.ok, CertificateReport(record, now: env.clock.now()))
    }

    /// A new certificate for the same names and profile, from a new CSR (new key).
    static func renewCertificate(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["csr", "days"], required: ["csr"])
        let old = try await env.authority.findCertificate(try context.parameter("serial"))
        guard old.source == .issued, let profile = old.profile, env.authority.configuration.profiles[profile] != nil else {
            throw Problem(.conflict, "certificate \(old.serial) was not issued by Sigil under a known profile; submit a new request instead")
        }
        let csr = try body.csr("csr")
        let requested = Set(try csr.subjectAltNames().map(\.description))
        guard requested == Set(old.sans) else {
            throw Problem(.policyViolation, "a renewal must name exactly the names of certificate \(old.serial)",
                          errors: ["expected \(old.sans.sorted().joined(separator: ", ")), got \(requested.sorted().joined(separator: ", "))"])
        }
        let identity = context.identity!
        let outcome = try await env.authority.submit(IssuanceRequest(
            csr: csr, profile: profile, issuer: old.issuer, days: try body.optionalInt("days"), requester: identity.actor, owner: old.owner,
            tags: old.tags, allowedNames: try identity.allowedNames.map { try $0.map(NamePattern.init) }))
        env.metrics.recordIssuance(profile: profile, outcome: outcomeName(outcome), duration: .zero)
        switch outcome {
        case .issued(let issued):
            var result = issuedBody(issued)
            result["renewed_from"] = old.serial
            return try json(.created, result)
        case .pending(let record):
            return try json(.accepted, ["request_id": record.id, "status": "pending"], location: "/api/v1/requests/\(record.id)")
        }
    }

    // MARK: Requests

    static func listRequests(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let q = try Query(request, allowed: ["status"])
        var status: RequestStatus? = .pending
        if let text = q["status"] {
            if text == "all" { status = nil } else {
                guard let parsed = RequestStatus(rawValue: text) else { throw Problem(.malformedRequest, "status must be pending, issued, rejected or all") }
                status = parsed
            }
        }
        let records = try await env.authority.store.read { [status] in try await $0.requests(status: status) }
        return try encodable(.ok, ["items": records.map(RequestReport.init)])
    }

    static func getRequest(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let id = try context.parameter("id")
        guard let record = try await env.authority.store.read({ try await $0.request(id: id) }) else { throw Problem(.notFound, "no request \(id)") }
        return try encodable(.ok, RequestReport(record: record))
    }

    static func approveRequest(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["note"], required: [])
        let id = try context.parameter("id")
        guard try await env.authority.store.read({ try await $0.request(id: id) }) != nil else { throw Problem(.notFound, "no request \(id)") }
        let issued = try await env.authority.approve(requestID: id, actor: context.identity!.actor, note: try body.optionalString("note"))
        return try json(.created, issuedBody(issued))
    }

    static func rejectRequest(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["reason"], required: ["reason"])
        let id = try context.parameter("id")
        guard try await env.authority.store.read({ try await $0.request(id: id) }) != nil else { throw Problem(.notFound, "no request \(id)") }
        let reason = try body.string("reason")
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw Problem(.malformedRequest, "reason must not be empty") }
        let record = try await env.authority.reject(requestID: id, reason: reason, actor: context.identity!.actor)
        return try encodable(.ok, RequestReport(record: record))
    }

    // MARK: Catalog

    static func listProfiles(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let profiles = env.authority.configuration.profiles.values.sorted { $0.name < $1.name }
        let data = try encoder.encode(["items": profiles])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func listIssuers(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        try encodable(.ok, ["items": try await env.authority.issuers().map(IssuerReport.init)])
    }

    static func getIssuer(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let name = try context.parameter("name")
        guard let record = try await env.authority.store.read({ try await $0.issuer(named: name) }) else { throw Problem(.notFound, "no issuer \(name)") }
        return try encodable(.ok, IssuerReport(record))
    }

    static func getIssuerChain(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let name = try context.parameter("name")
        guard try await env.authority.store.read({ try await $0.issuer(named: name) }) != nil else { throw Problem(.notFound, "no issuer \(name)") }
        let pem = try await env.authority.chain(issuer: name).map(\.pemString).joined()
        return Response(status: .ok, headers: [.contentType: "application/pem-certificate-chain"], body: .init(byteBuffer: ByteBuffer(string: pem)))
    }

    // MARK: Audit

    static func listAudit(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let q = try Query(request, allowed: ["after", "limit", "actor", "action"])
        let after = Int64(try q.int("after", default: 0, range: 0...Int.max))
        let limit = try q.int("limit", default: 100, range: 1...1000)
        let actor = q["actor"]
        let action = q["action"]
        var entries: [AuditEntry] = []
        var cursor = after
        // Filters apply after reading; read pages until the page is full or the log ends.
        while entries.count < limit {
            let from = cursor
            let page = try await env.authority.store.read { try await $0.auditEntries(afterSeq: from, limit: 1000) }
            entries += page.filter { (actor == nil || $0.actor == actor) && (action == nil || $0.action == action) }
            guard let last = page.last, page.count == 1000 else { break }
            cursor = last.seq
        }
        entries = Array(entries.prefix(limit))
        let next: Int64? = entries.count == limit ? entries.last?.seq : nil
        return try encodable(.ok, AuditPage(items: entries.map(AuditEntryReport.init), nextAfter: next))
    }

    static func verifyAudit(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let result = try await env.authority.verifyAudit()
        return try json(.ok, [
            "ok": result.ok, "entries": result.entries, "first_bad_seq": result.firstBadSeq as Any? ?? NSNull(),
            "problem": result.problem as Any? ?? NSNull(), "head_hash": result.headHash,
        ])
    }

    // MARK: Tokens

    static func listTokens(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        try encodable(.ok, ["items": try await env.tokens.list().map { TokenReport(record: $0, token: nil) }])
    }

    static func createToken(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["name", "role", "expires_in", "allowed_names"], required: ["name", "role"])
        guard let role = Role(rawValue: try body.string("role")) else { throw Problem(.malformedRequest, "role must be admin, operator, requester or auditor") }
        var lifetime: TimeInterval?
        if let text = try body.optionalString("expires_in") {
            guard let seconds = try? DurationText.parse(text), seconds > 0 else { throw Problem(.malformedRequest, "expires_in must be a duration such as 30d") }
            lifetime = seconds
        }
        let (record, secret) = try await env.tokens.create(name: try body.string("name"), role: role, expiresIn: lifetime,
                                                           allowedNames: try body.optionalStrings("allowed_names") ?? [], actor: context.identity!.actor)
        return try encodable(.created, TokenReport(record: record, token: secret))
    }

    static func revokeToken(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let id = try context.parameter("id")
        guard try await env.tokens.list().contains(where: { $0.id == id }) else { throw Problem(.notFound, "no token \(id)") }
        let record = try await env.tokens.revoke(id, actor: context.identity!.actor)
        return try encodable(.ok, TokenReport(record: record, token: nil))
    }
}

struct CertificatePage: Encodable {
    var items: [CertificateReport]
    var nextCursor: String?
    enum CodingKeys: String, CodingKey { case items, nextCursor = "next_cursor" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(nextCursor, forKey: .nextCursor)
    }
}

struct AuditPage: Encodable {
    var items: [AuditEntryReport]
    var nextAfter: Int64?
    enum CodingKeys: String, CodingKey { case items, nextAfter = "next_after" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(nextAfter, forKey: .nextAfter)
    }
}

/// Opaque pagination cursors: base64url of `notAfter:fingerprint`.
enum Cursor {
    static func encode(notAfter: Date, fingerprint: String) -> String {
        Data("\(Int64(notAfter.timeIntervalSince1970)):\(fingerprint)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) throws -> (notAfter: Date, fingerprint: String) {
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let decoded = String(data: data, encoding: .utf8),
              let colon = decoded.firstIndex(of: ":"), let seconds = Int64(decoded[..<colon]) else {
            throw Problem(.malformedRequest, "invalid cursor")
        }
        let fingerprint = String(decoded[decoded.index(after: colon)...])
        guard fingerprint.count == 64, fingerprint.allSatisfy(\.isHexDigit) else { throw Problem(.malformedRequest, "invalid cursor") }
        return (Date(timeIntervalSince1970: Double(seconds)), fingerprint)
    }
}

extension DurationText {
    /// A duration in a query string or request body (`30d`, `12h`, `90m`, `45s`, `2w`; a
    /// unit is required), or a 400 problem.
    public static func parse(_ text: String) throws -> TimeInterval {
        guard let seconds = seconds(in: text) else { throw Problem(.malformedRequest, "invalid duration '\(text)'") }
        return seconds
    }
}
