import Crypto
import _CryptoExtras
import Foundation
import SigilACME
import SigilCore

/// An ACME client for tests that talks to `ACMEServer.handle` in process and can
/// forge any part of a JWS (algorithm, nonce, url, key) on purpose.
public final class ACMETestClient: @unchecked Sendable {
    public let server: ACMEServer
    public let provisioner: String
    public var key: PrivateKey
    public var accountURL: String?
    public var nonce: String?

    public init(server: ACMEServer, provisioner: String = "acme", keyType: KeyType = .ecP256) throws {
        self.server = server
        self.provisioner = provisioner
        self.key = try PrivateKey.generate(keyType)
    }

    public func url(_ rest: String) -> String { "\(server.baseURL)/acme/\(provisioner)/\(rest)" }
    public func path(of url: String) -> String { String(url.dropFirst(server.baseURL.count)) }

    /// The public JWK of `key` (RFC 7517 / RFC 7518 §6).
    public static func jwk(_ key: PrivateKey) throws -> [String: Any] {
        func point(_ raw: Data, _ size: Int) -> [String: Any] {
            let bytes = Array(raw.dropFirst())
            return ["x": Base64URL.encode(bytes[0..<size]), "y": Base64URL.encode(bytes[size...])]
        }
        switch key.backing {
        case .p256(let k): return point(k.publicKey.x963Representation, 32).merging(["kty": "EC", "crv": "P-256"]) { a, _ in a }
        case .p384(let k): return point(k.publicKey.x963Representation, 48).merging(["kty": "EC", "crv": "P-384"]) { a, _ in a }
        case .p521(let k): return point(k.publicKey.x963Representation, 66).merging(["kty": "EC", "crv": "P-521"]) { a, _ in a }
        case .rsa(let k):
            let primitives = try k.publicKey.getKeyPrimitives()
            return ["kty": "RSA", "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent)]
        case .ed25519(let k): return ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(k.publicKey.rawRepresentation)]
        default: throw SigilError.unsupported("ACME keys are EC, RSA or Ed25519")
        }
    }

    public static func algorithm(_ key: PrivateKey) -> String {
        switch key.backing {
        case .p256: return "ES256"
        case .p384: return "ES384"
        case .p521: return "ES512"
        case .rsa: return "RS256"
        default: return "EdDSA"
        }
    }

    /// JWS signature bytes as RFC 7518 defines them (raw R||S for ECDSA).
    public static func sign(_ message: [UInt8], with key: PrivateKey) throws -> [UInt8] {
        switch key.backing {
        case .p256(let k): return Array(try k.signature(for: SHA256.hash(data: message)).rawRepresentation)
        case .p384(let k): return Array(try k.signature(for: SHA384.hash(data: message)).rawRepresentation)
        case .p521(let k): return Array(try k.signature(for: SHA512.hash(data: message)).rawRepresentation)
        case .rsa(let k): return Array(try k.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ed25519(let k): return Array(try k.signature(for: message))
        default: throw SigilError.unsupported("ACME keys are EC, RSA or Ed25519")
        }
    }

    public static func encode(_ object: Any) -> String {
        Base64URL.encode(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// A flattened JWS. `payload` nil is POST-as-GET. `header` entries override or remove (NSNull) fields.
    public func jws(url: String, payload: Any?, useJWK: Bool = false, signingKey: PrivateKey? = nil, header: [String: Any] = [:]) throws -> [String: Any] {
        let signer = signingKey ?? key
        var protected: [String: Any] = ["alg": Self.algorithm(signer), "url": url]
        if let nonce { protected["nonce"] = nonce }
        if useJWK || accountURL == nil { protected["jwk"] = try Self.jwk(signer) } else { protected["kid"] = accountURL! }
        for (name, value) in header {
            if value is NSNull { protected[name] = nil } else { protected[name] = value }
        }
        let protectedB64 = Self.encode(protected)
        let payloadB64 = payload.map { $0 as? String == "" ? "" : Self.encode($0) } ?? ""
        let signature = try Self.sign(Array("\(protectedB64).\(payloadB64)".utf8), with: signer)
        return ["protected": protectedB64, "payload": payloadB64, "signature": Base64URL.encode(signature)]
    }

    /// A fresh nonce from newNonce.
    public func freshNonce() async -> String? {
        let response = await server.handle(ACMERequest(method: "HEAD", path: path(of: url("new-nonce")), contentType: nil, body: []))
        return response.header("Replay-Nonce")
    }

    /// POSTs a JWS body (made by `jws` or forged by the caller) and keeps the returned nonce.
    public func post(_ url: String, body: [String: Any], contentType: String = "application/jose+json") async -> ACMEResponse {
        let data = Array(try! JSONSerialization.data(withJSONObject: body))
        let response = await server.handle(ACMERequest(method: "POST", path: path(of: url), contentType: contentType, body: data))
        nonce = response.header("Replay-Nonce")
        return response
    }

    /// Signs and posts with a fresh nonce.
    public func send(_ url: String, payload: Any?, useJWK: Bool = false, header: [String: Any] = [:]) async throws -> ACMEResponse {
        if nonce == nil { nonce = await freshNonce() }
        return await post(url, body: try jws(url: url, payload: payload, useJWK: useJWK, header: header))
    }

    /// Creates (or finds) the account; `eab` is (kid, base64url HMAC key).
    @discardableResult
    public func register(contact: [String] = [], eab: (String, String)? = nil) async throws -> ACMEResponse {
        var payload: [String: Any] = ["termsOfServiceAgreed": true, "contact": contact]
        if let (kid, hmac) = eab { payload["externalAccountBinding"] = try Self.binding(kid: kid, hmacKey: hmac, accountKey: key, url: url("new-account")) }
        let response = try await send(url("new-account"), payload: payload, useJWK: true)
        if response.status == 200 || response.status == 201 { accountURL = response.header("Location") }
        return response
    }

    /// RFC 8555 §7.3.4: the account JWK MACed with the EAB key.
    public static func binding(kid: String, hmacKey: String, accountKey: PrivateKey, url: String) throws -> [String: Any] {
        let protectedB64 = encode(["alg": "HS256", "kid": kid, "url": url])
        let payloadB64 = encode(try jwk(accountKey))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(protectedB64).\(payloadB64)".utf8), using: SymmetricKey(data: Base64URL.decode(hmacKey) ?? []))
        return ["protected": protectedB64, "payload": payloadB64, "signature": Base64URL.encode(Array(mac))]
    }

    public static func json(_ response: ACMEResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }
}

extension ACMEResponse {
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The problem type without the `urn:ietf:params:acme:error:` prefix.
    public var problemType: String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any], let type = object["type"] as? String else { return nil }
        return type.replacingOccurrences(of: "urn:ietf:params:acme:error:", with: "")
    }
}
