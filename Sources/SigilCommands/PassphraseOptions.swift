import ArgumentParser
import Foundation
import SigilCore

/// Where a passphrase comes from. Never a bare command-line value: that would
/// land in shell history and in every `ps` listing.
struct PassphraseSource: ParsableArguments {
    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Read the passphrase from the first line of FILE.", valueName: "file"))
    var passphraseFile: String?

    @Option(name: .customLong("passphrase-env"), help: ArgumentHelp("Read the passphrase from environment variable VAR.", valueName: "var"))
    var passphraseEnv: String?

    func validate() throws {
        if passphraseFile != nil && passphraseEnv != nil {
            throw ValidationError("give either --passphrase-file or --passphrase-env, not both")
        }
    }

    var isGiven: Bool { passphraseFile != nil || passphraseEnv != nil }

    /// The passphrase from a file or the environment, or nil when neither was given.
    func read() throws -> [UInt8]? {
        if let path = passphraseFile {
            let bytes = try Files.read(path, what: "passphrase file")
            // Like OpenSSL's `file:` source: the first line, without its line end.
            var line = Array(bytes.prefix { $0 != 0x0a })
            if line.last == 0x0d { line.removeLast() }
            guard !line.isEmpty else { throw SigilError.badInput("the passphrase file \(path) starts with an empty line") }
            return line
        }
        if let variable = passphraseEnv {
            guard let value = Console.current.environment[variable] else {
                throw SigilError.badInput("environment variable \(variable) is not set")
            }
            guard !value.isEmpty else { throw SigilError.badInput("environment variable \(variable) is empty") }
            return Array(value.utf8)
        }
        return nil
    }

    /// For reading a key: the given passphrase, or a prompt at a terminal.
    func forDecryption(of source: String) throws -> [UInt8]? {
        if let given = try read() { return given }
        if Console.current.isInteractive {
            return try Terminal.readSecret(prompt: "Passphrase for \(source): ")
        }
        return nil
    }
}

/// How a new private key is protected at rest.
struct NewKeyProtection: ParsableArguments {
    @OptionGroup var passphrase: PassphraseSource

    @Flag(name: .customLong("no-passphrase"), help: "Write the private key unencrypted (it is still written 0600).")
    var noPassphrase = false

    @Option(name: .customLong("kdf"), help: ArgumentHelp("Key derivation for an encrypted key: scrypt or pbkdf2.", valueName: "kdf"))
    var kdf: String = "scrypt"

    /// The minimum for a passphrase Sigil encrypts with.
    static let minimumPassphraseLength = 8

    func validate() throws {
        if noPassphrase && passphrase.isGiven {
            throw ValidationError("--no-passphrase cannot be combined with --passphrase-file or --passphrase-env")
        }
        guard ["scrypt", "pbkdf2"].contains(kdf.lowercased()) else {
            throw ValidationError("--kdf must be scrypt or pbkdf2, not '\(kdf)'")
        }
    }

    var keyDerivation: KeyDerivation { kdf.lowercased() == "pbkdf2" ? .defaultPBKDF2 : .defaultScrypt }

    /// The passphrase to encrypt with, nil for an explicitly unencrypted key.
    /// Refuses to guess: without a source and without `--no-passphrase`, a terminal
    /// is asked twice; a script gets an error.
    func resolve(for path: String) throws -> [UInt8]? {
        if noPassphrase { return nil }
        let secret: [UInt8]
        if let given = try passphrase.read() {
            secret = given
        } else if Console.current.isInteractive {
            let first = try Terminal.readSecret(prompt: "Passphrase for \(path): ")
            let second = try Terminal.readSecret(prompt: "Repeat the passphrase: ")
            guard first == second else { throw SigilError.badInput("the passphrases do not match") }
            secret = first
        } else {
            throw SigilError.badInput(
                "refusing to write an unencrypted private key to \(path): give --passphrase-file FILE or --passphrase-env VAR to encrypt it, or --no-passphrase")
        }
        guard secret.count >= NewKeyProtection.minimumPassphraseLength else {
            throw SigilError.badInput("the passphrase is too short: use at least \(NewKeyProtection.minimumPassphraseLength) characters")
        }
        return secret
    }
}

enum Terminal {
    /// Reads a line from the controlling terminal with echo off.
    static func readSecret(prompt: String) throws -> [UInt8] {
        let fd = open("/dev/tty", O_RDWR)
        guard fd >= 0 else { throw SigilError.badInput("no terminal to ask for a passphrase; use --passphrase-file or --passphrase-env") }
        defer { close(fd) }
        // Echo off (dropping any type-ahead) before the prompt, as getpass(3) does: an answer typed
        // as soon as the prompt shows must neither be echoed nor be flushed away unread.
        var original = termios()
        let haveTermios = tcgetattr(fd, &original) == 0
        if haveTermios {
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(fd, TCSAFLUSH, &silent)
        }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        defer {
            if haveTermios { tcsetattr(fd, TCSAFLUSH, &original) }
            _ = "\n".withCString { write(fd, $0, 1) }
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != 0x0a {
            if byte != 0x0d { line.append(byte) }
        }
        guard !line.isEmpty else { throw SigilError.badInput("empty passphrase") }
        return line
    }
}
