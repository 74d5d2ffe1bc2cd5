import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1

/// A private signing key of any type Sigil supports.
///
/// Keys are generated with the platform's secure random source. Serialization
/// is PKCS#8 (`PrivateKey+PKCS8.swift`), plain or encrypted; reading also
/// accepts SEC1 and PKCS#1 (`PrivateKey+Decoding.swift`).
public struct PrivateKey: Sendable {
    public enum Backing: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        case mldsa44(MLDSA44.PrivateKey)
        case mldsa65(MLDSA65.PrivateKey)
        case mldsa87(MLDSA87.PrivateKey)
    }

    public let backing: Backing
    public let publicKey: PublicKey

    public init(_ backing: Backing) {
        self.backing = backing
        switch backing {
        case .p256(let key): publicKey = PublicKey(.p256(key.publicKey))
        case .p384(let key): publicKey = PublicKey(.p384(key.publicKey))
        case .p521(let key): publicKey = PublicKey(.p521(key.publicKey))
        case .rsa(let key): publicKey = PublicKey(.rsa(key.publicKey))
        case .ed25519(let key): publicKey = PublicKey(.ed25519(key.publicKey))
        case .mldsa44(let key): publicKey = PublicKey(.mldsa44(key.publicKey))
        case .mldsa65(let key): publicKey = PublicKey(.mldsa65(key.publicKey))
        case .mldsa87(let key): publicKey = PublicKey(.mldsa87(key.publicKey))
        }
    }

    /// Generates a new key of the given type.
    public static func generate(_ type: KeyType) throws -> PrivateKey {
        do {
            switch type {
            case .ecP256: return PrivateKey(.p256(P256.Signing.PrivateKey()))
            case .ecP384: return PrivateKey(.p384(P384.Signing.PrivateKey()))
            case .ecP521: return PrivateKey(.p521(P521.Signing.PrivateKey()))
            case .rsa(let bits):
                try KeyType.checkRSABits(bits)
                return PrivateKey(.rsa(try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))))
            case .ed25519: return PrivateKey(.ed25519(Curve25519.Signing.PrivateKey()))
            case .mldsa44: return PrivateKey(.mldsa44(try MLDSA44.PrivateKey()))
            case .mldsa65: return PrivateKey(.mldsa65(try MLDSA65.PrivateKey()))
            case .mldsa87: return PrivateKey(.mldsa87(try MLDSA87.PrivateKey()))
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError(.internalFailure, "generating a \(type) key failed: \(error)")
        }
    }

    public var keyType: KeyType { publicKey.keyType }

    /// The algorithm this key signs with (RFC 5758 hash per curve size, SHA-256 for RSA).
    public var signatureAlgorithm: SignatureAlgorithm { publicKey.defaultSignatureAlgorithm }

    /// Signs `data` with `signatureAlgorithm` and returns the signature value as it
    /// goes into a BIT STRING: DER ECDSA-Sig-Value, PKCS #1 v1.5, or the raw
    /// EdDSA / ML-DSA signature (pure mode, empty context, RFC 9881 §3).
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        do {
            switch backing {
            case .p256(let key): return Array(try key.signature(for: data).derRepresentation)
            case .p384(let key): return Array(try key.signature(for: data).derRepresentation)
            case .p521(let key): return Array(try key.signature(for: data).derRepresentation)
            case .rsa(let key):
                return Array(try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
            case .ed25519(let key): return Array(try key.signature(for: data))
            case .mldsa44(let key): return Array(try key.signature(for: data))
            case .mldsa65(let key): return Array(try key.signature(for: data))
            case .mldsa87(let key): return Array(try key.signature(for: data))
            }
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError(.internalFailure, "signing with the \(keyType) key failed: \(error)")
        }
    }
}
