import SwiftASN1

/// A signature algorithm as it appears in a certificate or request.
///
/// Covers what Sigil signs with and what it meets in the field (SHA-1 and MD5
/// signatures are recognised so that lint can name them, and verified where the
/// primitive exists so that a report can say whether the signature holds).
public enum SignatureAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public enum Hash: String, Sendable, Hashable {
        case md5 = "MD5", sha1 = "SHA1", sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512"
    }

    case ecdsa(Hash)
    case rsaPKCS1(Hash)
    /// RSASSA-PSS (RFC 4055); recognised, not produced.
    case rsaPSS
    case ed25519
    case ed448
    case mldsa44
    case mldsa65
    case mldsa87
    case unknown(ASN1ObjectIdentifier)

    public init(_ identifier: AlgorithmIdentifier) {
        switch identifier.algorithm {
        case OID.ecdsaWithSHA1: self = .ecdsa(.sha1)
        case OID.ecdsaWithSHA256: self = .ecdsa(.sha256)
        case OID.ecdsaWithSHA384: self = .ecdsa(.sha384)
        case OID.ecdsaWithSHA512: self = .ecdsa(.sha512)
        case OID.md5WithRSAEncryption: self = .rsaPKCS1(.md5)
        case OID.sha1WithRSAEncryption: self = .rsaPKCS1(.sha1)
        case OID.sha256WithRSAEncryption: self = .rsaPKCS1(.sha256)
        case OID.sha384WithRSAEncryption: self = .rsaPKCS1(.sha384)
        case OID.sha512WithRSAEncryption: self = .rsaPKCS1(.sha512)
        case OID.rsassaPSS: self = .rsaPSS
        case OID.ed25519: self = .ed25519
        case OID.ed448: self = .ed448
        case OID.mldsa44: self = .mldsa44
        case OID.mldsa65: self = .mldsa65
        case OID.mldsa87: self = .mldsa87
        default: self = .unknown(identifier.algorithm)
        }
    }

    /// The identifier to write. ECDSA, EdDSA and ML-DSA omit parameters
    /// (RFC 5758 §3.2, RFC 8410 §3, RFC 9881 §2); PKCS #1 v1.5 carries NULL (RFC 4055 §5).
    public var algorithmIdentifier: AlgorithmIdentifier {
        switch self {
        case .ecdsa(let hash):
            switch hash {
            case .sha1, .md5: return AlgorithmIdentifier(algorithm: OID.ecdsaWithSHA1)
            case .sha256: return AlgorithmIdentifier(algorithm: OID.ecdsaWithSHA256)
            case .sha384: return AlgorithmIdentifier(algorithm: OID.ecdsaWithSHA384)
            case .sha512: return AlgorithmIdentifier(algorithm: OID.ecdsaWithSHA512)
            }
        case .rsaPKCS1(let hash):
            let oid: ASN1ObjectIdentifier
            switch hash {
            case .md5: oid = OID.md5WithRSAEncryption
            case .sha1: oid = OID.sha1WithRSAEncryption
            case .sha256: oid = OID.sha256WithRSAEncryption
            case .sha384: oid = OID.sha384WithRSAEncryption
            case .sha512: oid = OID.sha512WithRSAEncryption
            }
            return AlgorithmIdentifier(algorithm: oid, parameters: AlgorithmIdentifier.nullParameters)
        case .rsaPSS: return AlgorithmIdentifier(algorithm: OID.rsassaPSS)
        case .ed25519: return AlgorithmIdentifier(algorithm: OID.ed25519)
        case .ed448: return AlgorithmIdentifier(algorithm: OID.ed448)
        case .mldsa44: return AlgorithmIdentifier(algorithm: OID.mldsa44)
        case .mldsa65: return AlgorithmIdentifier(algorithm: OID.mldsa65)
        case .mldsa87: return AlgorithmIdentifier(algorithm: OID.mldsa87)
        case .unknown(let oid): return AlgorithmIdentifier(algorithm: oid)
        }
    }

    /// The name OpenSSL prints, so output lines up with what users already know.
    public var description: String {
        switch self {
        case .ecdsa(let hash): return "ecdsa-with-\(hash.rawValue)"
        case .rsaPKCS1(let hash): return "\(hash.rawValue.lowercased())WithRSAEncryption"
        case .rsaPSS: return "rsassaPss"
        case .ed25519: return "ED25519"
        case .ed448: return "ED448"
        case .mldsa44: return "ML-DSA-44"
        case .mldsa65: return "ML-DSA-65"
        case .mldsa87: return "ML-DSA-87"
        case .unknown(let oid): return oid.description
        }
    }

    /// SHA-1 and MD5 are broken for signatures (CA/B Forum BR §7.1.3.2, NIST SP 800-131A).
    public var usesWeakHash: Bool {
        switch self {
        case .ecdsa(let hash), .rsaPKCS1(let hash): return hash == .sha1 || hash == .md5
        default: return false
        }
    }
}
