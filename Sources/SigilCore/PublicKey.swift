import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1

/// A public key of any type Sigil knows, coded as a SubjectPublicKeyInfo.
///
/// ```
/// SubjectPublicKeyInfo  ::=  SEQUENCE  {
///      algorithm            AlgorithmIdentifier,
///      subjectPublicKey     BIT STRING  }
/// ```
/// (RFC 5280 §4.1.2.7; EC per RFC 5480, RSA per RFC 3279, Ed25519 per RFC 8410,
/// ML-DSA per RFC 9881 §4). `derBytes` are the exact bytes read or written.
public struct PublicKey: Sendable {
    public enum Backing: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case mldsa44(MLDSA44.PublicKey)
        case mldsa65(MLDSA65.PublicKey)
        case mldsa87(MLDSA87.PublicKey)
    }

    public let backing: Backing
    /// The DER SubjectPublicKeyInfo.
    public let derBytes: [UInt8]

    public init(_ backing: Backing) {
        self.backing = backing
        self.derBytes = PublicKey.encodeSPKI(backing)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    public init(spkiDER bytes: [UInt8]) throws {
        let (algorithm, key): (AlgorithmIdentifier, [UInt8])
        do {
            let node = try DER.parse(bytes)
            (algorithm, key) = try DER.sequence(node, identifier: .sequence) { nodes in
                let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                let bits = try ASN1BitString(derEncoded: &nodes)
                return (algorithm, Array(bits.bytes))
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed SubjectPublicKeyInfo: \(ASN1ErrorText.describe(error))")
        }
        do {
            switch algorithm.algorithm {
            case OID.ecPublicKey:
                guard let params = algorithm.parameters, let curve = try? ASN1ObjectIdentifier(asn1Any: params) else {
                    throw SigilError.unsupported("EC public key without a named curve (explicit curve parameters are not supported)")
                }
                switch curve {
                case OID.secp256r1: backing = .p256(try P256.Signing.PublicKey(x963Representation: key))
                case OID.secp384r1: backing = .p384(try P384.Signing.PublicKey(x963Representation: key))
                case OID.secp521r1: backing = .p521(try P521.Signing.PublicKey(x963Representation: key))
                default: throw SigilError.unsupported("unsupported elliptic curve \(curve): Sigil supports P-256, P-384 and P-521")
                }
            case OID.rsaEncryption:
                backing = .rsa(try _RSA.Signing.PublicKey(unsafeDERRepresentation: bytes))
            case OID.ed25519:
                backing = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: key))
            case OID.mldsa44:
                backing = .mldsa44(try MLDSA44.PublicKey(rawRepresentation: key))
            case OID.mldsa65:
                backing = .mldsa65(try MLDSA65.PublicKey(rawRepresentation: key))
            case OID.mldsa87:
                backing = .mldsa87(try MLDSA87.PublicKey(rawRepresentation: key))
            case OID.ed448:
                throw SigilError.unsupported("Ed448 keys are not supported")
            case OID.rsassaPSS:
                throw SigilError.unsupported("RSASSA-PSS-only keys (OID 1.2.840.113549.1.1.10) are not supported; use rsaEncryption keys")
            default:
                throw SigilError.unsupported("unsupported public key algorithm \(algorithm.algorithm)")
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed \(algorithm.algorithm) public key: \(ASN1ErrorText.describe(error))")
        }
        self.derBytes = bytes
    }

    public var keyType: KeyType {
        switch backing {
        case .p256: return .ecP256
        case .p384: return .ecP384
        case .p521: return .ecP521
        case .rsa(let key): return .rsa(bits: key.keySizeInBits)
        case .ed25519: return .ed25519
        case .mldsa44: return .mldsa44
        case .mldsa65: return .mldsa65
        case .mldsa87: return .mldsa87
        }
    }

    /// SHA-256 over the DER SubjectPublicKeyInfo, lowercase hex: the key's fingerprint
    /// (the same value as `openssl pkey -pubout -outform DER | sha256sum`).
    public var sha256Fingerprint: String { Hex.encode(SHA256.hash(data: derBytes)) }

    /// The raw subjectPublicKey bits (for key identifiers, RFC 5280 §4.2.1.2).
    public var subjectPublicKeyBytes: [UInt8] {
        guard let node = try? DER.parse(derBytes),
              let bits = try? DER.sequence(node, identifier: .sequence, { nodes -> ASN1BitString in
                  _ = try AlgorithmIdentifier(derEncoded: &nodes)
                  return try ASN1BitString(derEncoded: &nodes)
              })
        else { return [] }
        return Array(bits.bytes)
    }

    /// The algorithm a CA or applicant signs with when this key's owner names none.
    public var defaultSignatureAlgorithm: SignatureAlgorithm {
        switch backing {
        case .p256: return .ecdsa(.sha256)
        case .p384: return .ecdsa(.sha384)
        case .p521: return .ecdsa(.sha512)
        case .rsa: return .rsaPKCS1(.sha256)
        case .ed25519: return .ed25519
        case .mldsa44: return .mldsa44
        case .mldsa65: return .mldsa65
        case .mldsa87: return .mldsa87
        }
    }

    /// Verifies `signature` over `data`. Returns false for a mismatch between key
    /// and algorithm and for algorithms Sigil cannot check, never throws.
    public func isValidSignature(_ signature: [UInt8], for data: [UInt8], algorithm: SignatureAlgorithm) -> Bool {
        switch (backing, algorithm) {
        case (.p256(let key), .ecdsa(let hash)):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return PublicKey.verifyECDSA(hash: hash, data: data,
                                         sha1: { key.isValidSignature(sig, for: $0) }, sha256: { key.isValidSignature(sig, for: $0) },
                                         sha384: { key.isValidSignature(sig, for: $0) }, sha512: { key.isValidSignature(sig, for: $0) })
        case (.p384(let key), .ecdsa(let hash)):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return PublicKey.verifyECDSA(hash: hash, data: data,
                                         sha1: { key.isValidSignature(sig, for: $0) }, sha256: { key.isValidSignature(sig, for: $0) },
                                         sha384: { key.isValidSignature(sig, for: $0) }, sha512: { key.isValidSignature(sig, for: $0) })
        case (.p521(let key), .ecdsa(let hash)):
            guard let sig = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return PublicKey.verifyECDSA(hash: hash, data: data,
                                         sha1: { key.isValidSignature(sig, for: $0) }, sha256: { key.isValidSignature(sig, for: $0) },
                                         sha384: { key.isValidSignature(sig, for: $0) }, sha512: { key.isValidSignature(sig, for: $0) })
        case (.rsa(let key), .rsaPKCS1(let hash)):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch hash {
            case .md5: return key.isValidSignature(sig, for: Insecure.MD5.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha1: return key.isValidSignature(sig, for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha256: return key.isValidSignature(sig, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha384: return key.isValidSignature(sig, for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha512: return key.isValidSignature(sig, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            }
        case (.ed25519(let key), .ed25519):
            return key.isValidSignature(signature, for: data)
        case (.mldsa44(let key), .mldsa44):
            return key.isValidSignature(signature, for: data)
        case (.mldsa65(let key), .mldsa65):
            return key.isValidSignature(signature, for: data)
        case (.mldsa87(let key), .mldsa87):
            return key.isValidSignature(signature, for: data)
        default:
            return false
        }
    }

    private static func verifyECDSA(
        hash: SignatureAlgorithm.Hash, data: [UInt8],
        sha1: (Insecure.SHA1Digest) -> Bool, sha256: (SHA256Digest) -> Bool,
        sha384: (SHA384Digest) -> Bool, sha512: (SHA512Digest) -> Bool
    ) -> Bool {
        switch hash {
        case .md5: return false
        case .sha1: return sha1(Insecure.SHA1.hash(data: data))
        case .sha256: return sha256(SHA256.hash(data: data))
        case .sha384: return sha384(SHA384.hash(data: data))
        case .sha512: return sha512(SHA512.hash(data: data))
        }
    }

    private static func encodeSPKI(_ backing: Backing) -> [UInt8] {
        switch backing {
        case .p256(let key): return Array(key.derRepresentation)
        case .p384(let key): return Array(key.derRepresentation)
        case .p521(let key): return Array(key.derRepresentation)
        case .rsa(let key): return Array(key.derRepresentation)
        case .ed25519(let key): return spki(OID.ed25519, Array(key.rawRepresentation))
        case .mldsa44(let key): return spki(OID.mldsa44, Array(key.rawRepresentation))
        case .mldsa65(let key): return spki(OID.mldsa65, Array(key.rawRepresentation))
        case .mldsa87(let key): return spki(OID.mldsa87, Array(key.rawRepresentation))
        }
    }

    private static func spki(_ oid: ASN1ObjectIdentifier, _ key: [UInt8]) -> [UInt8] {
        var coder = DER.Serializer()
        // Serializing in-memory values of known shape cannot fail.
        try! coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(AlgorithmIdentifier(algorithm: oid))
            try coder.serialize(ASN1BitString(bytes: key[...]))
        }
        return coder.serializedBytes
    }
}

extension PublicKey: Equatable {
    public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool { lhs.derBytes == rhs.derBytes }
}

/// Lowercase hexadecimal, the form fingerprints and serials take in Sigil's output.
public enum Hex {
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits: [Character] = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return out
    }

    /// Colon-separated uppercase pairs, as `openssl x509 -fingerprint` prints them.
    public static func colonSeparated<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        encode(bytes).uppercased().chunked(2).joined(separator: ":")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let cleaned = text.filter { $0 != ":" && !$0.isWhitespace }
        guard cleaned.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(cleaned.count / 2)
        var index = cleaned.startIndex
        while index < cleaned.endIndex {
            let next = cleaned.index(index, offsetBy: 2)
            guard let byte = UInt8(cleaned[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}

extension String {
    func chunked(_ size: Int) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in self {
            current.append(ch)
            if current.count == size { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
