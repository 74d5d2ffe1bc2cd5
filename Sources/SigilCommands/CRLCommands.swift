import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore

struct CRLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl",
        abstract: "Certificate revocation lists (RFC 5280 §5).",
        subcommands: [CRLGenerate.self, CRLShow.self]
    )
}

struct CRLGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Sign a new CRL (the next CRL number) for an issuer.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The issuing CA (default: the one named intermediate, else the newest intermediate).", valueName: "name")) var issuer: String?
    @Option(help: ArgumentHelp("Where to write the CRL (default: standard output).", valueName: "file")) var out: String?
    @Option(help: ArgumentHelp("der or pem (default der).", valueName: "format")) var format: String = "der"
    @Flag(help: "Replace an existing file.") var force = false
    @OptionGroup var passphrase: PassphraseSource

    func run() async throws {
        guard ["der", "pem"].contains(format) else { throw SigilError.badInput("--format must be der or pem") }
        if let out, !force, FileManager.default.fileExists(atPath: out) { throw SigilError(.alreadyExists, "\(out) already exists; use --force to replace it") }
        let crl = try await Workspace.with(home, create: false) { workspace in
            let record = try await workspace.authority.resolveIssuerForCommand(issuer)
            try await workspace.authority.unlock(record.name, passphrase: try passphrase.caPassphrase(for: record.name, confirm: false))
            return try await workspace.authority.generateCRL(issuer: record.name, actor: commandLineActor)
        }
        let bytes = format == "pem" ? Array(PEM.encode(label: "X509 CRL", der: crl.der).utf8) : crl.der
        try emit(bytes, to: out, force: force)
        if out != nil { Console.current.error("Wrote CRL number \(crl.number) of '\(crl.issuer)' with \(crl.entries) entries") }
    }
}

struct CRLShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a CRL and, given the issuer certificate, check its signature.")
    @Argument(help: ArgumentHelp("The CRL (DER or PEM).", valueName: "file")) var file: String
    @Option(name: .customLong("issuer-cert"), help: ArgumentHelp("The issuer's certificate, to verify the signature.", valueName: "file"))
    var issuerCert: String?
    @Option(help: ArgumentHelp("List at most this many entries (default 20).", valueName: "n")) var entries: Int = 20
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let crl = try CertificateRevocationList(pemOrDER: try Files.read(file, what: "CRL"), source: file)
        var valid: Bool?
        if let issuerCert {
            let certificate = try X509Certificate(pemOrDER: try Files.read(issuerCert, what: "certificate"), source: issuerCert)
            guard let key = certificate.publicKey else { throw SigilError.unsupported("the issuer certificate's key is not supported") }
            valid = crl.isSigned(by: key)
        }
        let shown = crl.entries.prefix(max(0, entries))
        if json {
            var object: [String: Any] = [
                "issuer": crl.issuer.openSSLString, "version": crl.version + 1, "this_update": iso(crl.thisUpdate),
                "next_update": crl.nextUpdate.map(iso) as Any? ?? NSNull(), "crl_number": crl.crlNumber as Any? ?? NSNull(),
                "entries": crl.entries.count, "signature_algorithm": crl.signatureAlgorithm.description,
                "issuing_distribution_point": crl.issuingDistributionPoint as Any? ?? NSNull(),
                "signature_valid": valid as Any? ?? NSNull(),
                "revoked": shown.map { entry -> [String: Any] in
                    ["serial": Hex.encode(entry.serial), "revoked_at": iso(entry.revocationDate), "reason": entry.reason?.name as Any? ?? NSNull(),
                     "invalidity_date": entry.invalidityDate.map(iso) as Any? ?? NSNull()]
                },
            ]
            if crl.entries.count > shown.count { object["truncated"] = true }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            Console.current.print(String(decoding: data, as: UTF8.self))
        } else {
            let console = Console.current
            func line(_ label: String, _ value: String) { console.print(label.padding(toLength: 22, withPad: " ", startingAt: 0) + value) }
            line("CRL:", file)
            line("Issuer:", crl.issuer.openSSLString)
            line("Version:", "v\(crl.version + 1)")
            line("CRL number:", crl.crlNumber.map(String.init) ?? "(none)")
            line("This update:", iso(crl.thisUpdate))
            line("Next update:", crl.nextUpdate.map(iso) ?? "(none)")
            line("Distribution point:", crl.issuingDistributionPoint ?? "(none)")
            line("Signature algorithm:", crl.signatureAlgorithm.description)
            if let valid { line("Signature:", valid ? "valid" : "INVALID") }
            line("Revoked certificates:", String(crl.entries.count))
            for entry in shown {
                console.print("  \(Hex.encode(entry.serial))  \(iso(entry.revocationDate))  \(entry.reason?.name ?? "unspecified")")
            }
            if crl.entries.count > shown.count { console.print("  … \(crl.entries.count - shown.count) more") }
        }
        if valid == false { throw ExitCode(1) }
    }
}
