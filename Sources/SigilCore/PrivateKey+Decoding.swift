import _CryptoExtras
import Foundation
import SwiftASN1

/// A private key read from a file, with what the file looked like.
public struct DecodedPrivateKey: Sendable {
    public enum Format: String, Sendable {
        case pkcs8 = "PKCS#8"
        case sec1 = "SEC1"
        case pkcs1 = "PKCS#1"
    }
    public var key: PrivateKey
    public var format: Format
    public var encrypted: Bool
    public var pem: Bool
    /// For encrypted keys, how the encryption key was derived.
    public var kdf: KeyDerivation?
}

extension PrivateKey {
    /// Reads a private key in any format people have: PKCS #8 (plain or PBES2
    /// encrypted), SEC1 `EC PRIVATE KEY`, PKCS #1 `RSA PRIVATE KEY`, PEM or DER.
    ///
    /// `passphrase` is called only when the key is encrypted, so a caller can
    /// prompt lazily. `source` names the input in error messages.
    public static func decode(
        _ bytes: [UInt8], source: String, passphrase: () throws -> [UInt8]?
    ) throws -> DecodedPrivateKey {
        if PEM.looksLikePEM(bytes) {
            guard let text = String(bytes: bytes, encoding: .utf8) else {
                throw SigilError.badInput("\(source): not valid UTF-8 text")
            }
            let blocks = try PEM.parse(text, source: source)
            let keyLabels: Set = ["PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
            let keyBlocks = blocks.filter { keyLabels.contains($0.label) }
            guard let block = keyBlocks.first else {
                let found = blocks.map(\.label).joined(separator: ", ")
                throw SigilError.badInput("\(source): holds \(found), not a private key")
            }
            guard keyBlocks.count == 1 else {
                throw SigilError.badInput("\(source): holds \(keyBlocks.count) private keys; expected one")
            }
            if block.headers["Proc-Type"]?.contains("ENCRYPTED") == true {
                throw SigilError.unsupported(
                    "\(source): legacy OpenSSL-encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in \(source)`")
            }
            var decoded = try decodeDER(block.derBytes, label: block.label, source: source, passphrase: passphrase)
            decoded.pem = true
            return decoded
        }
        return try decodeDER(bytes, label: nil, source: source, passphrase: passphrase)
    }

    private static func decodeDER(
        _ der: [UInt8], label: String?, source: String, passphrase: () throws -> [UInt8]?
    ) throws -> DecodedPrivateKey {
        let format = try label.map { try formatForLabel($0, source: source) } ?? sniffFormat(der, source: source)
        do {
            switch format {
            case .plainPKCS8:
                return DecodedPrivateKey(key: try PrivateKey(pkcs8DER: der), format: .pkcs8, encrypted: false, pem: false)
            case .encryptedPKCS8:
                let params = try EncryptedPrivateKeyInfo.parameters(der)
                guard let secret = try passphrase() else {
                    throw SigilError(.wrongPassphrase, "\(source): the key is encrypted; give its passphrase with --passphrase-file or --passphrase-env")
                }
                let plain = try EncryptedPrivateKeyInfo.decrypt(der, passphrase: secret)
                return DecodedPrivateKey(key: try PrivateKey(pkcs8DER: plain), format: .pkcs8, encrypted: true, pem: false, kdf: params.kdf)
            case .sec1:
                return DecodedPrivateKey(key: try PrivateKey(sec1DER: der), format: .sec1, encrypted: false, pem: false)
            case .pkcs1:
                do {
                    let key = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
                    return DecodedPrivateKey(key: PrivateKey(.rsa(key)), format: .pkcs1, encrypted: false, pem: false)
                } catch {
                    throw SigilError.badInput("malformed RSA private key: \(ASN1ErrorText.describe(error))")
                }
            }
        } catch var error as SigilError {
            if !error.message.hasPrefix(source) { error.message = "\(source): " + error.message }
            throw error
        }
    }

    private enum SniffedFormat { case plainPKCS8, encryptedPKCS8, sec1, pkcs1 }

    private static func formatForLabel(_ label: String, source: String) throws -> SniffedFormat {
        switch label {
        case "PRIVATE KEY": return .plainPKCS8
        case "ENCRYPTED PRIVATE KEY": return .encryptedPKCS8
        case "EC PRIVATE KEY": return .sec1
        case "RSA PRIVATE KEY": return .pkcs1
        default: throw SigilError.badInput("\(source): holds \(label), not a private key")
        }
    }

    /// Tells DER key formats apart by their first fields.
    private static func sniffFormat(_ der: [UInt8], source: String) throws -> SniffedFormat {
        let node: ASN1Node
        do {
            node = try DER.parse(der)
        } catch {
            throw SigilError.badInput("\(source): neither PEM nor valid DER (\(ASN1ErrorText.describe(error)))")
        }
        guard node.identifier == .sequence, case .constructed(let children) = node.content else {
            throw SigilError.badInput("\(source): DER does not start with a SEQUENCE; not a private key")
        }
        var iterator = children.makeIterator()
        guard let first = iterator.next() else { throw SigilError.badInput("\(source): empty DER SEQUENCE; not a private key") }
        if first.identifier == .sequence { return .encryptedPKCS8 }
        guard first.identifier == .integer, let version = try? Int(derEncoded: first), let second = iterator.next() else {
            throw SigilError.badInput("\(source): DER structure is not a private key")
        }
        switch (version, second.identifier) {
        case (0, .sequence), (1, .sequence): return .plainPKCS8
        case (1, .octetString): return .sec1
        case (0, .integer): return .pkcs1
        default: throw SigilError.badInput("\(source): DER structure is not a private key")
        }
    }
}
