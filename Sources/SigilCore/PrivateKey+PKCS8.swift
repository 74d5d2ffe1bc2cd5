import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1

extension PrivateKey {
    /// The key as a DER PKCS #8 PrivateKeyInfo: SEC1 inside for EC (RFC 5915),
    /// PKCS #1 inside for RSA, `CurvePrivateKey` for Ed25519 (RFC 8410 §7) and the
    /// 32-byte seed form for ML-DSA (RFC 9881 §6: `seed [0] OCTET STRING`).
    public func pkcs8DER() -> [UInt8] {
        switch backing {
        case .p256(let key): return Array(key.derRepresentation)
        case .p384(let key): return Array(key.derRepresentation)
        case .p521(let key): return Array(key.derRepresentation)
        case .rsa(let key): return Array(key.pkcs8DERRepresentation)
        case .ed25519(let key):
            var inner = DER.Serializer()
            try! inner.serialize(ASN1OctetString(contentBytes: Array(key.rawRepresentation)[...]))
            return PrivateKey.wrap(OID.ed25519, inner.serializedBytes)
        case .mldsa44(let key): return PrivateKey.wrap(OID.mldsa44, PrivateKey.mldsaSeedForm(key.seedRepresentation))
        case .mldsa65(let key): return PrivateKey.wrap(OID.mldsa65, PrivateKey.mldsaSeedForm(key.seedRepresentation))
        case .mldsa87(let key): return PrivateKey.wrap(OID.mldsa87, PrivateKey.mldsaSeedForm(key.seedRepresentation))
        }
    }

    /// `-----BEGIN PRIVATE KEY-----`.
    public func pkcs8PEM() -> String { PEM.encode(label: "PRIVATE KEY", der: pkcs8DER()) }

    /// `-----BEGIN ENCRYPTED PRIVATE KEY-----` (PBES2, AES-256-CBC), readable by `openssl pkey -passin`.
    public func encryptedPKCS8PEM(passphrase: [UInt8], kdf: KeyDerivation = .defaultScrypt) throws -> String {
        PEM.encode(label: "ENCRYPTED PRIVATE KEY", der: try EncryptedPrivateKeyInfo.encrypt(pkcs8DER(), passphrase: passphrase, kdf: kdf))
    }

    private static func wrap(_ oid: ASN1ObjectIdentifier, _ privateKey: [UInt8]) -> [UInt8] {
        var coder = DER.Serializer()
        try! coder.serialize(PKCS8PrivateKeyInfo(algorithm: AlgorithmIdentifier(algorithm: oid), privateKey: privateKey))
        return coder.serializedBytes
    }

    private static func mldsaSeedForm(_ seed: Data) -> [UInt8] {
        [0x80, UInt8(seed.count)] + Array(seed)
    }

    /// Reads a PKCS #8 PrivateKeyInfo of any supported algorithm.
    public init(pkcs8DER der: [UInt8]) throws {
        let info: PKCS8PrivateKeyInfo
        do {
            info = try PKCS8PrivateKeyInfo(derEncoded: der)
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed PKCS#8 private key: \(ASN1ErrorText.describe(error))")
        }
        try self.init(pkcs8: info, der: der)
    }

    init(pkcs8 info: PKCS8PrivateKeyInfo, der: [UInt8]) throws {
        do {
            switch info.algorithm.algorithm {
            case OID.ecPublicKey:
                guard let params = info.algorithm.parameters, let curve = try? ASN1ObjectIdentifier(asn1Any: params) else {
                    throw SigilError.unsupported("EC private key without a named curve (explicit parameters are not supported)")
                }
                try self.init(sec1DER: info.privateKey, curve: curve)
            case OID.rsaEncryption:
                self.init(.rsa(try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)))
            case OID.ed25519:
                let inner = try ASN1OctetString(derEncoded: info.privateKey)
                self.init(.ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: inner.bytes)))
            case OID.mldsa44, OID.mldsa65, OID.mldsa87:
                let seed = try PrivateKey.mldsaSeed(info.privateKey)
                switch info.algorithm.algorithm {
                case OID.mldsa44: self.init(.mldsa44(try MLDSA44.PrivateKey(seedRepresentation: seed)))
                case OID.mldsa65: self.init(.mldsa65(try MLDSA65.PrivateKey(seedRepresentation: seed, publicKey: nil)))
                default: self.init(.mldsa87(try MLDSA87.PrivateKey(seedRepresentation: seed, publicKey: nil)))
                }
            case OID.ed448:
                throw SigilError.unsupported("Ed448 keys are not supported")
            case OID.rsassaPSS:
                throw SigilError.unsupported("RSASSA-PSS-only keys are not supported; use an rsaEncryption key")
            default:
                throw SigilError.unsupported("unsupported private key algorithm \(info.algorithm.algorithm)")
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed \(info.algorithm.algorithm) private key: \(ASN1ErrorText.describe(error))")
        }
    }

    /// RFC 9881 §6: `seed [0]`, `expandedKey`, or `both SEQUENCE { seed, expandedKey }`.
    private static func mldsaSeed(_ bytes: [UInt8]) throws -> [UInt8] {
        let node = try DER.parse(bytes)
        if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            let seed = try ASN1OctetString(derEncoded: node, withIdentifier: node.identifier)
            return Array(seed.bytes)
        }
        if node.identifier == .sequence {
            return try DER.sequence(node, identifier: .sequence) { nodes in
                let seed = try ASN1OctetString(derEncoded: &nodes)
                _ = try ASN1OctetString(derEncoded: &nodes)
                return Array(seed.bytes)
            }
        }
        throw SigilError.unsupported("ML-DSA private key in expanded-only form: Sigil needs the seed form (RFC 9881 §6); re-export the key with its seed")
    }

    /// Reads an RFC 5915 ECPrivateKey. `curve` comes from the PKCS #8 wrapper when
    /// there is one; otherwise from the structure's own parameters or its length.
    init(sec1DER der: [UInt8], curve outerCurve: ASN1ObjectIdentifier? = nil) throws {
        let (scalar, innerCurve): ([UInt8], ASN1ObjectIdentifier?)
        do {
            let node = try DER.parse(der)
            (scalar, innerCurve) = try DER.sequence(node, identifier: .sequence) { nodes in
                let version = try Int(derEncoded: &nodes)
                guard version == 1 else { throw SigilError.badInput("unsupported EC private key version \(version)") }
                let key = try ASN1OctetString(derEncoded: &nodes)
                let params = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { node in
                    try ASN1ObjectIdentifier(derEncoded: node)
                }
                _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { node in
                    try ASN1BitString(derEncoded: node)
                }
                return (Array(key.bytes), params)
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed EC private key: \(ASN1ErrorText.describe(error))")
        }
        let curve: ASN1ObjectIdentifier
        if let c = outerCurve ?? innerCurve {
            curve = c
        } else {
            switch scalar.count {
            case 32: curve = OID.secp256r1
            case 48: curve = OID.secp384r1
            case 66, 65: curve = OID.secp521r1
            default: throw SigilError.badInput("EC private key names no curve and its length (\(scalar.count) bytes) fits none")
            }
        }
        do {
            switch curve {
            case OID.secp256r1: self.init(.p256(try P256.Signing.PrivateKey(rawRepresentation: scalar)))
            case OID.secp384r1: self.init(.p384(try P384.Signing.PrivateKey(rawRepresentation: scalar)))
            case OID.secp521r1:
                let padded = scalar.count < 66 ? [UInt8](repeating: 0, count: 66 - scalar.count) + scalar : scalar
                self.init(.p521(try P521.Signing.PrivateKey(rawRepresentation: padded)))
            default:
                throw SigilError.unsupported("unsupported elliptic curve \(curve): Sigil supports P-256, P-384 and P-521")
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("invalid EC private key: \(ASN1ErrorText.describe(error))")
        }
    }
}
