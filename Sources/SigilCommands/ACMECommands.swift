import ArgumentParser
import Foundation
import SigilACME
import SigilCore
import SigilStore

struct ACMECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acme",
        abstract: "The ACME server's accounts: External Account Binding keys.",
        subcommands: [EABCommand.self]
    )
}

struct EABCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eab",
        abstract: "External Account Binding keys (RFC 8555 §7.3.4), required for new ACME accounts by default.",
        subcommands: [EABCreate.self, EABList.self, EABRevoke.self]
    )
}

struct EABKeyReport: Encodable {
    var kid: String
    var name: String
    var hmacKey: String?
    var allowedNames: [String]
    var createdAt: String
    var account: String?
    var revokedAt: String?

    enum CodingKeys: String, CodingKey {
        case kid, name, hmacKey = "hmac_key", allowedNames = "allowed_names", createdAt = "created_at", account, revokedAt = "revoked_at"
    }

    init(_ r: ACMEEABKeyRecord, showSecret: Bool) {
        kid = r.id
        name = r.name
        hmacKey = showSecret ? r.hmacKey : nil
        allowedNames = r.allowedNames
        createdAt = RFC3339.string(r.createdAt)
        account = r.accountID
        revokedAt = r.revokedAt.map(RFC3339.string)
    }
}

struct EABCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a key for one ACME client; its HMAC key is shown once, now.",
        discussion: "Give the two values to the client: lego --eab --kid KID --hmac KEY, certbot --eab-kid KID --eab-hmac-key KEY.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("A unique name (who the key is for).", valueName: "name")) var name: String
    @Option(name: .customLong("allow"), help: ArgumentHelp("A name pattern the bound account may order (e.g. *.corp.example). Repeatable.", valueName: "pattern"))
    var allow: [String] = []
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let record = try await Workspace.with(home) { workspace in
            try await ExternalAccountKeys(store: workspace.store).create(name: name, allowedNames: allow, actor: commandLineActor)
        }
        if json { return try JSONOutput.print(EABKeyReport(record, showSecret: true)) }
        Console.current.print("kid: \(record.id)")
        Console.current.print("hmac key: \(record.hmacKey)")
        Console.current.error("EAB key '\(record.name)' created; the HMAC key is not shown again.")
    }
}

struct EABList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List EAB keys (never their HMAC keys).")
    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let records = try await Workspace.with(home, create: false) { try await ExternalAccountKeys(store: $0.store).list() }
        if json { return try JSONOutput.print(records.map { EABKeyReport($0, showSecret: false) }) }
        Console.current.print(table(["KID", "NAME", "STATE", "ALLOWED", "ACCOUNT"], records.map { r in
            [r.id, r.name, r.revokedAt != nil ? "revoked" : (r.accountID != nil ? "bound" : "unused"),
             r.allowedNames.isEmpty ? "any" : r.allowedNames.joined(separator: ","), r.accountID ?? "-"]
        }))
    }
}

struct EABRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an unused EAB key by kid or name.")
    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The key's kid or name.", valueName: "kid|name")) var key: String

    func run() async throws {
        let record = try await Workspace.with(home, create: false) { try await ExternalAccountKeys(store: $0.store).revoke(key, actor: commandLineActor) }
        Console.current.print("Revoked EAB key '\(record.name)'.")
    }
}
