import Crypto
import _CryptoExtras
import Foundation
import SigilCore

/// A public key in JSON Web Key form (RFC 7517), as ACME accounts and certificate keys appear in JWS headers.
public enum JWK: Sendable, Equatable {
    case ec(curve: String, x: [UInt8], y: [UInt8])
    case rsa(n: [UInt8], e: [UInt8])
    case okp(curve: String, x: [UInt8])

    /// Parses the members RFC 7518 §6 requires; unknown members are ignored, private members refused.
    public init(json: Any) throws(ACMEProblem) {
        guard let object = json as? [String: Any], let kty = object["kty"] as? String else {
            throw ACMEProblem(.malformed, "the JWK is not a JSON object with \"kty\"")
        }
        if object["d"] != nil { throw ACMEProblem(.badPublicKey, "the JWK contains a private key (\"d\"); send the public key only") }
        func member(_ name: String) throws(ACMEProblem) -> [UInt8] {
            guard let text = object[name] as? String, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
                throw ACMEProblem(.malformed, "the \(kty) JWK has no valid base64url \"\(name)\"")
            }
            return bytes
        }
        switch kty {
        case "EC":
            guard let curve = object["crv"] as? String else { throw ACMEProblem(.malformed, "the EC JWK has no \"crv\"") }
            let size: Int
            switch curve {
            case "P-256": size = 32
            case "P-384": size = 48
            case "P-521": size = 66
            default: throw ACMEProblem(.badPublicKey, "EC curve \(curve) is not supported (P-256, P-384, P-521 are)")
            }
            let x = try member("x"), y = try member("y")
            // RFC 7518 §6.2.1.2: the coordinates are the full size of the field.
            guard x.count == size, y.count == size else { throw ACMEProblem(.badPublicKey, "the \(curve) JWK coordinates must be \(size) bytes") }
            self = .ec(curve: curve, x: x, y: y)
        case "RSA":
            var n = try member("n")
            let e = try member("e")
            while n.first == 0 { n.removeFirst() }
            guard n.count * 8 >= 2048 else { throw ACMEProblem(.badPublicKey, "RSA account keys must have at least 2048 bits") }
            guard n.count * 8 <= 8192 else { throw ACMEProblem(.badPublicKey, "RSA keys above 8192 bits are not accepted") }
            self = .rsa(n: n, e: e)
        case "OKP":
            guard let curve = object["crv"] as? String, curve == "Ed25519" else {
                throw ACMEProblem(.badPublicKey, "OKP keys must be Ed25519")
            }
            let x = try member("x")
            guard x.count == 32 else { throw ACMEProblem(.badPublicKey, "an Ed25519 JWK \"x\" is 32 bytes") }
            self = .okp(curve: curve, x: x)
        default:
            throw ACMEProblem(.badPublicKey, "key type \"\(kty)\" is not supported (EC, RSA and OKP are)")
        }
    }

    /// RFC 7638 §3: the required members in lexicographic order, no whitespace.
    public var canonicalJSON: String {
        switch self {
        case .ec(let curve, let x, let y):
            return #"{"crv":"\#(curve)","kty":"EC","x":"\#(Base64URL.encode(x))","y":"\#(Base64URL.encode(y))"}"#
        case .rsa(let n, let e):
            return #"{"e":"\#(Base64URL.encode(e))","kty":"RSA","n":"\#(Base64URL.encode(n))"}"#
        case .okp(let curve, let x):
            return #"{"crv":"\#(curve)","kty":"OKP","x":"\#(Base64URL.encode(x))"}"#
        }
    }

    /// RFC 7638 thumbprint with SHA-256, base64url.
    public var thumbprint: String { Base64URL.encode(SHA256.hash(data: Array(canonicalJSON.utf8))) }

    /// The JWS algorithms this key may sign with (RFC 7518 §3.1; RFC 8037 §3.1).
    public var algorithms: [String] {
        switch self {
        case .ec(let curve, _, _):
            return [curve == "P-256" ? "ES256" : curve == "P-384" ? "ES384" : "ES512"]
        case .rsa: return ["RS256"]
        case .okp: return ["EdDSA"]
        }
    }

    /// The key as Sigil's `PublicKey` (to compare with a certificate's SubjectPublicKeyInfo).
    public func publicKey() throws(ACMEProblem) -> PublicKey {
        do {
            switch self {
            case .ec(let curve, let x, let y):
                let point = [0x04] + x + y
                switch curve {
                case "P-256": return PublicKey(.p256(try P256.Signing.PublicKey(x963Representation: point)))
                case "P-384": return PublicKey(.p384(try P384.Signing.PublicKey(x963Representation: point)))
                default: return PublicKey(.p521(try P521.Signing.PublicKey(x963Representation: point)))
                }
            case .rsa(let n, let e):
                return PublicKey(.rsa(try _RSA.Signing.PublicKey(n: n, e: e)))
            case .okp(_, let x):
                return PublicKey(.ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x)))
            }
        } catch {
            throw ACMEProblem(.badPublicKey, "the JWK is not a valid public key (\(error))")
        }
    }

    /// Checks a JWS signature over `message` (RFC 7515 §5.2 step 8).
    public func verify(algorithm: String, signature: [UInt8], message: [UInt8]) throws(ACMEProblem) -> Bool {
        guard algorithms.contains(algorithm) else {
            throw ACMEProblem(.badSignatureAlgorithm, "algorithm \(algorithm) does not fit this \(keyDescription) key (use \(algorithms.joined(separator: ", ")))")
        }
        let key = try publicKey()
        switch key.backing {
        case .p256(let k):
            // RFC 7518 §3.4: R || S, each the size of the group order.
            guard signature.count == 64, let s = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: SHA256.hash(data: message))
        case .p384(let k):
            guard signature.count == 96, let s = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: SHA384.hash(data: message))
        case .p521(let k):
            guard signature.count == 132, let s = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: SHA512.hash(data: message))
        case .rsa(let k):
            return k.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        case .ed25519(let k):
            return signature.count == 64 && k.isValidSignature(signature, for: message)
        default:
            return false
        }
    }

    var keyDescription: String {
        switch self {
        case .ec(let curve, _, _): return "EC \(curve)"
        case .rsa: return "RSA"
        case .okp: return "Ed25519"
        }
    }
}

/// The algorithms Sigil accepts for account and certificate keys (RFC 8555 §6.2: ES256 and EdDSA
/// at least; RS256 for the clients that still use RSA account keys).
public let acmeSignatureAlgorithms = ["ES256", "ES384", "ES512", "RS256", "EdDSA"]

/// A JWS in the flattened JSON serialization (RFC 7515 §7.2.2), the only form RFC 8555 §6.2 allows.
public struct FlattenedJWS: Sendable {
    public var algorithm: String
    public var nonce: String?
    public var url: String?
    public var kid: String?
    public var jwk: JWK?
    public var protectedB64: String
    public var payloadB64: String
    public var signature: [UInt8]
    /// The decoded payload; empty for POST-as-GET (RFC 8555 §6.3).
    public var payload: [UInt8]

    public var signingInput: [UInt8] { Array("\(protectedB64).\(payloadB64)".utf8) }
    public var isPostAsGet: Bool { payloadB64.isEmpty }

    public init(body: [UInt8]) throws(ACMEProblem) {
        guard body.count <= 256 * 1024 else { throw ACMEProblem(.malformed, "the request body is larger than 256 KiB") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw ACMEProblem(.malformed, "the request body is not a JSON object (a JWS in flattened JSON serialization)")
        }
        try self.init(object: object)
    }

    public init(object: [String: Any]) throws(ACMEProblem) {
        if object["signatures"] != nil { throw ACMEProblem(.malformed, "the general JWS serialization is not allowed (RFC 8555 §6.2); use the flattened form") }
        if object["header"] != nil { throw ACMEProblem(.malformed, "unprotected JWS header members are not allowed (RFC 8555 §6.2)") }
        guard let protectedB64 = object["protected"] as? String, let payloadB64 = object["payload"] as? String,
              let signatureB64 = object["signature"] as? String else {
            throw ACMEProblem(.malformed, "the JWS needs \"protected\", \"payload\" and \"signature\" members")
        }
        guard let protectedBytes = Base64URL.decode(protectedB64),
              let header = (try? JSONSerialization.jsonObject(with: Data(protectedBytes))) as? [String: Any] else {
            throw ACMEProblem(.malformed, "the JWS protected header is not base64url-encoded JSON")
        }
        guard let payload = payloadB64.isEmpty ? [] : Base64URL.decode(payloadB64) else {
            throw ACMEProblem(.malformed, "the JWS payload is not base64url")
        }
        guard let algorithm = header["alg"] as? String else { throw ACMEProblem(.malformed, "the JWS protected header has no \"alg\"") }
        // RFC 8555 §6.2: never "none" nor a MAC algorithm (checked before the signature, which "none" leaves empty).
        guard acmeSignatureAlgorithms.contains(algorithm) else {
            throw ACMEProblem(.badSignatureAlgorithm, "JWS algorithm \"\(algorithm)\" is not accepted", algorithms: acmeSignatureAlgorithms)
        }
        guard let signature = Base64URL.decode(signatureB64), !signature.isEmpty else {
            throw ACMEProblem(.malformed, "the JWS signature is not base64url")
        }
        if let crit = header["crit"] { _ = crit; throw ACMEProblem(.malformed, "the JWS \"crit\" header is not supported") }
        // RFC 8555 §6.2: "jwk" and "kid" are mutually exclusive; one must be there.
        let kid = header["kid"]
        let jwk = header["jwk"]
        if kid != nil && jwk != nil { throw ACMEProblem(.malformed, "the JWS protected header has both \"jwk\" and \"kid\"") }
        if kid == nil && jwk == nil { throw ACMEProblem(.malformed, "the JWS protected header has neither \"jwk\" nor \"kid\"") }
        if let kid, !(kid is String) { throw ACMEProblem(.malformed, "the JWS \"kid\" is not a string") }
        self.algorithm = algorithm
        self.nonce = header["nonce"] as? String
        self.url = header["url"] as? String
        self.kid = kid as? String
        self.jwk = try jwk.map { j throws(ACMEProblem) in try JWK(json: j) }
        self.protectedB64 = protectedB64
        self.payloadB64 = payloadB64
        self.signature = signature
        self.payload = payload
        if header["url"] != nil && self.url == nil { throw ACMEProblem(.malformed, "the JWS \"url\" is not a string") }
        if header["nonce"] != nil && self.nonce == nil { throw ACMEProblem(.malformed, "the JWS \"nonce\" is not a string") }
    }

    /// The payload as a JSON object (an empty payload is not one).
    public func payloadObject() throws(ACMEProblem) -> [String: Any] {
        guard !payload.isEmpty, let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
            throw ACMEProblem(.malformed, isPostAsGet ? "this resource needs a JSON payload, not POST-as-GET" : "the JWS payload is not a JSON object")
        }
        return object
    }
}
