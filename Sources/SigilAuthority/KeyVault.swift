import Crypto
import _CryptoExtras
import Foundation
import SigilCore

/// CA private keys at rest: PKCS #8 sealed with AES-256-GCM under a key that
/// scrypt derives from a passphrase. The issuer's name is authenticated data,
/// so a blob moved to another issuer does not open.
public enum KeyVault {
    struct Blob: Codable {
        var version: Int
        var kdf: String
        var n: Int
        var r: Int
        var p: Int
        var salt: String
        var nonce: String
        var sealed: String
    }

    /// N=2^15, r=8: 32 MiB and about a tenth of a second per unlock here.
    static let scryptN = 1 << 15
    static let scryptR = 8

    public static func seal(_ key: PrivateKey, passphrase: [UInt8], context: String) throws -> String {
        guard !passphrase.isEmpty else { throw SigilError.badInput("the CA passphrase is empty") }
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let symmetric = try derive(passphrase: passphrase, salt: salt, n: scryptN, r: scryptR, p: 1)
        let nonce = AES.GCM.Nonce()
        let box = try AES.GCM.seal(key.pkcs8DER(), using: symmetric, nonce: nonce, authenticating: Array(context.utf8))
        let blob = Blob(version: 1, kdf: "scrypt", n: scryptN, r: scryptR, p: 1, salt: Data(salt).base64EncodedString(),
                        nonce: Data(nonce).base64EncodedString(), sealed: Data(box.ciphertext + box.tag).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(blob), as: UTF8.self)
    }

    public static func open(_ text: String, passphrase: [UInt8], context: String) throws -> PrivateKey {
        guard let blob = try? JSONDecoder().decode(Blob.self, from: Data(text.utf8)), blob.version == 1, blob.kdf == "scrypt",
              let salt = Data(base64Encoded: blob.salt), let nonceBytes = Data(base64Encoded: blob.nonce),
              let sealed = Data(base64Encoded: blob.sealed), sealed.count > 16
        else { throw SigilError.badInput("the stored key of '\(context)' is damaged") }
        guard blob.n <= 1 << 20, blob.r <= 16, blob.p <= 4 else { throw SigilError.badInput("the stored key of '\(context)' has unreasonable scrypt parameters") }
        let symmetric = try derive(passphrase: passphrase, salt: Array(salt), n: blob.n, r: blob.r, p: blob.p)
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonceBytes), ciphertext: sealed.dropLast(16), tag: sealed.suffix(16))
            plaintext = try AES.GCM.open(box, using: symmetric, authenticating: Array(context.utf8))
        } catch {
            throw SigilError(.wrongPassphrase, "wrong passphrase for CA '\(context)'")
        }
        return try PrivateKey(pkcs8DER: Array(plaintext))
    }

    private static func derive(passphrase: [UInt8], salt: [UInt8], n: Int, r: Int, p: Int) throws -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(from: passphrase, salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p)
        } catch {
            throw SigilError(.internalFailure, "scrypt failed: \(error)")
        }
    }
}

/// Signs on behalf of a CA. The software signer holds a decrypted key in memory;
/// an HSM-backed signer (PKCS #11) can take its place without the CA noticing.
public protocol Signer: Sendable {
    var publicKey: PublicKey { get }
    var signatureAlgorithm: SignatureAlgorithm { get }
    func sign(_ data: [UInt8]) throws -> [UInt8]
}

public struct SoftwareSigner: Signer {
    let key: PrivateKey
    public init(_ key: PrivateKey) { self.key = key }
    public var publicKey: PublicKey { key.publicKey }
    public var signatureAlgorithm: SignatureAlgorithm { key.signatureAlgorithm }
    public func sign(_ data: [UInt8]) throws -> [UInt8] { try key.sign(data) }
}

extension CertificateBuilder {
    public func sign(with signer: any Signer) throws -> X509Certificate {
        try sign(algorithm: signer.signatureAlgorithm, using: signer.sign)
    }
}
