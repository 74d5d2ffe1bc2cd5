import Crypto
import Foundation
import NIOHTTP1
import SigilCore

/// Reads base64url text leniently, as key files hold it: surrounding whitespace, padding and
/// the standard alphabet are accepted.
enum B64URL {
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 { Base64URL.encode(bytes) }

    static func decodeLenient(_ text: String) -> [UInt8]? {
        var trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
        while trimmed.hasSuffix("=") { trimmed.removeLast() }
        return Base64URL.decode(trimmed)
    }
}

enum CanonicalJSON {
    static func encode(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }
}

/// An ACME error the server returned (RFC 8555 §6.7), kept apart from transport failures.
public struct ACMEError: Error, CustomStringConvertible, Sendable {
    public var type: String
    public var detail: String
    public var status: Int

    public var description: String { "the ACME server answered \(status): \(detail) (\(type))" }
}

/// The account key: ECDSA P-256 signing ES256 JWS (RFC 7518 §3.4), kept in the state
/// directory (0600) with the account URL, one per directory URL.
struct ACMEAccount {
    let key: P256.Signing.PrivateKey
    var url: String?

    /// RFC 7517 JWK of the public key, members in lexicographic order (RFC 7638 §3.3).
    var jwk: [String: String] {
        let point = Array(key.publicKey.x963Representation)
        return ["crv": "P-256", "kty": "EC", "x": B64URL.encode(point[1...32]), "y": B64URL.encode(point[33...64])]
    }

    /// RFC 7638 thumbprint, used in key authorizations (RFC 8555 §8.1).
    var thumbprint: String {
        let j = jwk
        let text = "{\"crv\":\"\(j["crv"]!)\",\"kty\":\"\(j["kty"]!)\",\"x\":\"\(j["x"]!)\",\"y\":\"\(j["y"]!)\"}"
        return B64URL.encode(SHA256.hash(data: Array(text.utf8)))
    }

    static func load(directory: String, state: StateDirectory) throws -> ACMEAccount {
        let base = "\(state.accounts)/\(Hex.encode(SHA256.hash(data: Array(directory.utf8))).prefix(24))"
        if let pem = AtomicFile.read(base + ".key") {
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
            let url = AtomicFile.read(base + ".url").map { String(decoding: $0, as: UTF8.self) }
            return ACMEAccount(key: key, url: url)
        }
        let key = P256.Signing.PrivateKey()
        try AtomicFile.write(Array(key.pemRepresentation.utf8), to: base + ".key", mode: 0o600)
        return ACMEAccount(key: key, url: nil)
    }

    static func saveURL(_ url: String, directory: String, state: StateDirectory) throws {
        let base = "\(state.accounts)/\(Hex.encode(SHA256.hash(data: Array(directory.utf8))).prefix(24))"
        try AtomicFile.write(Array(url.utf8), to: base + ".url", mode: 0o600)
    }
}

/// An RFC 8555 client for one directory: JWS-signed POSTs with nonce handling
/// (retries on badNonce, §6.5), accounts with External Account Binding (§7.3.4),
/// orders with `replaces` (RFC 9773 §5), http-01 (§8.3), polling with Retry-After
/// (§7.5.1), finalize with a CSR and the certificate download (§7.4.2), and ARI (RFC 9773).
public actor ACMEClient {
    let http: AgentHTTP
    let settings: ACMEAuthority
    let state: StateDirectory
    var account: ACMEAccount
    var directory: [String: Any]?
    var nonce: String?
    /// The longest the client waits for validation or issuance.
    let deadline: TimeInterval

    public init(settings: ACMEAuthority, state: StateDirectory, deadline: TimeInterval = 300) throws {
        self.settings = settings
        self.state = state
        // The account first: an HTTP client must be shut down once made.
        self.account = try ACMEAccount.load(directory: settings.directory, state: state)
        self.http = try AgentHTTP(caBundle: settings.caBundle)
        self.deadline = deadline
    }

    public func shutdown() async { await http.shutdown() }

    // MARK: Directory and nonces (RFC 8555 §7.1.1, §7.2)

    func resource(_ name: String) async throws -> String {
        if directory == nil {
            let reply = try await http.send(.GET, settings.directory)
            guard reply.status == 200, let object = reply.json() else {
                throw SigilError(.io, "the ACME directory \(settings.directory) answered \(reply.status): \(reply.problemSummary)")
            }
            directory = object
        }
        guard let url = directory?[name] as? String else {
            throw SigilError(.unsupported, "the ACME directory \(settings.directory) offers no \(name)")
        }
        return url
    }

    /// RFC 9773 §4: the directory names a renewalInfo resource when the CA offers ARI.
    public func supportsARI() async -> Bool {
        (try? await resource("renewalInfo")) != nil
    }

    func freshNonce() async throws -> String {
        if let nonce { self.nonce = nil; return nonce }
        let reply = try await http.send(.HEAD, try await resource("newNonce"))
        guard let value = reply.header("Replay-Nonce") else {
            throw SigilError(.io, "the ACME server gave no Replay-Nonce (HTTP \(reply.status))")
        }
        return value
    }

    // MARK: JWS (RFC 8555 §6.2, RFC 7515 flattened JSON)

    func signed(url: String, payload: Any?, useJWK: Bool) async throws -> [UInt8] {
        var protected: [String: Any] = ["alg": "ES256", "nonce": try await freshNonce(), "url": url]
        if useJWK || account.url == nil { protected["jwk"] = account.jwk } else { protected["kid"] = account.url! }
        let protectedB64 = B64URL.encode(CanonicalJSON.encode(protected))
        // POST-as-GET (§6.3) signs an empty payload.
        let payloadB64 = payload.map { B64URL.encode(CanonicalJSON.encode($0)) } ?? ""
        let signature = try account.key.signature(for: Array("\(protectedB64).\(payloadB64)".utf8))
        return CanonicalJSON.encode(["protected": protectedB64, "payload": payloadB64, "signature": B64URL.encode(signature.rawRepresentation)])
    }

    /// How many times a POST is sent in all while the server answers badNonce. More than two:
    /// a server may reject any nonce at random (Pebble rejects 5 % by default), and with one retry
    /// (a POST lost once in 400) an obtain-and-renew of some twenty POSTs fails once in twenty.
    static let badNonceAttempts = 5

    /// A signed POST; retried with the fresh nonce while the server says badNonce (§6.5: the
    /// client "SHOULD retry the request using the new nonce"), up to `badNonceAttempts` in all.
    func post(_ url: String, payload: Any?, useJWK: Bool = false, accept: String? = nil) async throws -> HTTPReply {
        var attempt = 0
        while true {
            attempt += 1
            let body = try await signed(url: url, payload: payload, useJWK: useJWK)
            var headers = [("Content-Type", "application/jose+json")]
            if let accept { headers.append(("Accept", accept)) }
            let reply = try await http.send(.POST, url, headers: headers, body: body)
            if let next = reply.header("Replay-Nonce") { nonce = next }
            if reply.status >= 400 {
                let object = reply.json()
                let type = object?["type"] as? String ?? "about:blank"
                if type == "urn:ietf:params:acme:error:badNonce", attempt < Self.badNonceAttempts { continue }
                throw ACMEError(type: type, detail: (object?["detail"] as? String) ?? reply.problemSummary, status: reply.status)
            }
            return reply
        }
    }

    // MARK: Account (§7.3)

    /// Registers the account once (with EAB when configured) and remembers its URL.
    func ensureAccount() async throws {
        if account.url != nil { return }
        let newAccount = try await resource("newAccount")
        var payload: [String: Any] = ["termsOfServiceAgreed": true]
        if let email = settings.email { payload["contact"] = ["mailto:\(email)"] }
        if let kid = settings.eabKeyID, let file = settings.eabHMACFile {
            guard let text = AtomicFile.read(file), let secret = B64URL.decodeLenient(String(decoding: text, as: UTF8.self)), !secret.isEmpty else {
                throw SigilError.badInput("cannot read the EAB HMAC key from \(file) (expected base64url text)")
            }
            // RFC 8555 §7.3.4: a JWS over the account's JWK, MACed with the CA-issued key.
            let protectedB64 = B64URL.encode(CanonicalJSON.encode(["alg": "HS256", "kid": kid, "url": newAccount]))
            let payloadB64 = B64URL.encode(CanonicalJSON.encode(account.jwk))
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(protectedB64).\(payloadB64)".utf8), using: SymmetricKey(data: secret))
            payload["externalAccountBinding"] = ["protected": protectedB64, "payload": payloadB64, "signature": B64URL.encode(mac)]
        }
        let reply = try await post(newAccount, payload: payload, useJWK: true)
        guard let location = reply.header("Location") else { throw SigilError(.io, "the ACME server created an account but gave no Location") }
        account.url = location
        try ACMEAccount.saveURL(location, directory: settings.directory, state: state)
    }

    // MARK: Issuance (§7.4)

    /// Orders a certificate for `names` with `csr` (DER), answering http-01 with `responder`.
    /// Returns the PEM chain as the server sent it (leaf first).
    public func obtain(names: [String], csr: [UInt8], replaces: String?, responder: any ChallengeSolver) async throws -> String {
        try await ensureAccount()
        let identifiers: [[String: String]] = names.map { NameRules.parseIPAddress($0) != nil ? ["type": "ip", "value": $0] : ["type": "dns", "value": $0] }
        var payload: [String: Any] = ["identifiers": identifiers]
        if let profile = settings.profile { payload["profile"] = profile }
        if let replaces { payload["replaces"] = replaces }
        var reply: HTTPReply
        do {
            reply = try await post(try await resource("newOrder"), payload: payload)
        } catch let error as ACMEError where replaces != nil && (error.type.hasSuffix(":alreadyReplaced") || error.status == 404 || error.type.hasSuffix(":malformed")) {
            // The CA no longer knows the replaced certificate (or it was replaced already): order afresh.
            payload.removeValue(forKey: "replaces")
            reply = try await post(try await resource("newOrder"), payload: payload)
        }
        guard let orderURL = reply.header("Location"), var order = reply.json() else { throw SigilError(.io, "the ACME server's new order has no Location or body") }
        let started = Date()
        for case let authorizationURL as String in order["authorizations"] as? [Any] ?? [] {
            try await authorize(authorizationURL, responder: responder, started: started)
        }
        order = try await poll(orderURL, until: ["ready", "valid"], started: started, what: "order")
        if order["status"] as? String == "ready" {
            guard let finalize = order["finalize"] as? String else { throw SigilError(.io, "the order has no finalize URL") }
            _ = try await post(finalize, payload: ["csr": B64URL.encode(csr)])
            order = try await poll(orderURL, until: ["valid"], started: started, what: "order")
        }
        guard let certificateURL = order["certificate"] as? String else { throw SigilError(.io, "the valid order has no certificate URL") }
        let download = try await post(certificateURL, payload: nil, accept: "application/pem-certificate-chain")
        return download.text
    }

    func authorize(_ url: String, responder: any ChallengeSolver, started: Date) async throws {
        let authorization = try await post(url, payload: nil).json() ?? [:]
        let status = authorization["status"] as? String
        if status == "valid" { return }
        guard status == "pending" else { throw SigilError(.verificationFailed, "authorization \(url) is \(status ?? "unknown")") }
        let challenges = authorization["challenges"] as? [[String: Any]] ?? []
        let identifier = (authorization["identifier"] as? [String: Any])?["value"] as? String ?? ""
        guard let challenge = challenges.first(where: { $0["type"] as? String == responder.challengeType }),
              let token = challenge["token"] as? String, let challengeURL = challenge["url"] as? String else {
            let offered = challenges.compactMap { $0["type"] as? String }.joined(separator: ", ")
            throw SigilError(.unsupported, "the CA offers no \(responder.challengeType) challenge for \(identifier.isEmpty ? "a name" : identifier) (offered: \(offered))")
        }
        // §8.1: the key authorization binds the token to this account's key.
        let keyAuthorization = "\(token).\(account.thumbprint)"
        try await responder.publish(identifier: identifier, token: token, keyAuthorization: keyAuthorization)
        do {
            // §7.5.1: an empty object tells the server to validate.
            _ = try await post(challengeURL, payload: [String: Any]())
            _ = try await poll(url, until: ["valid"], started: started, what: "authorization")
        } catch {
            await responder.withdraw(identifier: identifier, token: token, keyAuthorization: keyAuthorization)
            throw error
        }
        await responder.withdraw(identifier: identifier, token: token, keyAuthorization: keyAuthorization)
    }

    /// POST-as-GET `url` until its status is one of `wanted`, honouring Retry-After (bounded).
    func poll(_ url: String, until wanted: Set<String>, started: Date, what: String) async throws -> [String: Any] {
        var wait: TimeInterval = 0.2
        while true {
            let reply = try await post(url, payload: nil)
            let object = reply.json() ?? [:]
            let status = object["status"] as? String ?? "unknown"
            if wanted.contains(status) { return object }
            if status == "invalid" {
                throw SigilError(.verificationFailed, "the \(what) became invalid: \(ACMEClient.problemText(object))")
            }
            if Date().timeIntervalSince(started) > deadline {
                throw SigilError(.io, "the \(what) is still \(status) after \(Int(deadline)) s")
            }
            let delay = min(reply.retryAfter ?? wait, 10)
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            wait = min(wait * 2, 2)
        }
    }

    static func problemText(_ object: [String: Any]) -> String {
        if let error = object["error"] as? [String: Any] {
            return (error["detail"] as? String) ?? (error["type"] as? String) ?? "no detail"
        }
        for case let challenge as [String: Any] in object["challenges"] as? [Any] ?? [] {
            if let error = challenge["error"] as? [String: Any] { return (error["detail"] as? String) ?? "challenge failed" }
        }
        return "no detail given"
    }

    // MARK: Renewal information (RFC 9773)

    /// RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number DER content).
    public static func certificateID(_ certificate: X509Certificate) -> String? {
        guard let aki = certificate.authorityKeyIdentifier, !aki.isEmpty else { return nil }
        return "\(B64URL.encode(aki)).\(B64URL.encode(certificate.serialNumber))"
    }

    /// The suggested window for `certificate`, or nil when the CA offers no ARI.
    public func renewalWindow(for certificate: X509Certificate) async throws -> RenewalWindow? {
        guard let base = try? await resource("renewalInfo"), let id = ACMEClient.certificateID(certificate) else { return nil }
        let reply = try await http.send(.GET, base.hasSuffix("/") ? base + id : base + "/" + id)
        guard reply.status == 200, let window = reply.json()?["suggestedWindow"] as? [String: Any],
              let start = (window["start"] as? String).flatMap(Timestamp.parse), let end = (window["end"] as? String).flatMap(Timestamp.parse) else {
            if reply.status == 404 { return nil }
            throw SigilError(.io, "renewalInfo answered \(reply.status): \(reply.problemSummary)")
        }
        return RenewalWindow(start: start, end: end, retryAfter: reply.retryAfter)
    }
}
