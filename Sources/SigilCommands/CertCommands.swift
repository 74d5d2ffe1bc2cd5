import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore

struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "The certificate inventory.",
        subcommands: [CertList.self, CertShow.self, CertRevoke.self]
    )
}


struct CertList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List certificates in the inventory.")

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("Only certificates expiring within this time (e.g. 30d).", valueName: "duration")) var expiring: String?
    @Option(help: ArgumentHelp("active, revoked or expired.", valueName: "status")) var status: String?
    @Option(help: ArgumentHelp("CN or SAN pattern (* is a wildcard), a serial or a fingerprint.", valueName: "pattern")) var name: String?
    @Option(help: ArgumentHelp("Only this owner's certificates.", valueName: "owner")) var owner: String?
    @Option(help: ArgumentHelp("Only certificates from this issuer.", valueName: "name")) var issuer: String?
    @Option(help: ArgumentHelp("Only certificates of this profile.", valueName: "profile")) var profile: String?
    @Option(help: ArgumentHelp("At most this many (default 1000).", valueName: "n")) var limit: Int = 1000
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let now = Date()
        var query = CertificateQuery(now: now, limit: max(1, min(limit, 100_000)))
        if let status {
            guard let parsed = CertificateStatus(rawValue: status.lowercased()) else {
                throw SigilError.badInput("--status must be active, revoked or expired, not '\(status)'")
            }
            query.status = parsed
        }
        if let expiring { query.expiringBefore = now.addingTimeInterval(try parseDuration(expiring, what: "--expiring")) }
        query.namePattern = name
        query.owner = owner
        query.issuer = issuer
        query.profile = profile
        let records = try await Workspace.with(home, create: false) { workspace in
            try await workspace.store.read { [query] in try await $0.certificates(query) }
        }
        if json {
            try JSONOutput.print(records.map { CertificateReport($0, now: now) })
            return
        }
        if records.isEmpty {
            Console.current.print("No certificates match.")
            return
        }
        let rows = records.map { r in
            [r.serial, r.status(at: now).rawValue, iso(r.notAfter), r.profile ?? "-", r.commonName ?? r.sans.first ?? r.subject]
        }
        Console.current.print(table(["SERIAL", "STATUS", "EXPIRES", "PROFILE", "NAME"], rows))
    }
}

struct CertShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one certificate by serial or SHA-256 fingerprint.")

    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("A serial (hex) or a SHA-256 fingerprint (hex, colons allowed).", valueName: "serial|fingerprint")) var id: String
    @Flag(help: "Print the certificate as PEM.") var pem = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let record = try await Workspace.with(home, create: false) { workspace in
            try await workspace.authority.findCertificate(id)
        }
        if pem {
            Console.current.write(Array(record.pem.utf8))
            return
        }
        let now = Date()
        if json {
            try JSONOutput.print(CertificateReport(record, now: now))
            return
        }
        let console = Console.current
        func line(_ label: String, _ value: String) { console.print(label.padding(toLength: 20, withPad: " ", startingAt: 0) + value) }
        line("Serial:", record.serial)
        line("Status:", record.status(at: now).rawValue + (record.revocationReason.map { " (reason \($0))" } ?? ""))
        line("Subject:", record.subject)
        line("Subject alt names:", record.sans.isEmpty ? "(none)" : record.sans.joined(separator: ", "))
        line("Issuer:", record.issuer)
        line("Valid:", "\(iso(record.notBefore)) to \(iso(record.notAfter)) (\(Int(record.notAfter.timeIntervalSince(now) / 86_400)) days left)")
        line("Key:", "\(record.keyType) (\(record.keyAlgorithm))")
        line("Signature:", record.signatureAlgorithm)
        line("Profile:", record.profile ?? "-")
        line("Source:", record.source.rawValue)
        if let owner = record.owner { line("Owner:", owner) }
        if !record.tags.isEmpty { line("Tags:", record.tags.joined(separator: ", ")) }
        line("SHA-256:", colonHex(record.fingerprint))
    }

}


struct CertRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a certificate (RFC 5280 reason codes).",
        discussion: """
            Reasons: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, \
            cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise. A certificate on \
            hold is released with --reason removeFromCRL.
            """
    )

    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("A serial (hex) or a SHA-256 fingerprint.", valueName: "serial|fingerprint")) var id: String
    @Option(help: ArgumentHelp("The reason (default: unspecified).", valueName: "reason")) var reason: String = "unspecified"
    @Option(name: .customLong("invalidity-date"), help: ArgumentHelp("When the key became unsafe (RFC 3339).", valueName: "time"))
    var invalidityDate: String?
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup(title: "To rebuild the issuer's CRL at once (otherwise it is rebuilt on its next request)") var passphrase: PassphraseSource

    func run() async throws {
        let parsedReason = try RevocationReason(parsing: reason)
        var invalidity: Date?
        if let invalidityDate {
            guard let parsed = try? Date(invalidityDate, strategy: .iso8601) else {
                throw SigilError.badInput("--invalidity-date '\(invalidityDate)' is not an RFC 3339 time such as 2026-11-30T12:00:00Z")
            }
            invalidity = parsed
        }
        let record = try await Workspace.with(home, create: false) { workspace in
            if passphrase.isGiven {
                let found = try await workspace.authority.findCertificate(id)
                if let issuer = try? await workspace.authority.issuer(found.issuer), issuer.status == .active {
                    try await workspace.authority.unlock(issuer.name, passphrase: try passphrase.caPassphrase(for: issuer.name, confirm: false))
                }
            }
            return try await workspace.authority.revoke(id, reason: parsedReason, invalidityDate: invalidity, actor: commandLineActor)
        }
        if json { return try JSONOutput.print(CertificateReport(record, now: Date())) }
        if parsedReason == .removeFromCRL {
            Console.current.print("Released certificate \(record.serial) from hold.")
        } else {
            Console.current.print("Revoked certificate \(record.serial) (\(parsedReason.name)).")
        }
    }
}
