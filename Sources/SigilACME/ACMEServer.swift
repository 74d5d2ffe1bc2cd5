import Crypto
import Foundation
import Logging
import SigilAuthority
import SigilCore
import SigilStore

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
    private let base: LockedValue<String>
    let logger: Logger

    /// The HTTPS base URL clients use (`https://host:port`), without a trailing slash.
    public var baseURL: String { base.value }

    /// Sets the base URL once the listener's port is known (a listener on port 0).
    public func setBaseURL(_ url: String) {
        base.value = url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    var store: any Store { authority.store }
    var clock: any SigilClock { authority.clock }

    public init(authority: CertificateAuthority, configuration: ACMEConfiguration, nonces: NonceLedger, validator: (any ChallengeValidator)? = nil,
                baseURL: String, logger: Logger) {
        self.authority = authority
        self.configuration = configuration
        self.nonces = nonces
        self.validator = validator ?? NetworkValidator(settings: configuration.validation)
        self.base = LockedValue(baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL)
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
        if provisioner == nil { headers.append(("Cache-Control", "no-store")) }
        return ACMEResponse(status: problem.status, headers: headers, body: encode(problem.json))
    }

    func route(_ p: ACMEProvisioner, _ resource: [String], _ request: ACMERequest) async throws -> ACMEResponse {
        let method = request.method
        switch resource {
        case ["directory"]:
            guard method == "GET" || method == "HEAD" else { throw notAllowed() }
            return json(200, directory(p))
        case ["new-nonce"]:
            // RFC 8555 §7.2: HEAD answers 200, GET 204.
            guard method == "GET" || method == "HEAD" else { throw notAllowed() }
            return ACMEResponse(status: method == "HEAD" ? 200 : 204, headers: [("Cache-Control", "no-store")])
        case let r where r.count == 2 && r[0] == "renewal-info":
            guard method == "GET" || method == "HEAD" else { throw notAllowed() }
            return try await renewalInfo(p, r[1])
        default:
            break
        }
        guard method == "POST" else {
            // RFC 8555 §6.3: every other resource is read with POST-as-GET.
            throw ACMEProblem(.malformed, "use POST (or POST-as-GET) for this resource", status: 405)
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

    private func notAllowed() -> ACMEProblem { ACMEProblem(.malformed, "method not allowed for this resource", status: 405) }

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
            // RFC 8555 §7.3.6: a deactivated account's requests are refused.
            guard found.status == .valid else { throw ACMEProblem(.unauthorized, "the account is \(found.status.rawValue)") }
            key = try JWK(json: try JSONSerialization.jsonObject(with: Data(found.jwk.utf8)))
            account = found
        }
        guard try key.verify(algorithm: jws.algorithm, signature: jws.signature, message: jws.signingInput) else {
            throw ACMEProblem(.malformed, "the JWS signature does not verify")
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

    // MARK: Accounts (RFC 8555 §7.3)

    func accountJSON(_ p: ACMEProvisioner, _ a: ACMEAccountRecord) -> [String: Any] {
        ["status": a.status.rawValue, "contact": a.contact, "termsOfServiceAgreed": a.termsAgreed, "orders": url(p, "acct/\(a.id)/orders"),
         "createdAt": RFC3339.string(a.createdAt)]
    }

    func newAccount(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        let payload = try v.jws.payloadObject()
        let thumbprint = v.key.thumbprint
        // RFC 8555 §7.3.1: the same key again finds the existing account (200, not 201).
        if let existing = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
            return json(200, accountJSON(p, existing), location: accountURL(p, existing.id))
        }
        if payload["onlyReturnExisting"] as? Bool == true {
            throw ACMEProblem(.accountDoesNotExist, "no account exists for this key")
        }
        let contact = try contacts(payload["contact"])
        let agreed = payload["termsOfServiceAgreed"] as? Bool ?? false
        if configuration.termsOfService != nil && !agreed {
            throw ACMEProblem(.malformed, "agree to the terms of service (termsOfServiceAgreed: true) to create an account")
        }
        var eab: ACMEEABKeyRecord?
        if let binding = payload["externalAccountBinding"] {
            eab = try await verifyExternalAccountBinding(binding, accountKey: v.key, url: url(p, "new-account"))
        } else if p.eabRequired {
            throw ACMEProblem(.externalAccountRequired, "this ACME directory requires an External Account Binding (sigil acme eab create)")
        }
        let now = clock.now()
        let account = ACMEAccountRecord(id: randomID(), provisioner: p.name, thumbprint: thumbprint, jwk: v.key.canonicalJSON, status: .valid,
                                        contact: contact, termsAgreed: agreed, eabKeyID: eab?.id, createdAt: now)
        let actor = self.actor(p, account.id)
        let binding = eab
        do {
            try await store.write { session in
                if let binding {
                    // The key binds one account: checked again inside the transaction.
                    guard var key = try await session.eabKey(id: binding.id), key.accountID == nil, key.revokedAt == nil else {
                        throw ACMEProblem(.unauthorized, "the External Account Binding key is already bound to an account")
                    }
                    key.accountID = account.id
                    try await session.updateEABKey(key)
                }
                try await session.insertACMEAccount(account)
                try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "acme.account.created", object: "acme-account:\(account.id)",
                                                         details: ["provisioner": p.name, "thumbprint": thumbprint, "eab": binding?.name ?? "",
                                                                   "contact": contact.joined(separator: ",")]))
            }
        } catch let error as StoreError where error.code == .duplicate {
            // Two requests with the same new key raced: the other one created it.
            if let existing = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
                return json(200, accountJSON(p, existing), location: accountURL(p, existing.id))
            }
            throw error
        }
        return json(201, accountJSON(p, account), location: accountURL(p, account.id))
    }

    /// RFC 8555 §7.3.2: only mailto: contacts, each a plain address.
    func contacts(_ value: Any?) throws -> [String] {
        guard let value else { return [] }
        guard let list = value as? [Any] else { throw ACMEProblem(.malformed, "\"contact\" must be an array of URLs") }
        guard list.count <= 10 else { throw ACMEProblem(.malformed, "at most 10 contacts") }
        return try list.map { item in
            guard let text = item as? String else { throw ACMEProblem(.malformed, "each contact must be a string") }
            guard text.lowercased().hasPrefix("mailto:") else {
                throw ACMEProblem(.unsupportedContact, "only mailto: contacts are supported (got \(text.prefix(100)))")
            }
            let address = String(text.dropFirst(7))
            if address.contains("?") || address.contains(",") || NameRules.emailProblem(address) != nil {
                throw ACMEProblem(.invalidContact, "\(text.prefix(100)) is not a valid email contact")
            }
            return "mailto:\(address)"
        }
    }

    /// RFC 8555 §7.3.4: a JWS over the account key, MACed with the EAB key, for the newAccount URL.
    func verifyExternalAccountBinding(_ binding: Any, accountKey: JWK, url: String) async throws -> ACMEEABKeyRecord {
        guard let object = binding as? [String: Any], let protectedB64 = object["protected"] as? String,
              let payloadB64 = object["payload"] as? String, let signatureB64 = object["signature"] as? String,
              let headerBytes = Base64URL.decode(protectedB64),
              let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any],
              let payload = Base64URL.decode(payloadB64), let signature = Base64URL.decode(signatureB64) else {
            throw ACMEProblem(.malformed, "externalAccountBinding must be a flattened JWS")
        }
        guard let alg = header["alg"] as? String, ["HS256", "HS384", "HS512"].contains(alg) else {
            throw ACMEProblem(.badSignatureAlgorithm, "externalAccountBinding must use HS256, HS384 or HS512", algorithms: ["HS256", "HS384", "HS512"])
        }
        guard header["nonce"] == nil else { throw ACMEProblem(.malformed, "externalAccountBinding must not carry a nonce") }
        guard header["url"] as? String == url else { throw ACMEProblem(.unauthorized, "externalAccountBinding \"url\" must be the newAccount URL") }
        guard let kid = header["kid"] as? String else { throw ACMEProblem(.malformed, "externalAccountBinding has no \"kid\"") }
        guard let bound = try? JWK(json: try JSONSerialization.jsonObject(with: Data(payload))), bound.thumbprint == accountKey.thumbprint else {
            throw ACMEProblem(.unauthorized, "externalAccountBinding does not bind this account's key")
        }
        guard let key = try await store.read({ try await $0.eabKey(id: kid) }), key.revokedAt == nil, let secret = Base64URL.decode(key.hmacKey) else {
            throw ACMEProblem(.unauthorized, "unknown or revoked External Account Binding key id")
        }
        let input = Array("\(protectedB64).\(payloadB64)".utf8)
        let symmetric = SymmetricKey(data: secret)
        // HMAC.isValidAuthenticationCode compares in constant time.
        let valid: Bool
        switch alg {
        case "HS256": valid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        case "HS384": valid = HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        default: valid = HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        }
        guard valid else { throw ACMEProblem(.unauthorized, "the External Account Binding MAC does not verify") }
        guard key.accountID == nil else { throw ACMEProblem(.unauthorized, "the External Account Binding key is already bound to an account") }
        return key
    }

    func account(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard var account = v.account, account.id == id else { throw ACMEProblem(.unauthorized, "the request is signed by another account") }
        if v.jws.isPostAsGet { return json(200, accountJSON(p, account), location: accountURL(p, id)) }
        let payload = try v.jws.payloadObject()
        var changes: [String: String] = [:]
        if let contact = payload["contact"] {
            account.contact = try contacts(contact)
            changes["contact"] = account.contact.joined(separator: ",")
        }
        if let status = payload["status"] {
            // RFC 8555 §7.3.6: the client may only deactivate.
            guard status as? String == "deactivated" else { throw ACMEProblem(.malformed, "an account's status can only be set to \"deactivated\"") }
            account.status = .deactivated
            changes["status"] = "deactivated"
        }
        if !changes.isEmpty {
            let updated = account
            let changes = changes
            let now = clock.now()
            try await store.write { session in
                try await session.updateACMEAccount(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, id), action: updated.status == .deactivated ? "acme.account.deactivated" : "acme.account.updated",
                                                         object: "acme-account:\(id)", details: changes))
            }
        }
        return json(200, accountJSON(p, account), location: accountURL(p, id))
    }

    func accountOrders(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard v.account?.id == id else { throw ACMEProblem(.unauthorized, "the request is signed by another account") }
        let ids = try await store.read { try await $0.acmeOrderIDs(account: id, limit: 1000) }
        return json(200, ["orders": ids.map { orderURL(p, $0) }])
    }

    /// RFC 8555 §7.3.5: the outer JWS is signed by the old key, the inner by the new one.
    func keyChange(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        guard var account = v.account else { throw ACMEProblem(.unauthorized, "keyChange must be signed by the account") }
        let inner = try FlattenedJWS(object: try v.jws.payloadObject())
        guard let newKey = inner.jwk else { throw ACMEProblem(.malformed, "the inner JWS of a key change must carry the new key as \"jwk\"") }
        guard inner.url == v.jws.url else { throw ACMEProblem(.malformed, "the inner JWS \"url\" must equal the outer one") }
        guard try newKey.verify(algorithm: inner.algorithm, signature: inner.signature, message: inner.signingInput) else {
            throw ACMEProblem(.malformed, "the inner JWS signature does not verify with the new key")
        }
        let body = try inner.payloadObject()
        guard body["account"] as? String == accountURL(p, account.id) else {
            throw ACMEProblem(.malformed, "the key change names another account")
        }
        guard let old = body["oldKey"], (try? JWK(json: old))?.thumbprint == account.thumbprint else {
            throw ACMEProblem(.malformed, "\"oldKey\" is not the account's current key")
        }
        let thumbprint = newKey.thumbprint
        if let other = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
            var problem = ACMEProblem(.malformed, "another account already uses the new key", status: 409)
            problem.location = accountURL(p, other.id)
            throw problem
        }
        let previous = account.thumbprint
        account.thumbprint = thumbprint
        account.jwk = newKey.canonicalJSON
        let updated = account
        let now = clock.now()
        do {
            try await store.write { session in
                try await session.updateACMEAccount(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, updated.id), action: "acme.account.key_changed",
                                                         object: "acme-account:\(updated.id)", details: ["old_thumbprint": previous, "new_thumbprint": thumbprint]))
            }
        } catch let error as StoreError where error.code == .duplicate {
            throw ACMEProblem(.malformed, "another account already uses the new key", status: 409)
        }
        return json(200, accountJSON(p, account), location: accountURL(p, account.id))
    }

    // MARK: Orders (RFC 8555 §7.4)

    func newOrder(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "newOrder must be signed by an account") }
        let payload = try v.jws.payloadObject()
        guard let list = payload["identifiers"] as? [Any], !list.isEmpty else {
            throw ACMEProblem(.malformed, "\"identifiers\" must be a non-empty array")
        }
        guard list.count <= 100 else { throw ACMEProblem(.rejectedIdentifier, "an order may name at most 100 identifiers") }
        if payload["notBefore"] != nil || payload["notAfter"] != nil {
            throw ACMEProblem(.malformed, "notBefore and notAfter are not supported; choose a profile (see the directory's meta.profiles)")
        }
        let profileName = (payload["profile"] as? String) ?? p.defaultProfile
        guard p.profiles[profileName] != nil else {
            throw ACMEProblem(.invalidProfile, "profile '\(profileName.prefix(64))' is not offered; this directory offers \(p.profiles.keys.sorted().joined(separator: ", "))")
        }
        var eabPatterns: [NamePattern] = []
        if let eabID = account.eabKeyID, let key = try await store.read({ try await $0.eabKey(id: eabID) }) {
            eabPatterns = key.allowedNames.compactMap { try? NamePattern($0) }
        }
        var identifiers: [ACMEIdentifier] = []
        var rejected: [ACMEStoredSubproblem] = []
        for item in list {
            guard let object = item as? [String: Any], let type = object["type"] as? String, let value = object["value"] as? String else {
                throw ACMEProblem(.malformed, "each identifier needs a \"type\" and a \"value\" string")
            }
            let identifier: ACMEIdentifier
            switch type {
            case "dns":
                identifier = ACMEIdentifier(type: "dns", value: value.lowercased())
                if let problem = NameRules.dnsNameProblem(identifier.value) {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type, detail: problem, identifier: identifier))
                    continue
                }
                if identifier.value.hasPrefix("*.") && !p.challengeTypes.contains("dns-01") {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                         detail: "wildcards need dns-01, which this directory does not offer", identifier: identifier))
                    continue
                }
            case "ip":
                // RFC 8738 §3: the textual form; stored in its canonical form.
                guard let bytes = NameRules.parseIPAddress(value) else {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.malformed, "").type, detail: "'\(value.prefix(64))' is not an IP address",
                                                         identifier: ACMEIdentifier(type: type, value: value)))
                    continue
                }
                identifier = ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress(bytes))
            default:
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.unsupportedIdentifier, "").type,
                                                     detail: "identifier type '\(type.prefix(32))' is not supported (dns and ip are)", identifier: ACMEIdentifier(type: type, value: value)))
                continue
            }
            let name: SubjectAltName = identifier.type == "ip" ? .ip(NameRules.parseIPAddress(identifier.value) ?? []) : .dns(identifier.value)
            if !p.allowedNames.isEmpty && !p.allowedNames.contains(where: { $0.matches(name) }) {
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                     detail: "\(identifier.value) is not allowed by ACME directory '\(p.name)'", identifier: identifier))
                continue
            }
            if !eabPatterns.isEmpty && !eabPatterns.contains(where: { $0.matches(name) }) {
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                     detail: "\(identifier.value) is not allowed for this account's external binding", identifier: identifier))
                continue
            }
            if !identifiers.contains(identifier) { identifiers.append(identifier) }
        }
        if !rejected.isEmpty {
            let kind: ACMEProblem.Kind = rejected.count == 1 ? (ACMEProblem.Kind(rawValue: String(rejected[0].type.split(separator: ":").last ?? "")) ?? .rejectedIdentifier) : .rejectedIdentifier
            throw ACMEProblem(kind, rejected.count == 1 ? rejected[0].detail : "\(rejected.count) identifiers cannot be certified", subproblems: rejected)
        }
        let now = clock.now()
        // Rate limits, counted in the database so every node sees them.
        let hourAgo = now.addingTimeInterval(-3600)
        let limits = configuration.rateLimits
        let perAccount = try await store.read { try await $0.countACMEOrders(account: account.id, since: hourAgo) }
        if perAccount >= limits.ordersPerAccountPerHour {
            throw ACMEProblem(.rateLimited, "too many new orders for this account: \(limits.ordersPerAccountPerHour) per hour", retryAfter: 3600)
        }
        for identifier in identifiers {
            let count = try await store.read { try await $0.countACMEOrders(name: identifier.value, since: hourAgo) }
            if count >= limits.ordersPerNamePerHour {
                throw ACMEProblem(.rateLimited, "too many new orders for \(identifier.value): \(limits.ordersPerNamePerHour) per hour",
                                  subproblems: [ACMEStoredSubproblem(type: ACMEProblem(.rateLimited, "").type, detail: "limit reached", identifier: identifier)],
                                  retryAfter: 3600)
            }
        }
        let replaces = try await checkReplaces(payload["replaces"], account: account, identifiers: identifiers)
        // Authorizations: a valid one of the same account is reused (RFC 8555 §7.1.4), otherwise a new pending one.
        var authorizations: [ACMEAuthorizationRecord] = []
        var fresh: [ACMEAuthorizationRecord] = []
        for identifier in identifiers {
            let wildcard = identifier.type == "dns" && identifier.value.hasPrefix("*.")
            let base = ACMEIdentifier(type: identifier.type, value: wildcard ? String(identifier.value.dropFirst(2)) : identifier.value)
            let lookup = "\(identifier.type):\(identifier.value)"
            if let reused = try await store.read({ try await $0.validACMEAuthorization(account: account.id, lookup: lookup, now: now) }) {
                authorizations.append(reused)
                continue
            }
            let types = wildcard ? ["dns-01"] : p.challengeTypes.filter { identifier.type == "dns" || $0 != "dns-01" }
            let authz = ACMEAuthorizationRecord(
                id: randomID(), accountID: account.id, provisioner: p.name, identifier: base, wildcard: wildcard, status: .pending,
                expires: now.addingTimeInterval(configuration.orderLifetime),
                challenges: types.map { ACMEChallengeRecord(id: randomID(8), type: $0, token: randomID(32), status: .pending) }, createdAt: now)
            authorizations.append(authz)
            fresh.append(authz)
        }
        let expires = authorizations.map(\.expires).reduce(now.addingTimeInterval(configuration.orderLifetime), min)
        let order = ACMEOrderRecord(
            id: randomID(), accountID: account.id, provisioner: p.name, status: authorizations.allSatisfy { $0.status == .valid } ? .ready : .pending,
            identifiers: identifiers, profile: profileName, expires: expires, authorizationIDs: authorizations.map(\.id), replaces: replaces, createdAt: now)
        let newAuthorizations = fresh, named = identifiers
        try await store.write { session in
            for authz in newAuthorizations { try await session.insertACMEAuthorization(authz) }
            try await session.insertACMEOrder(order)
            try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, account.id), action: "acme.order.created", object: "acme-order:\(order.id)",
                                                     details: ["identifiers": named.map(\.description).joined(separator: ","), "profile": profileName,
                                                               "replaces": replaces ?? ""]))
        }
        return json(201, orderJSON(p, order), location: orderURL(p, order.id))
    }

    /// RFC 9773 §5: `replaces` names a certificate of the same account, sharing an identifier,
    /// not already replaced by another live order.
    func checkReplaces(_ value: Any?, account: ACMEAccountRecord, identifiers: [ACMEIdentifier]) async throws -> String? {
        guard let value else { return nil }
        guard let certID = value as? String else { throw ACMEProblem(.malformed, "\"replaces\" must be a string") }
        let record = try await certificate(ariID: certID)
        guard let orderID = record.requestID?.split(separator: ":").last.map(String.init), record.requestID?.hasPrefix("acme-order:") == true,
              let previous = try await store.read({ try await $0.acmeOrder(id: orderID) }), previous.accountID == account.id else {
            throw ACMEProblem(.unauthorized, "\"replaces\" names a certificate this account did not order")
        }
        guard Set(previous.identifiers).intersection(identifiers).isEmpty == false else {
            throw ACMEProblem(.malformed, "the replaced certificate shares no identifier with this order")
        }
        let others = try await store.read { try await $0.acmeOrders(replacing: certID) }
        if others.contains(where: { $0.status != .invalid && $0.expires > clock.now() || $0.status == .valid }) {
            throw ACMEProblem(.alreadyReplaced, "the certificate \(certID) was already replaced by another order")
        }
        return certID
    }

    func orderJSON(_ p: ACMEProvisioner, _ o: ACMEOrderRecord) -> [String: Any] {
        var object: [String: Any] = [
            "status": o.status.rawValue, "expires": RFC3339.string(o.expires),
            "identifiers": o.identifiers.map { ["type": $0.type, "value": $0.value] },
            "authorizations": o.authorizationIDs.map { authzURL(p, $0) },
            "finalize": url(p, "order/\(o.id)/finalize"), "profile": o.profile,
        ]
        if let fingerprint = o.certificateFingerprint { object["certificate"] = certificateURL(p, fingerprint) }
        if let error = o.error { object["error"] = error.json }
        if let replaces = o.replaces { object["replaces"] = replaces }
        return object
    }

    /// An order's status follows its authorizations (RFC 8555 §7.1.6): derived on every read.
    func current(_ order: ACMEOrderRecord) async throws -> ACMEOrderRecord {
        guard order.status == .pending || order.status == .ready else { return order }
        let now = clock.now()
        var order = order
        let authorizationIDs = order.authorizationIDs
        if order.expires <= now {
            order.status = .invalid
            order.error = ACMEProblem(.malformed, "the order expired before it was finalized").stored
            return order
        }
        let authorizations = try await store.read { session in
            var found: [ACMEAuthorizationRecord] = []
            for id in authorizationIDs { if let a = try await session.acmeAuthorization(id: id) { found.append(a) } }
            return found
        }
        var allValid = authorizations.count == order.authorizationIDs.count
        for authz in authorizations {
            let status = effectiveStatus(authz, now: now)
            switch status {
            case .valid: continue
            case .pending: allValid = false
            default:
                order.status = .invalid
                let failure = authz.challenges.compactMap(\.error).first
                order.error = ACMEStoredProblem(type: ACMEProblem(.unauthorized, "").type,
                                                detail: "authorization for \(authz.identifier.value) is \(status.rawValue)", status: 403,
                                                subproblems: failure.map { [ACMEStoredSubproblem(type: $0.type, detail: $0.detail, identifier: authz.identifier)] } ?? [])
                return order
            }
        }
        order.status = allValid ? .ready : .pending
        return order
    }

    func effectiveStatus(_ authz: ACMEAuthorizationRecord, now: Date) -> ACMEStatus {
        if (authz.status == .pending || authz.status == .valid) && authz.expires <= now { return .expired }
        return authz.status
    }

    func ownedOrder(_ id: String, _ v: Verified) async throws -> ACMEOrderRecord {
        guard let order = try await store.read({ try await $0.acmeOrder(id: id) }) else {
            throw ACMEProblem(.malformed, "no such order", status: 404)
        }
        guard order.accountID == v.account?.id else { throw ACMEProblem(.unauthorized, "the order belongs to another account") }
        return order
    }

    func order(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard v.jws.isPostAsGet else { throw ACMEProblem(.malformed, "read an order with POST-as-GET (an empty payload)") }
        let order = try await current(try await ownedOrder(id, v))
        var response = json(200, orderJSON(p, order), location: orderURL(p, id))
        if order.status == .processing { response.headers.append(("Retry-After", "1")) }
        return response
    }

    /// RFC 8555 §7.4: the CSR must name exactly the order's identifiers and pass the profile's policy.
    func finalize(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "finalize must be signed by an account") }
        let order = try await current(try await ownedOrder(id, v))
        guard order.status == .ready else {
            throw ACMEProblem(.orderNotReady, "the order is \(order.status.rawValue), not ready: \(order.status == .pending ? "complete its authorizations first" : "it cannot be finalized again")")
        }
        let payload = try v.jws.payloadObject()
        guard let csrText = payload["csr"] as? String, let der = Base64URL.decode(csrText) else {
            throw ACMEProblem(.malformed, "\"csr\" must be the base64url DER of a PKCS#10 request")
        }
        let csr: CertificationRequest
        do {
            csr = try CertificationRequest(derEncoded: der)
        } catch {
            throw ACMEProblem(.badCSR, "the CSR cannot be parsed: \(error)")
        }
        guard csr.isSignatureValid else { throw ACMEProblem(.badCSR, "the CSR signature does not verify") }
        var names = Set<ACMEIdentifier>()
        for name in (try? csr.subjectAltNames()) ?? [] {
            switch name {
            case .dns(let d): names.insert(ACMEIdentifier(type: "dns", value: d.lowercased()))
            case .ip(let bytes): names.insert(ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress(bytes)))
            default: throw ACMEProblem(.badCSR, "the CSR asks for \(name.description), which an ACME order cannot authorize")
            }
        }
        for cn in csr.subject.values(of: .commonName) {
            let lowered = cn.lowercased()
            let asIP = NameRules.parseIPAddress(lowered).map { ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress($0)) }
            names.insert(asIP ?? ACMEIdentifier(type: "dns", value: lowered))
        }
        let wanted = Set(order.identifiers)
        guard names == wanted else {
            let extra = names.subtracting(wanted).map(\.value).sorted()
            let missing = wanted.subtracting(names).map(\.value).sorted()
            var parts: [String] = []
            if !extra.isEmpty { parts.append("names \(extra.joined(separator: ", ")) that the order does not") }
            if !missing.isEmpty { parts.append("lacks \(missing.joined(separator: ", ")) that the order names") }
            throw ACMEProblem(.badCSR, "the CSR must name exactly the order's identifiers; it \(parts.joined(separator: " and "))")
        }
        // RFC 8555 §11.1: the certificate key must not be the account key.
        if let csrKey = try? PublicKey(spkiDER: csr.subjectPublicKeyInfo), let accountKey = try? v.key.publicKey(), csrKey == accountKey {
            throw ACMEProblem(.badCSR, "the certificate key must differ from the account key")
        }
        guard let mapping = p.profiles[order.profile] else { throw ACMEProblem(.invalidProfile, "profile '\(order.profile)' is no longer offered") }
        var request = IssuanceRequest(csr: csr, profile: mapping.profile, issuer: p.issuer, days: mapping.days, requester: actor(p, account.id),
                                      tags: ["acme", p.name])
        request.requestID = "acme-order:\(order.id)"
        request.refuseApproval = true
        request.inTransaction = { session, record in
            // Two finalize requests may race: only the first may mark the order valid.
            guard var stored = try await session.acmeOrder(id: id), stored.certificateFingerprint == nil,
                  stored.status == .pending || stored.status == .ready else {
                throw ACMEProblem(.orderNotReady, "the order was finalized by another request")
            }
            stored.status = .valid
            stored.certificateFingerprint = record.fingerprint
            try await session.updateACMEOrder(stored)
        }
        do {
            _ = try await authority.submit(request)
        } catch let error as SigilError where error.kind == .policyViolation || error.kind == .badInput || error.kind == .unsupported {
            let reasons = error.reasons.isEmpty ? [error.message] : error.reasons
            let problem = ACMEProblem(.badCSR, "\(error.message) \(reasons.joined(separator: "; "))")
            var failed = order
            failed.status = .invalid
            failed.error = problem.stored
            let stored = failed
            try await store.write { try await $0.updateACMEOrder(stored) }
            throw problem
        }
        guard let done = try await store.read({ try await $0.acmeOrder(id: id) }) else { throw ACMEProblem(.serverInternal, "the order vanished") }
        return json(200, orderJSON(p, done), location: orderURL(p, id))
    }

    // MARK: Authorizations and challenges (RFC 8555 §7.5)

    func ownedAuthorization(_ id: String, _ v: Verified) async throws -> ACMEAuthorizationRecord {
        guard let authz = try await store.read({ try await $0.acmeAuthorization(id: id) }) else {
            throw ACMEProblem(.malformed, "no such authorization", status: 404)
        }
        guard authz.accountID == v.account?.id else { throw ACMEProblem(.unauthorized, "the authorization belongs to another account") }
        return authz
    }

    func authorizationJSON(_ p: ACMEProvisioner, _ a: ACMEAuthorizationRecord) -> [String: Any] {
        var object: [String: Any] = [
            "identifier": ["type": a.identifier.type, "value": a.identifier.value],
            "status": effectiveStatus(a, now: clock.now()).rawValue, "expires": RFC3339.string(a.expires),
            "challenges": a.challenges.map { challengeJSON(p, a, $0) },
        ]
        if a.wildcard { object["wildcard"] = true }
        return object
    }

    func challengeJSON(_ p: ACMEProvisioner, _ a: ACMEAuthorizationRecord, _ c: ACMEChallengeRecord) -> [String: Any] {
        var object: [String: Any] = ["type": c.type, "url": challengeURL(p, a.id, c.id), "status": c.status.rawValue, "token": c.token]
        if let validated = c.validated { object["validated"] = RFC3339.string(validated) }
        if let error = c.error { object["error"] = error.json }
        return object
    }

    func authorization(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        var authz = try await ownedAuthorization(id, v)
        if !v.jws.isPostAsGet {
            // RFC 8555 §7.5.2: the client may deactivate a pending or valid authorization.
            let payload = try v.jws.payloadObject()
            guard payload["status"] as? String == "deactivated" else { throw ACMEProblem(.malformed, "an authorization's status can only be set to \"deactivated\"") }
            let status = effectiveStatus(authz, now: clock.now())
            guard status == .pending || status == .valid else { throw ACMEProblem(.malformed, "the authorization is \(status.rawValue) and cannot be deactivated") }
            authz.status = .deactivated
            let updated = authz
            let now = clock.now()
            try await store.write { session in
                try await session.updateACMEAuthorization(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, updated.accountID), action: "acme.authorization.deactivated",
                                                         object: "acme-authz:\(id)", details: ["identifier": updated.identifier.description]))
            }
        }
        var response = json(200, authorizationJSON(p, authz))
        if effectiveStatus(authz, now: clock.now()) == .pending && authz.challenges.contains(where: { $0.status == .processing }) {
            response.headers.append(("Retry-After", "1"))
        }
        return response
    }

    func challenge(_ p: ACMEProvisioner, _ authzID: String, _ challengeID: String, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "challenges must be answered by an account") }
        let authz = try await ownedAuthorization(authzID, v)
        guard authz.challenges.contains(where: { $0.id == challengeID }) else { throw ACMEProblem(.malformed, "no such challenge", status: 404) }
        if !v.jws.isPostAsGet {
            // RFC 8555 §7.5.1: the client says it is ready with an empty JSON object.
            _ = try v.jws.payloadObject() as [String: Any]?
            let now = clock.now()
            let started = try await store.write { session -> Bool in
                guard var stored = try await session.acmeAuthorization(id: authzID), self.effectiveStatus(stored, now: now) == .pending,
                      let index = stored.challenges.firstIndex(where: { $0.id == challengeID }), stored.challenges[index].status == .pending,
                      !stored.challenges.contains(where: { $0.status == .processing }) else { return false }
                stored.challenges[index].status = .processing
                try await session.updateACMEAuthorization(stored)
                return true
            }
            if started {
                let task = Task { await self.runValidation(p, authzID: authzID, challengeID: challengeID, thumbprint: account.thumbprint) }
                // Answer with the result when validation is quick (it usually is), so clients need not poll.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await task.value }
                    group.addTask { try? await Task.sleep(nanoseconds: 3_000_000_000) }
                    await group.next()
                    group.cancelAll()
                }
            }
        }
        guard let latest = try await store.read({ try await $0.acmeAuthorization(id: authzID) }),
              let current = latest.challenges.first(where: { $0.id == challengeID }) else {
            throw ACMEProblem(.malformed, "no such challenge", status: 404)
        }
        var response = json(200, challengeJSON(p, latest, current))
        response.headers.append(("Link", "<\(authzURL(p, authzID))>;rel=\"up\""))
        if current.status == .processing { response.headers.append(("Retry-After", "1")) }
        return response
    }

    /// Validates one challenge and records the outcome on the challenge and its authorization.
    func runValidation(_ p: ACMEProvisioner, authzID: String, challengeID: String, thumbprint: String) async {
        do {
            guard let authz = try await store.read({ try await $0.acmeAuthorization(id: authzID) }),
                  let challenge = authz.challenges.first(where: { $0.id == challengeID }) else { return }
            // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)).
            let keyAuthorization = "\(challenge.token).\(thumbprint)"
            var failure: ACMEProblem?
            if !configuration.insecureSkipValidation {
                do {
                    try await validator.validate(type: challenge.type, identifier: authz.identifier, token: challenge.token, keyAuthorization: keyAuthorization)
                } catch {
                    failure = error
                }
            }
            let now = clock.now()
            let reuse = configuration.authorizationReuse
            let outcome = failure
            try await store.write { session in
                guard var stored = try await session.acmeAuthorization(id: authzID),
                      let index = stored.challenges.firstIndex(where: { $0.id == challengeID }) else { return }
                if let outcome {
                    stored.challenges[index].status = .invalid
                    stored.challenges[index].error = outcome.stored
                    stored.status = .invalid
                } else {
                    stored.challenges[index].status = .valid
                    stored.challenges[index].validated = now
                    stored.status = .valid
                    stored.expires = now.addingTimeInterval(reuse)
                }
                try await session.updateACMEAuthorization(stored)
                try await session.appendAudit(AuditDraft(
                    time: now, actor: self.actor(p, stored.accountID), action: outcome == nil ? "acme.challenge.valid" : "acme.challenge.invalid",
                    object: "acme-authz:\(authzID)",
                    details: ["identifier": stored.identifier.description, "type": stored.challenges[index].type, "error": outcome?.detail ?? ""]))
            }
        } catch {
            logger.error("recording a challenge result failed", metadata: ["authz": .string(authzID), "error": .string(String(describing: error))])
        }
    }

    // MARK: Certificates (RFC 8555 §7.4.2, §7.6)

    func certificate(_ p: ACMEProvisioner, _ fingerprint: String, alternate: Int?, _ v: Verified) async throws -> ACMEResponse {
        guard v.jws.isPostAsGet else { throw ACMEProblem(.malformed, "download a certificate with POST-as-GET") }
        guard let record = try await store.read({ try await $0.certificate(fingerprint: fingerprint.lowercased()) }) else {
            throw ACMEProblem(.malformed, "no such certificate", status: 404)
        }
        guard try await orderAccount(of: record) == v.account?.id else { throw ACMEProblem(.unauthorized, "the certificate belongs to another account") }
        let chain = try await authority.chain(issuer: record.issuer)
        let withoutRoot = chain.filter { !$0.isSelfIssued }
        var pem = record.pem.hasSuffix("\n") ? record.pem : record.pem + "\n"
        var headers: [(String, String)] = [("Content-Type", "application/pem-certificate-chain")]
        switch alternate {
        case nil:
            for c in withoutRoot { pem += c.pemString }
            // RFC 8555 §7.4.2: other chains are offered as rel="alternate".
            if withoutRoot.count != chain.count { headers.append(("Link", "<\(certificateURL(p, record.fingerprint))/1>;rel=\"alternate\"")) }
        case 1 where withoutRoot.count != chain.count:
            for c in chain { pem += c.pemString }
            headers.append(("Link", "<\(certificateURL(p, record.fingerprint))>;rel=\"alternate\""))
        default:
            throw ACMEProblem(.malformed, "no such certificate chain", status: 404)
        }
        return ACMEResponse(status: 200, headers: headers, body: Array(pem.utf8))
    }

    /// The account whose order produced a certificate, if ACME issued it.
    func orderAccount(of record: CertificateRecord) async throws -> String? {
        guard let requestID = record.requestID, requestID.hasPrefix("acme-order:") else { return nil }
        let orderID = String(requestID.dropFirst("acme-order:".count))
        return try await store.read { try await $0.acmeOrder(id: orderID) }?.accountID
    }

    /// RFC 8555 §7.6: by the account that ordered it, an account authorized for all its names,
    /// or a request signed by the certificate's own key.
    func revokeCertificate(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        let payload = try v.jws.payloadObject()
        guard let text = payload["certificate"] as? String, let der = Base64URL.decode(text),
              let certificate = try? X509Certificate(derEncoded: der) else {
            throw ACMEProblem(.malformed, "\"certificate\" must be the base64url DER of a certificate")
        }
        let reasonCode = payload["reason"] as? Int ?? 0
        // RFC 8555 §7.6 with RFC 5280 §5.3.1: the reasons a subscriber may give.
        guard [0, 1, 3, 4, 5, 9].contains(reasonCode), let reason = RevocationReason(rawValue: reasonCode) else {
            throw ACMEProblem(.badRevocationReason, "reason \(reasonCode) is not allowed; use 0, 1, 3, 4, 5 or 9")
        }
        guard let record = try await store.read({ try await $0.certificate(fingerprint: certificate.sha256Fingerprint) }) else {
            throw ACMEProblem(.malformed, "this CA did not issue that certificate", status: 404)
        }
        let actor: String
        if let account = v.account {
            var allowed = try await orderAccount(of: record) == account.id
            if !allowed {
                allowed = !record.sans.isEmpty
                for name in record.sans {
                    let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { allowed = false; break }
                    let lookup = "\(parts[0].lowercased() == "ip" ? "ip" : "dns"):\(parts[1].lowercased())"
                    if try await store.read({ try await $0.validACMEAuthorization(account: account.id, lookup: lookup, now: self.clock.now()) }) == nil {
                        allowed = false
                        break
                    }
                }
            }
            guard allowed else { throw ACMEProblem(.unauthorized, "this account neither ordered the certificate nor holds authorizations for all its names") }
            actor = self.actor(p, account.id)
        } else {
            guard try v.key.publicKey().derBytes == certificate.subjectPublicKeyInfo else {
                throw ACMEProblem(.unauthorized, "the request is signed by neither an account nor the certificate's key")
            }
            actor = "acme:\(p.name)/certificate-key"
        }
        if record.storedStatus == .revoked && record.revocationReason != RevocationReason.certificateHold.rawValue {
            throw ACMEProblem(.alreadyRevoked, "the certificate is already revoked")
        }
        do {
            _ = try await authority.revoke(record.fingerprint, reason: reason, actor: actor)
        } catch let error as SigilError where error.kind == .conflict {
            throw ACMEProblem(.alreadyRevoked, error.message)
        }
        return ACMEResponse(status: 200)
    }

    // MARK: Renewal information (RFC 9773)

    /// RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number DER content).
    func certificate(ariID: String) async throws -> CertificateRecord {
        let parts = ariID.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let aki = Base64URL.decode(String(parts[0])), let serial = Base64URL.decode(String(parts[1])), !aki.isEmpty, !serial.isEmpty else {
            throw ACMEProblem(.malformed, "a certificate identifier is base64url(AKI).base64url(serial)")
        }
        let records = try await store.read { try await $0.certificates(serial: Hex.encode(serial)) }
        for record in records {
            if let certificate = try? X509Certificate(pemOrDER: Array(record.pem.utf8)), certificate.authorityKeyIdentifier == aki { return record }
        }
        throw ACMEProblem(.malformed, "no certificate with that identifier", status: 404)
    }

    func renewalInfo(_ p: ACMEProvisioner, _ id: String) async throws -> ACMEResponse {
        let record = try await certificate(ariID: id)
        let now = clock.now()
        let start: Date, end: Date
        if record.storedStatus == .revoked {
            // RFC 9773 §4.2: a window in the past tells the client to renew at once.
            start = now.addingTimeInterval(-7200)
            end = now.addingTimeInterval(-3600)
        } else {
            let lifetime = record.notAfter.timeIntervalSince(record.notBefore)
            start = record.notBefore.addingTimeInterval(lifetime * 2 / 3)
            end = record.notBefore.addingTimeInterval(lifetime * 5 / 6)
        }
        var response = json(200, ["suggestedWindow": ["start": RFC3339.string(start), "end": RFC3339.string(end)]])
        // RFC 9773 §4.3: poll again in about six hours (less for very short-lived certificates).
        let retry = max(60, min(21_600, Int(record.notAfter.timeIntervalSince(record.notBefore) / 12)))
        response.headers.append(("Retry-After", String(retry)))
        response.headers.removeAll { $0.0 == "Cache-Control" }
        response.headers.append(("Cache-Control", "public, max-age=\(retry)"))
        return response
    }

    // MARK: Helpers

    func json(_ status: Int, _ object: [String: Any], location: String? = nil) -> ACMEResponse {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let location { headers.append(("Location", location)) }
        return ACMEResponse(status: status, headers: headers, body: encode(object))
    }

    func encode(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
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

/// A value behind a lock, for the few settings that change after start.
final class LockedValue<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
