import Foundation
import SigilCore
import SigilServer

enum JSONOutput {
    /// Pretty, key-sorted JSON: a stable shape for scripts and diffs.
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        Console.current.print(String(decoding: data, as: UTF8.self))
    }
}

/// The JSON shape of a public key, shared by `key show` and `csr show`.
struct KeyInfo: Encodable {
    var type: String
    var algorithm: String
    var size: Int
    var securityBits: Int
    var quantumVulnerable: Bool
    var publicKeySHA256: String

    enum CodingKeys: String, CodingKey {
        case type, algorithm, size
        case securityBits = "security_bits"
        case quantumVulnerable = "quantum_vulnerable"
        case publicKeySHA256 = "public_key_sha256"
    }

    init(_ key: PublicKey) {
        let type = key.keyType
        self.type = type.description
        algorithm = type.algorithmName
        size = type.size
        securityBits = type.securityBits
        quantumVulnerable = type.isQuantumVulnerable
        publicKeySHA256 = key.sha256Fingerprint
    }

    var summary: String {
        switch algorithm {
        case "ML-DSA": return "\(type) (ML-DSA-\(size), post-quantum)"
        case "Ed25519": return "\(type) (Ed25519)"
        default: return "\(type) (\(algorithm) \(size) bits)"
        }
    }
}

func colonHex(_ hex: String) -> String {
    Hex.colonSeparated(Hex.decode(hex) ?? [])
}

/// Writes `bytes` to `path` atomically with `mode`, or to standard output for `-`/nil.
func emit(_ bytes: [UInt8], to path: String?, mode: mode_t = 0o644, force: Bool) throws {
    guard let path, path != "-" else {
        Console.current.write(bytes)
        return
    }
    var transaction = FileTransaction()
    try transaction.stage(bytes, to: path, mode: mode, overwrite: force)
    try transaction.commit()
}
