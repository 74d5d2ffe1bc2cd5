import Crypto
import Foundation
import Logging
import SigilAuthority
import SigilCore
import SigilStore
import Synchronization

/// An HTTP request as the ACME server needs it; the HTTP framework stays outside.
public struct ACMERequest: Sendable {
    public var method: String
    /// The path, starting with `/acme/`.
    public var path: String
    public var contentType: String?
    public var body: [UInt8]

    public init(method: String, path: String, contentType: String?, body: [UInt8]) {
        self.method = method
        self.path = path
        self.contentType = contentType
        self.body = body
    }
}

public struct ACMEResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// RFC 8555 as a domain: resources, JWS authentication, state machines, problems.
/// `handle` turns one request into one response and never throws.
public final class ACMEServer: Sendable {
    public let authority: CertificateAuthority
    public let configuration: ACMEConfiguration
    public let nonces: NonceLedger
    let validator: any ChallengeValidator
    private let base: Mutex<String>
    let logger: Logger

    /// The HTTPS base URL clients use (`https://host:port`), without a trailing slash.
    public var baseURL: String { base.withLock { $0 } }

    /// Sets the base URL once the listener's port is known (a listener on port 0).
    public func setBaseURL(_ url: String) {
        base.withLock { $0 = url.hasSuffix("/") ? String(url.dropLast()) : url }
    }

    var store: any Store { authority.store }
    var clock: any SigilClock { authority.clock }

    public init(authority: CertificateAuthority, configuration: ACMEConfiguration, nonces: NonceLedger, validator: (any ChallengeValidator)? = nil,
                baseURL: String, logger: Logger) {
        self.authority = authority
        self.configuration = configuration
        self.nonces = nonces
        self.validator = validator ?? NetworkValidator(settings: configuration.validation)
        self.base = Mutex(baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL)
        self.logger = logger
    }

    // MARK: URLs

    func url(_ p: ACMEProvisioner, _ rest: String) -> String { "\(baseURL)/acme/\(p.name)/\(rest)" }
    func directoryURL(_ p: ACMEProvisioner) -> String { url(p, "directory") }
    func accountURL(_ p: ACMEProvisioner, _ id: String) -> String { url(p, "acct/\(id)") }
    func orderURL(_ p: ACMEProvisioner, _ id: String) -> String { url(p, "order/\(id)") }
    func authzURL(_ p: ACMEProvisioner, _ id: String) -> String { url(p, "authz/\(id)") }
    func challengeURL(_ p: ACMEProvisioner, _ authz: String, _ id: String) -> String { url(p, "chall/\(authz)/\(id)") }
    func certificateURL(_ p: ACMEProvisioner, _ fingerprint: String) -> String { url(p, "cert/\(fingerprint)") }
    func actor(_ p: ACMEProvisioner, _ accountID: String) -> String { "acme:\(p.name)/\(accountID)" }

    // MARK: Dispatch

    public func handle(_ request: ACMERequest) async -> ACMEResponse {
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // "", "acme", provisioner, resource...
        guard segments.count >= 4, segments[0].isEmpty, segments[1] == "acme", let provisioner = configuration.provisioners[segments[2]] else {
            return problemResponse(ACMEProblem(.malformed, "no such ACME resource", status: 404), provisioner: nil)
        }
        if configuration.insecureSkipValidation {
            logger.warning("ACME challenge validation is OFF (acme.insecure_skip_validation): certificates are issued without proof of control",
                           metadata: ["path": .string(request.path)])
        }
        var response: ACMEResponse
        do {
            response = try await route(provisioner, Array(segments[3...]), request)
        } catch let problem as ACMEProblem {
            response = problemResponse(problem, provisioner: provisioner)
        } catch let error as StoreError where error.code == .unavailable {
            response = problemResponse(ACMEProblem(.serverInternal, "the database is not reachable; try again", status: 503), provisioner: provisioner)
            response.headers.append(("Retry-After", "5"))
        } catch {
            logger.error("ACME request failed", metadata: ["path": .string(request.path), "error": .string(String(describing: error))])
            response = problemResponse(ACMEProblem(.serverInternal, "the server could not complete the request"), provisioner: provisioner)
        }
        return finish(response, provisioner)
    }

    /// A problem found before the request reached the protocol (a body over the size limit),
    /// answered with the same headers as every other response.
    public func reject(_ problem: ACMEProblem, path: String) -> ACMEResponse {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let provisioner = segments.count >= 3 && segments[1] == "acme" ? configuration.provisioners[segments[2]] : nil
        let response = problemResponse(problem, provisioner: provisioner)
        return provisioner.map { finish(response, $0) } ?? response
    }

    private func finish(_ response: ACMEResponse, _ provisioner: ACMEProvisioner) -> ACMEResponse {
        var response = response
        // RFC 8555 §6.5: a fresh nonce on every response; §7.1: the directory as rel="index".
        response.headers.append(("Replay-Nonce", nonces.issue()))
        response.headers.append(("Link", "<\(directoryURL(provisioner))>;rel=\"index\""))
        if !response.headers.contains(where: { $0.0 == "Cache-Control" }) { response.headers.append(("Cache-Control", "no-store")) }
        return response
    }

    private func problemResponse(_ problem: ACMEProblem, provisioner: ACMEProvisioner?) -> ACMEResponse {
        var headers: [(String, String)] = [("Content-Type", "application/problem+json")]
        if let retry = problem.retryAfter { headers.append(("Retry-After", String(retry))) }
        if let location = problem.location { headers.append(("Location", location)) }
        if let allow = problem.allow { headers.append(("Allow", allow)) }
        if provisioner == nil { headers.append(("Cache-Control", "no-store")) }
        return ACMEResponse(status: problem.status, headers: headers, body: encode(problem.json))
    }

    func route(_ p: ACMEProvisioner, _ resource: [String], _ request: ACMERequest) async throws -> ACMEResponse {
        let method = request.method
        switch resource {
        case ["directory"]:
            guard method == "GET" || method == "HEAD" else { throw notAllowed("GET, HEAD") }
            return json(200, directory(p))
        case ["new-nonce"]:
            // RFC 8555 §7.2: HEAD answers 200, GET 204.
            guard method == "GET" || method == "HEAD" else { throw notAllowed("GET, HEAD") }
            return ACMEResponse(status: method == "HEAD" ? 200 : 204, headers: [("Cache-Control", "no-store")])
        case let r where r.count == 2 && r[0] == "renewal-info":
            guard method == "GET" || method == "HEAD" else { throw notAllowed("GET, HEAD") }
            return try await renewalInfo(p, r[1])
        default:
            break
        }
        guard method == "POST" else {
            // RFC 8555 §6.3: every other resource is read with POST-as-GET.
            throw notAllowed("POST", detail: "use POST (or POST-as-GET) for this resource")
        }
        switch resource {
        case ["new-account"]:
            return try await newAccount(p, try await verify(request, p, keys: .jwk))
        case ["new-order"]:
            return try await newOrder(p, try await verify(request, p, keys: .kid))
        case ["revoke-cert"]:
            return try await revokeCertificate(p, try await verify(request, p, keys: .either))
        case ["key-change"]:
            return try await keyChange(p, try await verify(request, p, keys: .kid))
        case let r where r.count == 2 && r[0] == "acct":
            return try await account(p, r[1], try await verify(request, p, keys: .kid))
        case let r where r.count == 3 && r[0] == "acct" && r[2] == "orders":
            return try await accountOrders(p, r[1], try await verify(request, p, keys: .kid))
        case let r where r.count == 2 && r[0] == "order":
            return try await order(p, r[1], try await verify(request, p, keys: .kid))
        case let r where r.count == 3 && r[0] == "order" && r[2] == "finalize":
            return try await finalize(p, r[1], try await verify(request, p, keys: .kid))
        case let r where r.count == 2 && r[0] == "authz":
            return try await authorization(p, r[1], try await verify(request, p, keys: .kid))
        case let r where r.count == 3 && r[0] == "chall":
            return try await challenge(p, r[1], r[2], try await verify(request, p, keys: .kid))
        case let r where (r.count == 2 || r.count == 3) && r[0] == "cert":
            return try await certificate(p, r[1], alternate: r.count == 3 ? Int(r[2]) : nil, try await verify(request, p, keys: .kid))
        default:
            throw ACMEProblem(.malformed, "no such ACME resource", status: 404)
        }
    }

    /// RFC 9110 §15.5.6: a 405 names the methods that are allowed.
    private func notAllowed(_ allow: String, detail: String = "method not allowed for this resource") -> ACMEProblem {
        var problem = ACMEProblem(.malformed, detail, status: 405)
        problem.allow = allow
        return problem
    }

    // MARK: JWS authentication (RFC 8555 §6.2–§6.5)

    enum KeyMode { case jwk, kid, either }

    struct Verified {
        var jws: FlattenedJWS
        /// The account named by `kid`; nil when the request was signed with `jwk`.
        var account: ACMEAccountRecord?
        var key: JWK
    }

    func verify(_ request: ACMERequest, _ p: ACMEProvisioner, keys: KeyMode) async throws -> Verified {
        // RFC 8555 §6.2: the body is application/jose+json.
        guard let type = request.contentType?.lowercased(), type.hasPrefix("application/jose+json") else {
            throw ACMEProblem(.malformed, "Content-Type must be application/jose+json", status: 415)
        }
        let jws = try FlattenedJWS(body: request.body)
        // RFC 8555 §6.4: the "url" header must be the URL the request was sent to.
        guard let url = jws.url else { throw ACMEProblem(.malformed, "the JWS protected header has no \"url\"") }
        let expected = "\(baseURL)\(request.path)"
        guard url == expected else {
            throw ACMEProblem(.unauthorized, "the JWS \"url\" (\(url.prefix(200))) does not match the request URL (\(expected))")
        }
        // RFC 8555 §6.5: a nonce this server issued and nobody used; checked before any lookup.
        guard let nonce = jws.nonce else { throw ACMEProblem(.badNonce, "the JWS protected header has no \"nonce\"") }
        let nonceExpiry = try nonces.check(nonce)
        var account: ACMEAccountRecord?
        let key: JWK
        if let jwk = jws.jwk {
            guard keys != .kid else { throw ACMEProblem(.malformed, "this resource must be signed with the account key named by \"kid\", not \"jwk\"") }
            key = jwk
        } else {
            guard keys != .jwk, let kid = jws.kid else {
                throw ACMEProblem(.malformed, "newAccount must be signed with \"jwk\" (the new account's key), not \"kid\"")
            }
            let prefix = accountURL(p, "")
            guard kid.hasPrefix(prefix) else { throw ACMEProblem(.accountDoesNotExist, "\"kid\" is not an account URL of this ACME directory") }
            let id = String(kid.dropFirst(prefix.count))
            guard let found = try await store.read({ try await $0.acmeAccount(id: id) }), found.provisioner == p.name else {
                throw ACMEProblem(.accountDoesNotExist, "no account at \(kid.prefix(200))")
            }
            key = try JWK(json: try JSONSerialization.jsonObject(with: Data(found.jwk.utf8)))
            account = found
        }
        guard try key.verify(algorithm: jws.algorithm, signature: jws.signature, message: jws.signingInput) else {
            throw ACMEProblem(.malformed, "the JWS signature does not verify")
        }
        // RFC 8555 §7.3.6: a deactivated account's requests are refused with 401 (checked after
        // the signature, so nobody learns an account's state without its key).
        if let account, account.status != .valid {
            throw ACMEProblem(.unauthorized, "the account is \(account.status.rawValue)", status: 401)
        }
        // Only a request that proved its key uses up a nonce.
        try await nonces.redeem(nonce, expires: nonceExpiry)
        return Verified(jws: jws, account: account, key: key)
    }

    // MARK: Directory (RFC 8555 §7.1.1)

    func directory(_ p: ACMEProvisioner) -> [String: Any] {
        var meta: [String: Any] = ["externalAccountRequired": p.eabRequired]
        if let tos = configuration.termsOfService { meta["termsOfService"] = tos }
        if let website = configuration.website { meta["website"] = website }
        if !configuration.caaIdentities.isEmpty { meta["caaIdentities"] = configuration.caaIdentities }
        meta["profiles"] = Dictionary(uniqueKeysWithValues: p.profiles.map { ($0.key, $0.value.description) })
        return [
            "newNonce": url(p, "new-nonce"), "newAccount": url(p, "new-account"), "newOrder": url(p, "new-order"),
            "revokeCert": url(p, "revoke-cert"), "keyChange": url(p, "key-change"),
            // RFC 9773 §4: ACME Renewal Information.
            "renewalInfo": url(p, "renewal-info"),
            "meta": meta,
        ]
    }

    // MARK: Helpers

    func json(_ status: Int, _ object: [String: Any], location: String? = nil) -> ACMEResponse {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let location { headers.append(("Location", location)) }
        return ACMEResponse(status: status, headers: headers, body: encode(object))
    }

    func encode(_ object: [String: Any]) -> [UInt8] {
        JSONText.encode(object)
    }

    func randomID(_ bytes: Int = 12) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Drops redeemed nonces that have expired; the server calls it periodically.
    public func prune() async {
        try? await nonces.prune()
    }
}
