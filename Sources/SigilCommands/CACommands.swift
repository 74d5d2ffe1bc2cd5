import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import X509

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Run the private CA: create root and intermediates, sign requests.",
        subcommands: [CAInit.self, CACSR.self, CAImport.self, CAList.self, CAShow.self, CASign.self]
    )
}

struct CAInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a root CA, or with --intermediate an online intermediate signed by a root.",
        discussion: """
            Defaults: a root is ec:P-384 for 10 years; an intermediate is ec:P-256 for 5 years with \
            pathLen 0, signed by 'root'. The CA key is stored encrypted (AES-256-GCM, scrypt) under \
            the passphrase from --passphrase-file or --passphrase-env (or asked twice at a terminal).
            """
    )

    @OptionGroup var home: HomeOptions
    @Flag(help: "Create an intermediate signed by --parent.") var intermediate = false
    @Option(help: ArgumentHelp("The CA's name (default: root, or intermediate).", valueName: "name")) var name: String?
    @Option(help: ArgumentHelp("The CA's subject (default: /C=US/O=Sigil/CN=Sigil Root CA or .../CN=Sigil Intermediate CA).", valueName: "subject"))
    var subject: String?
    @OptionGroup var type: KeyTypeOption
    @Option(help: ArgumentHelp("Validity in days (default: 3650 for a root, 1825 for an intermediate).", valueName: "days")) var days: Int?
    @Option(name: .customLong("path-len"), help: ArgumentHelp("basicConstraints pathLenConstraint (default: none for a root, 0 for an intermediate).", valueName: "n"))
    var pathLength: Int?
    @Option(help: ArgumentHelp("The CA that signs the intermediate (default: root).", valueName: "name")) var parent: String = "root"
    @Option(name: .customLong("eku"), help: ArgumentHelp("Extended key usages of an intermediate, comma-separated, or 'none' (default: serverAuth,clientAuth).", valueName: "list"))
    var eku: String = "serverAuth,clientAuth"
    @OptionGroup var passphrase: PassphraseSource
    @Option(name: .customLong("parent-passphrase-file"), help: ArgumentHelp("The parent's passphrase, when it differs.", valueName: "file"))
    var parentPassphraseFile: String?
    @Option(name: .customLong("parent-passphrase-env"), help: ArgumentHelp("The parent's passphrase from VAR, when it differs.", valueName: "var"))
    var parentPassphraseEnv: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let caName = name ?? (intermediate ? "intermediate" : "root")
        let keyType = try type.parsed() ?? (intermediate ? .ecP256 : .ecP384)
        let dn = try DistinguishedName.parseOpenSSL(subject ?? (intermediate ? "/C=US/O=Sigil/CN=Sigil Intermediate CA" : "/C=US/O=Sigil/CN=Sigil Root CA"))
        let validity = days ?? (intermediate ? 1825 : 3650)
        guard validity >= 1, validity <= 36_500 else { throw SigilError.badInput("--days must be between 1 and 36500") }
        let usages = eku.lowercased() == "none" ? [] : eku.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        _ = try UsageNames.parseExtendedKeyUsage(usages)
        let secret = try passphrase.caPassphrase(for: caName, confirm: true)
        let options = NewCAOptions(name: caName, subject: dn, keyType: keyType, days: validity,
                                   pathLength: intermediate ? (pathLength ?? 0) : pathLength, extendedKeyUsage: usages)
        let record = try await Workspace.with(home) { workspace in
            if intermediate {
                let parentSource = PassphraseSource(passphraseFile: parentPassphraseFile, passphraseEnv: parentPassphraseEnv)
                let parentSecret = parentSource.isGiven ? try parentSource.caPassphrase(for: parent, confirm: false) : secret
                try await workspace.authority.unlock(parent, passphrase: parentSecret)
                return try await workspace.authority.createIntermediate(options, parent: parent, passphrase: secret, actor: commandLineActor)
            }
            return try await workspace.authority.createRoot(options, passphrase: secret, actor: commandLineActor)
        }
        try CAShow.print(record, json: json, pem: false)
    }
}

extension PassphraseSource {
    init(passphraseFile: String?, passphraseEnv: String?) {
        self.init()
        self.passphraseFile = passphraseFile
        self.passphraseEnv = passphraseEnv
    }
}

struct CACSR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csr",
        abstract: "Make an intermediate's key and CSR for a root held elsewhere (then `sigil ca import`)."
    )

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The intermediate's name.", valueName: "name")) var name: String = "intermediate"
    @Option(help: ArgumentHelp("The intermediate's subject.", valueName: "subject")) var subject: String = "/C=US/O=Sigil/CN=Sigil Intermediate CA"
    @OptionGroup var type: KeyTypeOption
    @Option(help: ArgumentHelp("Where to write the CSR (default: standard output).", valueName: "file")) var out: String?
    @Flag(help: "Replace an existing CSR file.") var force = false
    @OptionGroup var passphrase: PassphraseSource

    func run() async throws {
        let dn = try DistinguishedName.parseOpenSSL(subject)
        let secret = try passphrase.caPassphrase(for: name, confirm: true)
        if let out, !force, FileManager.default.fileExists(atPath: out) {
            throw SigilError(.alreadyExists, "\(out) already exists; use --force to replace it")
        }
        let csr = try await Workspace.with(home) { workspace in
            try await workspace.authority.createIntermediateRequest(
                NewCAOptions(name: name, subject: dn, keyType: try type.parsed() ?? .ecP256, days: 0), passphrase: secret, actor: commandLineActor)
        }
        try emit(Array(csr.pemString.utf8), to: out, force: force)
        if out != nil { Console.current.error("Wrote the CSR for CA '\(name)'; have the root sign it, then run `sigil ca import --name \(name) --cert FILE`") }
    }
}

struct CAImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Install the certificate an outside root signed for a pending intermediate.",
        discussion: "Refuses a certificate that is not for the intermediate's key or is not a CA certificate."
    )

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The pending intermediate's name.", valueName: "name")) var name: String = "intermediate"
    @Option(help: ArgumentHelp("The signed certificate (PEM or DER).", valueName: "file")) var cert: String
    @Option(help: ArgumentHelp("The issuing chain, issuer first (PEM).", valueName: "file")) var chain: String?
    @OptionGroup var passphrase: PassphraseSource
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let certificate = try X509Certificate(pemOrDER: try Files.read(cert, what: "certificate"), source: cert)
        let parents = try chain.map { try X509Certificate.parseChain(pem: String(decoding: try Files.read($0, what: "chain"), as: UTF8.self), source: $0) } ?? []
        let secret = try passphrase.caPassphrase(for: name, confirm: false)
        let record = try await Workspace.with(home) { workspace in
            try await workspace.authority.unlock(name, passphrase: secret)
            return try await workspace.authority.importIssuerCertificate(name: name, certificate: certificate, parentChain: parents, actor: commandLineActor)
        }
        try CAShow.print(record, json: json, pem: false)
    }
}

struct CAList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the CAs.")

    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let issuers = try await Workspace.with(home) { try await $0.authority.issuers() }
        if json {
            try JSONOutput.print(issuers.map(IssuerReport.init))
            return
        }
        if issuers.isEmpty {
            Console.current.print("No CAs yet; create one with `sigil ca init`.")
            return
        }
        let rows = issuers.map { [$0.name, $0.status.rawValue, $0.isRoot ? "root" : "intermediate", $0.keyType, iso($0.notAfter), $0.subject] }
        Console.current.print(table(["NAME", "STATUS", "KIND", "KEY", "EXPIRES", "SUBJECT"], rows))
    }
}

struct CAShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a CA.")

    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The CA's name.", valueName: "name")) var name: String
    @Flag(help: "Print the CA certificate as PEM.") var pem = false
    @Flag(help: "Print the CA certificate followed by its parents as PEM.") var chain = false
    @Flag(help: "Print the result as JSON.") var json = false


    func run() async throws {
        let (record, certificates) = try await Workspace.with(home) { workspace in
            let record = try await workspace.authority.issuer(name)
            return (record, chain ? try await workspace.authority.chain(issuer: name) : [])
        }
        if chain {
            Console.current.write(Array(certificates.map(\.pemString).joined().utf8))
            return
        }
        try CAShow.print(record, json: json, pem: pem)
    }

    static func print(_ record: IssuerRecord, json: Bool, pem: Bool) throws {
        if pem {
            Console.current.write(Array(record.certificatePEM.utf8))
            return
        }
        let report = IssuerReport(record)
        if json {
            try JSONOutput.print(report)
            return
        }
        let console = Console.current
        func line(_ label: String, _ value: String) { console.print(label.padding(toLength: 14, withPad: " ", startingAt: 0) + value) }
        line("CA:", "\(report.name) (\(report.kind), \(report.status))")
        line("Subject:", report.subject)
        if let parent = report.parent { line("Issued by:", parent) }
        line("Key:", report.keyType)
        line("Valid:", "\(report.notBefore) to \(report.notAfter)")
        if let serial = report.serial { line("Serial:", serial) }
        if let fingerprint = report.fingerprint { line("SHA-256:", colonHex(fingerprint)) }
    }
}

struct CASign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Issue a certificate for a CSR under a profile.",
        discussion: """
            The CSR's signature is verified and the request checked against the profile and \
            policy; a rejected request lists every rule it broke (exit 1). A profile that needs \
            approval records a pending request instead (see `sigil request`). The certificate is \
            recorded in the inventory and the audit trail before it is written out.
            """
    )

    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The CSR (PEM or DER).", valueName: "csr")) var csr: String
    @Option(help: ArgumentHelp("The profile (tls-server, tls-client, email, code-signing, ocsp-signing, sub-ca, or one from sigil.yaml).", valueName: "profile"))
    var profile: String = "tls-server"
    @Option(help: ArgumentHelp("Validity in days (default: the profile's).", valueName: "days")) var days: Int?
    @Option(help: ArgumentHelp("The issuing CA (default: the one named intermediate, else the newest intermediate).", valueName: "name")) var issuer: String?
    @Option(help: ArgumentHelp("Where to write the certificate (default: standard output).", valueName: "file")) var out: String?
    @Option(name: .customLong("chain-out"), help: ArgumentHelp("Where to write the issuing chain (issuer first).", valueName: "file")) var chainOut: String?
    @Option(name: .customLong("fullchain-out"), help: ArgumentHelp("Where to write certificate + chain.", valueName: "file")) var fullchainOut: String?
    @Option(help: ArgumentHelp("The certificate's owner in the inventory.", valueName: "owner")) var owner: String?
    @Option(name: .customLong("tag"), help: ArgumentHelp("An inventory tag. Repeatable.", valueName: "tag")) var tags: [String] = []
    @Flag(help: "Replace existing output files.") var force = false
    @OptionGroup var passphrase: PassphraseSource
    @Flag(help: "Print a summary as JSON.") var json = false

    func run() async throws {
        let request = try CertificationRequest(pemOrDER: try Files.read(csr, what: "CSR"), source: csr)
        for path in [out, chainOut, fullchainOut].compactMap({ $0 }) where path != "-" && !force && FileManager.default.fileExists(atPath: path) {
            throw SigilError(.alreadyExists, "\(path) already exists; use --force to replace it")
        }
        let outcome = try await Workspace.with(home) { workspace in
            let authority = workspace.authority
            let issuerRecord = try await authority.resolveIssuerForCommand(issuer)
            try await authority.unlock(issuerRecord.name, passphrase: try passphrase.caPassphrase(for: issuerRecord.name, confirm: false))
            return try await authority.submit(IssuanceRequest(
                csr: request, profile: profile, issuer: issuerRecord.name, days: days, requester: commandLineActor, owner: owner, tags: tags))
        }
        switch outcome {
        case .pending(let record):
            if json {
                try JSONOutput.print(["request_id": record.id, "status": "pending"])
            } else {
                Console.current.print("Request \(record.id) is pending approval (profile '\(record.profile)' requires it).")
                Console.current.print("Approve it with: sigil request approve \(record.id)")
            }
            throw ExitCode(3)
        case .issued(let issued):
            try writeOutputs(issued)
        }
    }

    func writeOutputs(_ issued: IssuedCertificate) throws {
        let certPEM = issued.certificate.pemString
        let chainPEM = issued.chain.map(\.pemString).joined()
        var transaction = FileTransaction()
        if let out, out != "-" { try transaction.stage(Array(certPEM.utf8), to: out, mode: 0o644, overwrite: force) }
        if let chainOut { try transaction.stage(Array(chainPEM.utf8), to: chainOut, mode: 0o644, overwrite: force) }
        if let fullchainOut { try transaction.stage(Array((certPEM + chainPEM).utf8), to: fullchainOut, mode: 0o644, overwrite: force) }
        try transaction.commit()
        for note in issued.modifications { Console.current.error("note: \(note)") }
        if json {
            try JSONOutput.print(CertificateReport(issued.record, now: issued.record.createdAt))
        } else if out == nil || out == "-" {
            Console.current.write(Array(certPEM.utf8))
        } else {
            let names = issued.record.sans.isEmpty ? issued.record.subject : issued.record.sans.joined(separator: ", ")
            Console.current.error("Issued certificate \(issued.record.serial) for \(names) (expires \(iso(issued.record.notAfter)))")
        }
    }
}

extension CertificateAuthority {
    func resolveIssuerForCommand(_ name: String?) async throws -> IssuerRecord {
        if let name { return try await issuer(name) }
        return try await defaultIssuer()
    }
}

/// A plain text table with columns padded to their widest cell.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}
