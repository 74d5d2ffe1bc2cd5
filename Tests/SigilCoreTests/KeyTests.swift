import Foundation
import SigilCore
import SwiftASN1
import Testing
import X509

@Suite("Key types")
struct KeyTypeTests {
    @Test("every documented name parses and prints back", arguments: KeyType.generatable)
    func roundTrip(type: KeyType) throws {
        #expect(try KeyType(parsing: type.description) == type)
    }

    @Test func aliases() throws {
        #expect(try KeyType(parsing: "P-384") == .ecP384)
        #expect(try KeyType(parsing: "ec:secp521r1") == .ecP521)
        #expect(try KeyType(parsing: "RSA") == .rsa(bits: 2048))
        #expect(try KeyType(parsing: "ML-DSA-65") == .mldsa65)
    }

    @Test func weakRSAIsRefusedWithTheReason() {
        let error = #expect(throws: SigilError.self) { try KeyType(parsing: "rsa:1024") }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("2048") == true)
    }

    @Test func unknownTypeListsTheKnownOnes() {
        let error = #expect(throws: SigilError.self) { try KeyType(parsing: "dsa:1024") }
        #expect(error?.message.contains("ec:P-256") == true)
        #expect(error?.message.contains("mldsa:87") == true)
    }

    @Test func quantumVulnerability() {
        #expect(KeyType.ecP256.isQuantumVulnerable)
        #expect(KeyType.rsa(bits: 4096).isQuantumVulnerable)
        #expect(!KeyType.mldsa65.isQuantumVulnerable)
    }
}

@Suite("Private keys")
struct PrivateKeyTests {
    // RSA 3072/4096 generation is slow in debug builds; 2048 covers the code path.
    static let types: [KeyType] = [.ecP256, .ecP384, .ecP521, .rsa(bits: 2048), .ed25519, .mldsa44, .mldsa65, .mldsa87]

    @Test("PKCS#8 round trip keeps the key", arguments: types)
    func pkcs8RoundTrip(type: KeyType) throws {
        let key = try PrivateKey.generate(type)
        #expect(key.keyType == type)
        let der = key.pkcs8DER()
        let back = try PrivateKey(pkcs8DER: der)
        #expect(back.publicKey == key.publicKey)
        #expect(back.pkcs8DER() == der)
        let decoded = try PrivateKey.decode(Array(key.pkcs8PEM().utf8), source: "k.pem") { nil }
        #expect(decoded.format == .pkcs8 && !decoded.encrypted && decoded.pem)
        #expect(decoded.key.publicKey == key.publicKey)
        let fromDER = try PrivateKey.decode(der, source: "k.der") { nil }
        #expect(fromDER.key.publicKey == key.publicKey && !fromDER.pem)
    }

    @Test("signatures verify and a flipped bit does not", arguments: types)
    func signVerify(type: KeyType) throws {
        let key = try PrivateKey.generate(type)
        let message = Array("to be signed".utf8)
        var signature = try key.sign(message)
        #expect(key.publicKey.isValidSignature(signature, for: message, algorithm: key.signatureAlgorithm))
        signature[signature.count / 2] ^= 0x01
        #expect(!key.publicKey.isValidSignature(signature, for: message, algorithm: key.signatureAlgorithm))
    }

    @Test("ML-DSA keys are written in RFC 9881 seed form", arguments: [KeyType.mldsa44, .mldsa65, .mldsa87])
    func mldsaSeedForm(type: KeyType) throws {
        let info = try PKCS8PrivateKeyInfo(derEncoded: try PrivateKey.generate(type).pkcs8DER())
        #expect(info.privateKey.count == 34)
        #expect(Array(info.privateKey.prefix(2)) == [0x80, 0x20])
        #expect(info.algorithm.parameters == nil)
    }

    @Test("SPKI round trip", arguments: types)
    func spkiRoundTrip(type: KeyType) throws {
        let key = try PrivateKey.generate(type).publicKey
        let parsed = try PublicKey(spkiDER: key.derBytes)
        #expect(parsed == key)
        #expect(parsed.keyType == type)
        #expect(parsed.sha256Fingerprint.count == 64)
    }

    @Test("encrypted PKCS#8 round trip", arguments: [KeyDerivation.defaultScrypt, .pbkdf2(iterations: 1000, prf: .hmacSHA256)])
    func encryptedRoundTrip(kdf: KeyDerivation) throws {
        let key = try PrivateKey.generate(.ecP256)
        let pem = try key.encryptedPKCS8PEM(passphrase: Array("correct horse".utf8), kdf: kdf)
        #expect(pem.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        let decoded = try PrivateKey.decode(Array(pem.utf8), source: "k.pem") { Array("correct horse".utf8) }
        #expect(decoded.encrypted)
        #expect(decoded.kdf == kdf)
        #expect(decoded.key.publicKey == key.publicKey)
        let error = #expect(throws: SigilError.self) {
            try PrivateKey.decode(Array(pem.utf8), source: "k.pem") { Array("wrong horse".utf8) }
        }
        #expect(error?.kind == .wrongPassphrase)
        #expect(error?.message.hasPrefix("k.pem:") == true)
    }

    @Test func encryptedKeyWithoutPassphraseSaysSo() throws {
        let pem = try PrivateKey.generate(.ed25519).encryptedPKCS8PEM(passphrase: Array("longenough".utf8))
        let error = #expect(throws: SigilError.self) { try PrivateKey.decode(Array(pem.utf8), source: "k.pem") { nil } }
        #expect(error?.message.contains("--passphrase-file") == true)
    }

    @Test func scryptParametersOpenSSLAccepts() {
        // OpenSSL 3.0 refuses N=2^15 with r=8 under its 32 MiB default.
        guard case .scrypt(let n, let r, let p) = KeyDerivation.defaultScrypt else { Issue.record("not scrypt"); return }
        #expect(n * r * 128 <= 32 * 1024 * 1024 / 2)
        #expect(p == 1)
    }
}

@Suite("Keys made by OpenSSL")
struct OpenSSLKeyTests {
    @Test func sec1WithParametersBlock() throws {
        let decoded = try PrivateKey.decode(Array(Fixtures.sec1.utf8), source: "sec1.pem") { nil }
        #expect(decoded.format == .sec1)
        #expect(decoded.key.keyType == .ecP256)
        #expect(decoded.key.publicKey.sha256Fingerprint == Fixtures.sec1Fingerprint)
    }

    @Test func pkcs1() throws {
        let decoded = try PrivateKey.decode(Array(Fixtures.pkcs1.utf8), source: "rsa.pem") { nil }
        #expect(decoded.format == .pkcs1)
        #expect(decoded.key.keyType == .rsa(bits: 2048))
        #expect(decoded.key.publicKey.sha256Fingerprint == Fixtures.pkcs1Fingerprint)
    }

    @Test("encrypted by openssl pkcs8", arguments: [Fixtures.p384Pbkdf2, Fixtures.p384Scrypt])
    func encrypted(pem: String) throws {
        let decoded = try PrivateKey.decode(Array(pem.utf8), source: "p384.pem") { Array(Fixtures.passphrase.utf8) }
        #expect(decoded.encrypted)
        #expect(decoded.key.keyType == .ecP384)
        #expect(decoded.key.publicKey.sha256Fingerprint == Fixtures.p384Fingerprint)
    }

    @Test func opensslPBKDF2IterationCountBelowSwiftCryptoFloorIsRead() throws {
        let block = try PEM.parse(Fixtures.p384Pbkdf2)[0]
        let params = try EncryptedPrivateKeyInfo.parameters(block.derBytes)
        guard case .pbkdf2(let iterations, let prf) = params.kdf else { Issue.record("not PBKDF2"); return }
        #expect(iterations == 2048)
        #expect(prf == .hmacSHA256)
    }
}

@Suite("Malformed key input")
struct MalformedKeyTests {
    @Test func truncatedPEM() throws {
        let pem = try PrivateKey.generate(.ecP256).pkcs8PEM()
        let truncated = String(pem.prefix(pem.count - 30))
        let error = #expect(throws: SigilError.self) { try PrivateKey.decode(Array(truncated.utf8), source: "t.pem") { nil } }
        #expect(error?.kind == .badInput)
        #expect(error?.message.contains("truncated") == true)
    }

    @Test func damagedBase64() throws {
        var lines = try PrivateKey.generate(.ecP256).pkcs8PEM().split(separator: "\n").map(String.init)
        lines[1] = "!!" + lines[1].dropFirst(2)
        let error = #expect(throws: SigilError.self) { try PrivateKey.decode(Array(lines.joined(separator: "\n").utf8), source: "d.pem") { nil } }
        #expect(error?.message.contains("base64") == true)
    }

    @Test func corruptDER() throws {
        var der = try PrivateKey.generate(.ecP256).pkcs8DER()
        der.removeLast(10)
        let error = #expect(throws: SigilError.self) { try PrivateKey.decode(der, source: "k.der") { nil } }
        #expect(error?.kind == .badInput)
    }

    @Test func notAKey() throws {
        let error = #expect(throws: SigilError.self) { try PrivateKey.decode(Array(Fixtures.cpCSR.utf8), source: "x.pem") { nil } }
        #expect(error?.message.contains("CERTIFICATE REQUEST") == true)
        #expect(throws: SigilError.self) { try PrivateKey.decode(Array("hello world".utf8), source: "x") { nil } }
        #expect(throws: SigilError.self) { try PrivateKey.decode([], source: "x") { nil } }
    }

    @Test func everyPrefixOfAKeyFailsCleanly() throws {
        // No crash and a SigilError for every truncation of a DER key.
        let der = try PrivateKey.generate(.ecP384).pkcs8DER()
        for length in 0..<der.count {
            #expect(throws: SigilError.self) { try PrivateKey.decode(Array(der.prefix(length)), source: "k") { nil } }
        }
    }
}
