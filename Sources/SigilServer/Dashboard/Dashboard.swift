import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import SigilAuthority
import SigilCore
import SigilStore

/// The CLM dashboard served by `sigil serve`: server-rendered HTML (Mustache), charts as
/// SVG made here, one stylesheet, no script and no external asset, so it works air-gapped
/// under a Content-Security-Policy that allows nothing else.
public struct Dashboard: Sendable {
    let env: ServerEnvironment
    let sessions: DashboardSessions
    let library: MustacheLibrary
    let audit: AuditStatusCache
    let insights: InsightsCache
    let stylesheet: ByteBuffer

    /// default-src 'none': no script, no frame, no remote anything; forms post back here only.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    public init(env: ServerEnvironment) throws {
        self.env = env
        self.sessions = DashboardSessions(store: env.authority.store, tokens: env.tokens, clock: env.clock)
        guard let directory = Bundle.module.path(forResource: "dashboard", ofType: nil) else {
            throw SigilError(.internalFailure, "the dashboard templates are missing from the build")
        }
        var library = MustacheLibrary()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() where file.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
            try library.register(text, named: String(file.dropLast(".mustache".count)))
        }
        self.library = library
        self.stylesheet = ByteBuffer(string: try String(contentsOfFile: "\(directory)/sigil.css", encoding: .utf8))
        self.audit = AuditStatusCache(authority: env.authority)
        let insights = InsightsCache(store: env.authority.store, clock: env.clock)
        self.insights = insights
        // The first figures are computed at start, not by the first visitor.
        Task { _ = try? await insights.snapshot() }
    }

    // MARK: Plumbing

    func html(_ template: String, _ data: [String: Any], status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        let body = library.render(data, withTemplate: template) ?? "template \(template) is missing"
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.contentSecurityPolicy, .cacheControl: "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        headers.append(contentsOf: extra)
        return Response(status: .seeOther, headers: headers)
    }

    static func cookies(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2 { result[pair[0]] = pair[1] }
            }
        }
        return result
    }

    /// `application/x-www-form-urlencoded` (or a query string) into a dictionary.
    static func form(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let key = parts.first, !key.isEmpty else { continue }
            result[key] = parts.count > 1 ? parts[1] : ""
        }
        return result
    }

    static func query(_ request: Request) -> [String: String] { form(request.uri.query ?? "") }

    func readForm(_ request: Request) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 256 * 1024)
        return Self.form(String(buffer: body))
    }

    func session(_ request: Request) async throws -> DashboardSessions.Active? {
        guard let secret = Self.cookies(request)[DashboardSessions.cookieName] else { return nil }
        return try await sessions.session(secret: secret)
    }

    /// The fields every signed-in page shares: who, the CSRF token, what the role may do.
    func common(_ session: DashboardSessions.Active, title: String, flash: String? = nil) async throws -> [String: Any] {
        let pending = session.role.allows(.requestsRead) ? try await env.authority.store.read { try await $0.requests(status: .pending).count } : 0
        var data: [String: Any] = [
            "signedIn": true, "user": session.record.name, "role": session.role.rawValue, "csrf": session.record.csrf, "title": title,
            "canRevoke": session.role.allows(.certificatesRevoke), "canRenew": session.role.allows(.certificatesRenew),
            "canDecide": session.role.allows(.requestsDecide), "canSeeRequests": session.role.allows(.requestsRead),
            "canSeeAudit": session.role.allows(.auditRead),
        ]
        if pending > 0 { data["pending"] = pending }
        if let flash { data["flash"] = flash }
        return data
    }

    func forbidden(_ session: DashboardSessions.Active, _ message: String) async throws -> Response {
        var data = try await common(session, title: "Not allowed")
        data["message"] = message
        return html("error", data, status: .forbidden)
    }

    /// A GET page for signed-in users; without a session, the sign-in page.
    func page(_ request: Request, _ permission: Permission, _ body: (DashboardSessions.Active) async throws -> Response) async throws -> Response {
        guard let session = try await session(request) else {
            // A cookie that no longer opens a session (expired, signed out, token revoked) is cleared.
            let stale: HTTPFields = Self.cookies(request)[DashboardSessions.cookieName] == nil ? [:] : [.setCookie: Self.sessionCookie("", maxAge: 0)]
            return redirect("/signin?next=\(request.uri.path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "/")", headers: stale)
        }
        guard session.role.allows(permission) else { return try await forbidden(session, "the \(session.role.rawValue) role may not see this page") }
        return try await body(session)
    }

    /// A state-changing POST: a live session, the session's CSRF token, and the permission.
    func action(_ request: Request, _ permission: Permission,
                _ body: (DashboardSessions.Active, [String: String]) async throws -> Response) async throws -> Response {
        let form = try await readForm(request)
        guard let session = try await session(request) else { return html("error", ["message": "sign in first", "title": "Signed out"], status: .forbidden) }
        guard DashboardSessions.csrfMatches(form["csrf"], session.record.csrf) else {
            return try await forbidden(session, "the form's anti-forgery token is missing or wrong; reload the page and try again")
        }
        guard session.role.allows(permission) else { return try await forbidden(session, "the \(session.role.rawValue) role may not do this") }
        return try await body(session, form)
    }

    static func sessionCookie(_ value: String, maxAge: Int) -> String {
        "\(DashboardSessions.cookieName)=\(value); Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=\(maxAge)"
    }

    // MARK: Routes

    public func register(on router: Router<SigilRequestContext>) {
        router.get("/ui/static/sigil.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                     body: .init(byteBuffer: stylesheet))
        }
        router.get("/signin") { request, _ in try await signInPage(request, error: nil) }
        router.post("/signin") { request, _ in try await signIn(request) }
        router.post("/signout") { request, _ in
            try await action(request, .certificatesRead) { session, _ in
                try await sessions.signOut(session)
                return redirect("/signin", headers: [.setCookie: Self.sessionCookie("", maxAge: 0)])
            }
        }
        router.get("/") { request, _ in try await page(request, .certificatesRead) { try await overview($0) } }
        router.get("/ui/certificates") { request, _ in try await page(request, .certificatesRead) { try await inventory(request, $0) } }
        router.get("/ui/certificates.csv") { request, _ in try await page(request, .certificatesRead) { _ in try await inventoryCSV(request) } }
        router.get("/ui/certificates/{fingerprint}") { request, context in
            try await page(request, .certificatesRead) { try await certificatePage(try context.parameter("fingerprint"), $0) }
        }
        router.get("/ui/certificates/{fingerprint}/pem") { request, context in
            try await page(request, .certificatesRead) { _ in try await certificatePEM(try context.parameter("fingerprint")) }
        }
        router.post("/ui/certificates/{fingerprint}/revoke") { request, context in
            try await action(request, .certificatesRevoke) { try await revoke(try context.parameter("fingerprint"), $0, $1) }
        }
        router.post("/ui/certificates/{fingerprint}/renew") { request, context in
            try await action(request, .certificatesRenew) { try await renew(try context.parameter("fingerprint"), $0, $1) }
        }
        router.post("/ui/certificates/{fingerprint}/ownership") { request, context in
            try await action(request, .certificatesRevoke) { try await ownership(try context.parameter("fingerprint"), $0, $1) }
        }
        router.get("/ui/requests") { request, _ in try await page(request, .requestsRead) { try await requestsPage($0) } }
        router.post("/ui/requests/{id}/approve") { request, context in
            try await action(request, .requestsDecide) { try await decide(try context.parameter("id"), approve: true, $0, $1) }
        }
        router.post("/ui/requests/{id}/reject") { request, context in
            try await action(request, .requestsDecide) { try await decide(try context.parameter("id"), approve: false, $0, $1) }
        }
        router.get("/ui/audit") { request, _ in try await page(request, .auditRead) { try await auditPage(request, $0) } }
        router.post("/ui/audit/verify") { request, _ in
            try await action(request, .auditRead) { _, _ in
                await audit.refresh()
                return redirect("/ui/audit")
            }
        }
        router.get("/ui/compliance") { request, _ in try await page(request, .certificatesRead) { try await compliancePage($0) } }
    }

    // MARK: Sign-in

    func signInPage(_ request: Request, error: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        if error == nil, try await session(request) != nil { return redirect("/") }
        // Double-submit token against login CSRF: the same random value in a cookie and in the form.
        let token = DashboardSessions.random()
        var data: [String: Any] = ["title": "Sign in", "signinToken": token, "next": Self.query(request)["next"] ?? "/"]
        if let error { data["error"] = error }
        return html("signin", data, status: status,
                    headers: [.setCookie: "\(DashboardSessions.signInCookieName)=\(token); Path=/signin; HttpOnly; Secure; SameSite=Strict; Max-Age=600"])
    }

    func signIn(_ request: Request) async throws -> Response {
        let form = try await readForm(request)
        let expected = Self.cookies(request)[DashboardSessions.signInCookieName] ?? ""
        guard !expected.isEmpty, DashboardSessions.csrfMatches(form["signin"], expected) else {
            return try await signInPage(request, error: "the sign-in form expired; try again", status: .forbidden)
        }
        guard let (secret, session) = try await sessions.signIn(token: form["token"] ?? "") else {
            return try await signInPage(request, error: "that token is not valid (wrong, expired or revoked)", status: .unauthorized)
        }
        var next = form["next"] ?? "/"
        // Only a local path: never an open redirect.
        if !next.hasPrefix("/") || next.hasPrefix("//") || next.contains("\\") { next = "/" }
        let maxAge = max(60, Int(session.record.expiresAt.timeIntervalSince(env.clock.now())))
        return redirect(next, headers: [.setCookie: Self.sessionCookie(secret, maxAge: maxAge)])
    }
}

/// The audit chain's verification, run in the background and kept, so no page waits for a
/// full chain walk; a person can ask for a fresh one from the audit page.
actor AuditStatusCache {
    struct Summary: Sendable {
        var ok: Bool
        var entries: Int64
        var problem: String?
        var checkedAt: Date
    }

    let authority: CertificateAuthority
    private(set) var summary: Summary?
    private var running: Task<Void, Never>?

    init(authority: CertificateAuthority) {
        self.authority = authority
    }

    /// The last result; starts a check when there is none or it is older than five minutes.
    func current() -> Summary? {
        if running == nil, summary.map({ Date().timeIntervalSince($0.checkedAt) > 300 }) ?? true {
            running = Task { await self.refresh() }
        }
        return summary
    }

    func refresh() async {
        do {
            let verification = try await authority.verifyAudit()
            summary = Summary(ok: verification.ok, entries: verification.entries,
                              problem: verification.problem.map { "entry \(verification.firstBadSeq ?? 0): \($0)" }, checkedAt: Date())
        } catch {
            summary = Summary(ok: false, entries: 0, problem: "the audit trail could not be read: \(error)", checkedAt: Date())
        }
        running = nil
    }
}

/// The overview's and compliance view's figures: aggregates over the whole inventory,
/// computed off the request path and served while fresh (stale-while-revalidate), so
/// these pages cost the same with 100 or 1,000,000 certificates.
actor InsightsCache {
    struct Snapshot: Sendable {
        var statistics: CertificateStatistics
        /// The compliance engine's report with the default policy, a few findings per check.
        var compliance: ComplianceReport
        var computedAt: Date
    }

    let store: any Store
    let clock: any SigilClock
    /// Older figures are recomputed in the background; the page shows when they were taken.
    let freshness: TimeInterval = 30
    /// Findings the compliance view lists per check (the counts are exact).
    static let examples = 25
    private var current: Snapshot?
    private var refreshing: Task<Void, Never>?

    init(store: any Store, clock: any SigilClock) {
        self.store = store
        self.clock = clock
    }

    func snapshot() async throws -> Snapshot {
        if let current {
            if clock.now().timeIntervalSince(current.computedAt) > freshness, refreshing == nil {
                refreshing = Task { try? await self.compute() }
            }
            return current
        }
        return try await compute()
    }

    /// A local change (a revocation) makes the figures stale at once.
    func invalidate() {
        guard refreshing == nil else { return }
        refreshing = Task { try? await self.compute() }
    }

    @discardableResult
    private func compute() async throws -> Snapshot {
        defer { refreshing = nil }
        let now = clock.now()
        let (statistics, compliance) = try await store.read { s in
            (try await s.certificateStatistics(now: now), try await s.complianceReport(CompliancePolicy(), now: now, examples: Self.examples))
        }
        let snapshot = Snapshot(statistics: statistics, compliance: compliance, computedAt: now)
        current = snapshot
        return snapshot
    }
}
