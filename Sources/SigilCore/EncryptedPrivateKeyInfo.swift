import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1

/// How an encrypted PKCS #8 key derives its encryption key from the passphrase.
public enum KeyDerivation: Sendable, Hashable, CustomStringConvertible {
    /// RFC 7914 scrypt. Sigil writes N=2^14, r=8, p=1: OpenSSL 3.0 refuses N=2^15
    /// with r=8 under its default 32 MiB limit, so this is the strongest it reads.
    case scrypt(n: Int, r: Int, p: Int)
    /// RFC 8018 PBKDF2 with HMAC-SHA-256 (or another PRF when read from a file).
    case pbkdf2(iterations: Int, prf: PRF)

    public enum PRF: String, Sendable, Hashable {
        case hmacSHA1 = "hmacWithSHA1", hmacSHA256 = "hmacWithSHA256", hmacSHA384 = "hmacWithSHA384", hmacSHA512 = "hmacWithSHA512"
    }

    public static let defaultScrypt = KeyDerivation.scrypt(n: 1 << 14, r: 8, p: 1)
    /// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
    public static let defaultPBKDF2 = KeyDerivation.pbkdf2(iterations: 600_000, prf: .hmacSHA256)

    public var description: String {
        switch self {
        case .scrypt(let n, let r, let p): return "scrypt (N=\(n), r=\(r), p=\(p))"
        case .pbkdf2(let iterations, let prf): return "PBKDF2-\(prf.rawValue) (\(iterations) iterations)"
        }
    }
}

/// PKCS #8 EncryptedPrivateKeyInfo with PBES2 (RFC 5958 §3, RFC 8018 §6.2).
///
/// ```
/// EncryptedPrivateKeyInfo ::= SEQUENCE {
///   encryptionAlgorithm  AlgorithmIdentifier,  -- id-PBES2
///   encryptedData        OCTET STRING }
/// PBES2-params ::= SEQUENCE {
///   keyDerivationFunc AlgorithmIdentifier,     -- id-PBKDF2 or id-scrypt
///   encryptionScheme  AlgorithmIdentifier }    -- aes{128,192,256}-CBC, params IV
/// PBKDF2-params ::= SEQUENCE {
///   salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL,
///   prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
/// scrypt-params ::= SEQUENCE {                 -- RFC 7914 §7.1
///   salt OCTET STRING, costParameter INTEGER, blockSize INTEGER,
///   parallelizationParameter INTEGER, keyLength INTEGER OPTIONAL }
/// ```
public enum EncryptedPrivateKeyInfo {
    /// Limits on what a file may ask of us, so a hostile file cannot exhaust memory or time.
    static let maximumScryptMemory = 1 << 30
    static let maximumPBKDF2Iterations = 10_000_000

    /// Encrypts a DER PrivateKeyInfo with AES-256-CBC under a key derived from `passphrase`.
    public static func encrypt(_ privateKeyInfo: [UInt8], passphrase: [UInt8], kdf: KeyDerivation = .defaultScrypt) throws -> [UInt8] {
        guard !passphrase.isEmpty else { throw SigilError.badInput("the passphrase is empty") }
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let iv = try AES._CBC.IV(ivBytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let key = try derive(kdf: kdf, passphrase: passphrase, salt: salt, keyLength: 32)
        let ciphertext = try AES._CBC.encrypt(privateKeyInfo, using: key, iv: iv)

        let kdfIdentifier: AlgorithmIdentifier
        switch kdf {
        case .scrypt(let n, let r, let p):
            var coder = DER.Serializer()
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: salt[...]))
                try coder.serialize(n)
                try coder.serialize(r)
                try coder.serialize(p)
            }
            kdfIdentifier = AlgorithmIdentifier(algorithm: OID.scrypt, parameters: try ASN1Any(derEncoded: coder.serializedBytes))
        case .pbkdf2(let iterations, let prf):
            var coder = DER.Serializer()
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: salt[...]))
                try coder.serialize(iterations)
                if prf != .hmacSHA1 {
                    try coder.serialize(AlgorithmIdentifier(algorithm: prf.oid, parameters: AlgorithmIdentifier.nullParameters))
                }
            }
            kdfIdentifier = AlgorithmIdentifier(algorithm: OID.pbkdf2, parameters: try ASN1Any(derEncoded: coder.serializedBytes))
        }
        let encryption = AlgorithmIdentifier(
            algorithm: OID.aes256CBC,
            parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: Array(iv)[...])))
        var params = DER.Serializer()
        try params.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(kdfIdentifier)
            try coder.serialize(encryption)
        }
        let pbes2 = AlgorithmIdentifier(algorithm: OID.pbes2, parameters: try ASN1Any(derEncoded: params.serializedBytes))
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(pbes2)
            try coder.serialize(ASN1OctetString(contentBytes: Array(ciphertext)[...]))
        }
        return coder.serializedBytes
    }

    /// The parameters of an encrypted key, readable without the passphrase.
    public struct Parameters: Sendable {
        public var kdf: KeyDerivation
        public var salt: [UInt8]
        public var cipherKeyLength: Int
        public var cipherName: String
        public var iv: [UInt8]
        public var ciphertext: [UInt8]
    }

    public static func parameters(_ der: [UInt8]) throws -> Parameters {
        do {
            let root = try DER.parse(der)
            return try DER.sequence(root, identifier: .sequence) { nodes in
                let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                let data = try ASN1OctetString(derEncoded: &nodes)
                guard algorithm.algorithm == OID.pbes2, let pbes2Params = algorithm.parameters else {
                    throw SigilError.unsupported(
                        "encrypted key uses \(algorithm.algorithm), not PBES2; legacy PBES1 encryption is not supported (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)")
                }
                let pbes2Node = try DER.parse(try DER.Serializer.bytes(of: pbes2Params))
                let (kdfID, encID) = try DER.sequence(pbes2Node, identifier: .sequence) { nodes in
                    (try AlgorithmIdentifier(derEncoded: &nodes), try AlgorithmIdentifier(derEncoded: &nodes))
                }
                let keyLength: Int
                let cipherName: String
                switch encID.algorithm {
                case OID.aes128CBC: keyLength = 16; cipherName = "AES-128-CBC"
                case OID.aes192CBC: keyLength = 24; cipherName = "AES-192-CBC"
                case OID.aes256CBC: keyLength = 32; cipherName = "AES-256-CBC"
                default:
                    throw SigilError.unsupported("encrypted key uses cipher \(encID.algorithm); Sigil reads AES-128/192/256-CBC (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)")
                }
                guard let ivAny = encID.parameters, let iv = try? ASN1OctetString(asn1Any: ivAny), iv.bytes.count == 16 else {
                    throw SigilError.badInput("encrypted key has a malformed AES-CBC IV")
                }
                guard let kdfParams = kdfID.parameters else { throw SigilError.badInput("encrypted key has no key-derivation parameters") }
                let kdfNode = try DER.parse(try DER.Serializer.bytes(of: kdfParams))
                let kdf: KeyDerivation
                let salt: [UInt8]
                switch kdfID.algorithm {
                case OID.pbkdf2:
                    (kdf, salt) = try DER.sequence(kdfNode, identifier: .sequence) { nodes in
                        let salt = try ASN1OctetString(derEncoded: &nodes)
                        let iterations = try Int(derEncoded: &nodes)
                        var prf = KeyDerivation.PRF.hmacSHA1
                        while let node = nodes.next() {
                            if node.identifier == .integer {
                                let length = try Int(derEncoded: node)
                                guard length == keyLength else { throw SigilError.badInput("encrypted key: PBKDF2 key length \(length) does not match \(cipherName)") }
                            } else {
                                let prfID = try AlgorithmIdentifier(derEncoded: node)
                                guard let known = KeyDerivation.PRF(oid: prfID.algorithm) else {
                                    throw SigilError.unsupported("encrypted key uses PBKDF2 with PRF \(prfID.algorithm)")
                                }
                                prf = known
                            }
                        }
                        return (KeyDerivation.pbkdf2(iterations: iterations, prf: prf), Array(salt.bytes))
                    }
                case OID.scrypt:
                    (kdf, salt) = try DER.sequence(kdfNode, identifier: .sequence) { nodes in
                        let salt = try ASN1OctetString(derEncoded: &nodes)
                        let n = try Int(derEncoded: &nodes)
                        let r = try Int(derEncoded: &nodes)
                        let p = try Int(derEncoded: &nodes)
                        if let node = nodes.next() {
                            let length = try Int(derEncoded: node)
                            guard length == keyLength else { throw SigilError.badInput("encrypted key: scrypt key length \(length) does not match \(cipherName)") }
                        }
                        return (KeyDerivation.scrypt(n: n, r: r, p: p), Array(salt.bytes))
                    }
                default:
                    throw SigilError.unsupported("encrypted key uses key derivation \(kdfID.algorithm); Sigil reads PBKDF2 and scrypt")
                }
                return Parameters(kdf: kdf, salt: salt, cipherKeyLength: keyLength, cipherName: cipherName, iv: Array(iv.bytes), ciphertext: Array(data.bytes))
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed ENCRYPTED PRIVATE KEY: \(ASN1ErrorText.describe(error))")
        }
    }

    /// Decrypts to the DER PrivateKeyInfo. A wrong passphrase throws `.wrongPassphrase`.
    public static func decrypt(_ der: [UInt8], passphrase: [UInt8]) throws -> [UInt8] {
        let params = try parameters(der)
        let key = try derive(kdf: params.kdf, passphrase: passphrase, salt: params.salt, keyLength: params.cipherKeyLength, checkLimits: true)
        let plaintext: Data
        do {
            plaintext = try AES._CBC.decrypt(params.ciphertext, using: key, iv: AES._CBC.IV(ivBytes: params.iv))
        } catch {
            throw SigilError(.wrongPassphrase, "wrong passphrase (the key did not decrypt)")
        }
        // A wrong key passes the padding check about once in 256 tries; the inner
        // structure must then parse as PKCS #8 too.
        guard (try? PKCS8PrivateKeyInfo(derEncoded: Array(plaintext))) != nil else {
            throw SigilError(.wrongPassphrase, "wrong passphrase (the key did not decrypt)")
        }
        return Array(plaintext)
    }

    static func derive(kdf: KeyDerivation, passphrase: [UInt8], salt: [UInt8], keyLength: Int, checkLimits: Bool = false) throws -> SymmetricKey {
        switch kdf {
        case .scrypt(let n, let r, let p):
            guard n > 1, n & (n - 1) == 0, r > 0, p > 0 else {
                throw SigilError.badInput("invalid scrypt parameters N=\(n) r=\(r) p=\(p)")
            }
            if checkLimits {
                let (memory, overflow) = (128 * r).multipliedReportingOverflow(by: n)
                guard !overflow, memory <= maximumScryptMemory, p <= 16 else {
                    throw SigilError.unsupported("scrypt parameters N=\(n) r=\(r) p=\(p) need more than 1 GiB; refusing")
                }
            }
            do {
                return try KDF.Scrypt.deriveKey(from: passphrase, salt: salt, outputByteCount: keyLength, rounds: n, blockSize: r, parallelism: p)
            } catch {
                throw SigilError(.internalFailure, "scrypt key derivation failed: \(error)")
            }
        case .pbkdf2(let iterations, let prf):
            guard iterations > 0 else { throw SigilError.badInput("invalid PBKDF2 iteration count \(iterations)") }
            if checkLimits, iterations > maximumPBKDF2Iterations {
                throw SigilError.unsupported("PBKDF2 iteration count \(iterations) exceeds \(maximumPBKDF2Iterations); refusing")
            }
            do {
                // Reading: OpenSSL writes 2048 iterations by default, below swift-crypto's
                // floor, so reading must accept what the file says.
                return try KDF.Insecure.PBKDF2.deriveKey(from: passphrase, salt: salt, using: prf.hashFunction, outputByteCount: keyLength, unsafeUncheckedRounds: iterations)
            } catch {
                throw SigilError(.internalFailure, "PBKDF2 key derivation failed: \(error)")
            }
        }
    }
}

extension KeyDerivation.PRF {
    var oid: ASN1ObjectIdentifier {
        switch self {
        case .hmacSHA1: return OID.hmacWithSHA1
        case .hmacSHA256: return OID.hmacWithSHA256
        case .hmacSHA384: return OID.hmacWithSHA384
        case .hmacSHA512: return OID.hmacWithSHA512
        }
    }

    init?(oid: ASN1ObjectIdentifier) {
        switch oid {
        case OID.hmacWithSHA1: self = .hmacSHA1
        case OID.hmacWithSHA256: self = .hmacSHA256
        case OID.hmacWithSHA384: self = .hmacSHA384
        case OID.hmacWithSHA512: self = .hmacSHA512
        default: return nil
        }
    }

    var hashFunction: KDF.Insecure.PBKDF2.HashFunction {
        switch self {
        case .hmacSHA1: return .insecureSHA1
        case .hmacSHA256: return .sha256
        case .hmacSHA384: return .sha384
        case .hmacSHA512: return .sha512
        }
    }
}

extension DER.Serializer {
    /// The DER bytes of one value.
    static func bytes<T: DERSerializable>(of value: T) throws -> [UInt8] {
        var coder = DER.Serializer()
        try coder.serialize(value)
        return coder.serializedBytes
    }
}
