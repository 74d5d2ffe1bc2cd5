import ArgumentParser
import Foundation
import SigilCore
import SigilServer

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make and inspect private keys.",
        subcommands: [KeyNew.self, KeyShow.self]
    )
}

struct KeyTypeOption: ParsableArguments {
    @Option(name: .customLong("key-type"), help: ArgumentHelp(
        "ec:P-256 (default), ec:P-384, ec:P-521, rsa:2048, rsa:3072, rsa:4096, ed25519, mldsa:44, mldsa:65, mldsa:87.",
        valueName: "type"))
    var keyType: String?

    func parsed() throws -> KeyType? {
        try keyType.map { try KeyType(parsing: $0) }
    }
}

struct KeyNew: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Generate a private key and write it as PKCS#8 PEM (mode 0600).",
        discussion: """
            The key is encrypted (PBES2, AES-256-CBC, scrypt by default) with a passphrase \
            from --passphrase-file or --passphrase-env, or asked for twice at a terminal. An \
            unencrypted key needs --no-passphrase. An existing file is never replaced without --force.
            """
    )

    @OptionGroup var type: KeyTypeOption
    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write the key.", valueName: "file"))
    var out: String
    @OptionGroup var protection: NewKeyProtection
    @Flag(help: "Replace an existing file.") var force = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let keyType = try type.parsed() ?? .default
        if !force, FileManager.default.fileExists(atPath: out) {
            throw SigilError(.alreadyExists, "\(out) already exists; use --force to replace it")
        }
        let passphrase = try protection.resolve(for: out)
        let key = try PrivateKey.generate(keyType)
        let pem = try passphrase.map { try key.encryptedPKCS8PEM(passphrase: $0, kdf: protection.keyDerivation) } ?? key.pkcs8PEM()
        try emit(Array(pem.utf8), to: out, mode: 0o600, force: force)
        let info = KeyInfo(key.publicKey)
        if json {
            try JSONOutput.print(KeyShow.Report(key: info, encrypted: passphrase != nil, format: "PKCS#8",
                                                kdf: passphrase != nil ? protection.keyDerivation.description : nil, file: out))
        } else {
            let protectionText = passphrase != nil ? "encrypted, \(protection.keyDerivation)" : "unencrypted"
            Console.current.print("Wrote \(info.summary) private key to \(out) (PKCS#8, \(protectionText), mode 0600)")
            Console.current.print("Public key SHA-256: \(colonHex(info.publicKeySHA256))")
        }
    }
}

struct KeyShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a private key's type, size and public key fingerprint.",
        discussion: "Reads PKCS#8 (plain or encrypted), SEC1 EC PRIVATE KEY and PKCS#1 RSA PRIVATE KEY, in PEM or DER."
    )

    @Argument(help: ArgumentHelp("The key file.", valueName: "file")) var file: String
    @OptionGroup var passphrase: PassphraseSource
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(name: .customLong("public-key"), help: "Print the public key as PEM (SubjectPublicKeyInfo) instead.")
    var publicKey = false

    struct Report: Encodable {
        var key: KeyInfo
        var encrypted: Bool
        var format: String
        var kdf: String?
        var file: String

        func encode(to encoder: any Encoder) throws {
            try key.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(encrypted, forKey: .encrypted)
            try container.encode(format, forKey: .format)
            try container.encode(kdf, forKey: .kdf)
            try container.encode(file, forKey: .file)
        }
        enum Keys: String, CodingKey { case encrypted, format, kdf, file }
    }

    func run() async throws {
        let bytes = try Files.read(file, what: "key file")
        let decoded = try PrivateKey.decode(bytes, source: file) { try passphrase.forDecryption(of: file) }
        if publicKey {
            Console.current.write(Array(PEM.encode(label: "PUBLIC KEY", der: decoded.key.publicKey.derBytes).utf8))
            return
        }
        let info = KeyInfo(decoded.key.publicKey)
        if json {
            try JSONOutput.print(Report(key: info, encrypted: decoded.encrypted, format: decoded.format.rawValue,
                                        kdf: decoded.kdf?.description, file: file))
            return
        }
        let console = Console.current
        console.print("Private key:        \(file)")
        console.print("Type:               \(info.summary)")
        console.print("Security strength:  \(info.securityBits) bits\(info.quantumVulnerable ? " (quantum-vulnerable)" : " (post-quantum)")")
        console.print("Format:             \(decoded.format.rawValue) \(decoded.pem ? "PEM" : "DER")\(decoded.encrypted ? ", encrypted (\(decoded.kdf?.description ?? "PBES2"))" : ", unencrypted")")
        console.print("Public key SHA-256: \(colonHex(info.publicKeySHA256))")
        if case .rsa(let bits) = decoded.key.keyType, bits < KeyType.minimumRSABits {
            console.error("warning: RSA keys below \(KeyType.minimumRSABits) bits are weak; Sigil will not sign with this key")
        }
    }
}
