import Foundation

/// A kind of key pair Sigil makes and reads, named as users write it
/// (`--key-type ec:P-256`, `rsa:3072`, `ed25519`, `mldsa:65`).
public enum KeyType: Hashable, Sendable, CustomStringConvertible {
    case ecP256
    case ecP384
    case ecP521
    /// RSA with a modulus of this many bits.
    case rsa(bits: Int)
    case ed25519
    case mldsa44
    case mldsa65
    case mldsa87

    /// The type used when the user names none.
    public static let `default` = KeyType.ecP256

    /// Every type `sigil key new` makes, in the order help texts list them.
    public static let generatable: [KeyType] = [
        .ecP256, .ecP384, .ecP521, .rsa(bits: 2048), .rsa(bits: 3072), .rsa(bits: 4096),
        .ed25519, .mldsa44, .mldsa65, .mldsa87,
    ]

    /// RSA moduli below this are refused: NIST SP 800-57 Part 1 Rev. 5 §5.6.1 and
    /// the CA/Browser Forum Baseline Requirements §6.1.5 both set 2048 bits.
    public static let minimumRSABits = 2048
    /// Larger moduli buy little and make every signature slow; 8192 is the cap.
    public static let maximumRSABits = 8192

    /// Parses a `--key-type` value. Accepts the canonical names and a few
    /// spellings people use (`p256`, `ec:secp384r1`, `rsa` for 2048 bits).
    public init(parsing text: String) throws {
        let raw = text.trimmingCharacters(in: .whitespaces)
        let value = raw.lowercased()
        switch value {
        case "ec", "ecdsa", "ec:p-256", "ec:p256", "p-256", "p256", "ec:prime256v1", "ec:secp256r1", "prime256v1":
            self = .ecP256
        case "ec:p-384", "ec:p384", "p-384", "p384", "ec:secp384r1", "secp384r1":
            self = .ecP384
        case "ec:p-521", "ec:p521", "p-521", "p521", "ec:secp521r1", "secp521r1":
            self = .ecP521
        case "ed25519", "eddsa":
            self = .ed25519
        case "mldsa:44", "ml-dsa-44", "mldsa44": self = .mldsa44
        case "mldsa:65", "ml-dsa-65", "mldsa65": self = .mldsa65
        case "mldsa:87", "ml-dsa-87", "mldsa87": self = .mldsa87
        case "rsa":
            self = .rsa(bits: 2048)
        default:
            if value.hasPrefix("rsa:") {
                let bitsText = value.dropFirst(4)
                guard let bits = Int(bitsText), bits > 0 else {
                    throw SigilError.badInput("invalid RSA key size '\(bitsText)' in key type '\(raw)': expected rsa:2048, rsa:3072 or rsa:4096")
                }
                try KeyType.checkRSABits(bits)
                self = .rsa(bits: bits)
                return
            }
            throw SigilError.badInput(
                "unknown key type '\(raw)': expected one of \(KeyType.generatable.map(\.description).joined(separator: ", "))")
        }
    }

    /// Refuses RSA sizes that are too small to be safe or not a multiple of 8.
    public static func checkRSABits(_ bits: Int) throws {
        if bits < minimumRSABits {
            throw SigilError.badInput(
                "RSA keys of \(bits) bits are too weak: the minimum is \(minimumRSABits) bits (NIST SP 800-57, CA/B Forum BR 6.1.5); use rsa:2048 or larger")
        }
        if bits > maximumRSABits || bits % 8 != 0 {
            throw SigilError.badInput("unsupported RSA key size \(bits): use 2048, 3072 or 4096 (at most \(maximumRSABits), a multiple of 8)")
        }
    }

    public var description: String {
        switch self {
        case .ecP256: return "ec:P-256"
        case .ecP384: return "ec:P-384"
        case .ecP521: return "ec:P-521"
        case .rsa(let bits): return "rsa:\(bits)"
        case .ed25519: return "ed25519"
        case .mldsa44: return "mldsa:44"
        case .mldsa65: return "mldsa:65"
        case .mldsa87: return "mldsa:87"
        }
    }

    /// The algorithm family as people name it.
    public var algorithmName: String {
        switch self {
        case .ecP256, .ecP384, .ecP521: return "ECDSA"
        case .rsa: return "RSA"
        case .ed25519: return "Ed25519"
        case .mldsa44, .mldsa65, .mldsa87: return "ML-DSA"
        }
    }

    /// The size people quote: the modulus for RSA, the field for curves, and the
    /// FIPS 204 parameter set for ML-DSA (44, 65, 87).
    public var size: Int {
        switch self {
        case .ecP256: return 256
        case .ecP384: return 384
        case .ecP521: return 521
        case .rsa(let bits): return bits
        case .ed25519: return 256
        case .mldsa44: return 44
        case .mldsa65: return 65
        case .mldsa87: return 87
        }
    }

    /// Approximate classical security strength in bits (NIST SP 800-57 Part 1 Table 2;
    /// ML-DSA by its FIPS 204 category).
    public var securityBits: Int {
        switch self {
        case .ecP256, .ed25519: return 128
        case .ecP384: return 192
        case .ecP521: return 256
        case .rsa(let bits):
            if bits >= 15360 { return 256 }
            if bits >= 7680 { return 192 }
            if bits >= 3072 { return 128 }
            if bits >= 2048 { return 112 }
            return 80
        case .mldsa44: return 128
        case .mldsa65: return 192
        case .mldsa87: return 256
        }
    }

    /// RSA and elliptic-curve keys fall to Shor's algorithm on a large quantum computer.
    public var isQuantumVulnerable: Bool {
        switch self {
        case .mldsa44, .mldsa65, .mldsa87: return false
        default: return true
        }
    }
}
