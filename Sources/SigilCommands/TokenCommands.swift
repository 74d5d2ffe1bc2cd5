import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens with a role (admin, operator, requester, auditor).",
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self]
    )
}


struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a token; it is shown once, now.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("admin, operator, requester or auditor.", valueName: "role")) var role: String
    @Option(help: ArgumentHelp("A unique name.", valueName: "name")) var name: String
    @Option(help: ArgumentHelp("Lifetime, e.g. 30d or 12h (default: no expiry).", valueName: "duration")) var expires: String?
    @Option(name: .customLong("allow"), help: ArgumentHelp("A name pattern the token may request (e.g. *.ci.example.com). Repeatable.", valueName: "pattern"))
    var allow: [String] = []
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        guard let parsedRole = Role(rawValue: role) else { throw SigilError.badInput("--role must be admin, operator, requester or auditor") }
        let lifetime = try expires.map { try parseDuration($0, what: "--expires") }
        let (record, secret) = try await Workspace.with(home) { workspace in
            try await AccessTokens(store: workspace.store).create(name: name, role: parsedRole, expiresIn: lifetime, allowedNames: allow, actor: commandLineActor)
        }
        if json { return try JSONOutput.print(TokenReport(record: record, token: secret)) }
        Console.current.print(secret)
        Console.current.error("Token '\(record.name)' (\(record.role)) created; it is not shown again.")
    }
}

struct TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (never their secrets).")
    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let records = try await Workspace.with(home, create: false) { try await AccessTokens(store: $0.store).list() }
        if json { return try JSONOutput.print(records.map { TokenReport(record: $0, token: nil) }) }
        let now = Date()
        Console.current.print(table(["ID", "NAME", "ROLE", "STATE", "EXPIRES"], records.map { r in
            [r.id, r.name, r.role, r.revokedAt != nil ? "revoked" : (r.isUsable(at: now) ? "active" : "expired"), r.expiresAt.map(iso) ?? "never"]
        }))
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by id or name.")
    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The token's id or name.", valueName: "id|name")) var token: String

    func run() async throws {
        let record = try await Workspace.with(home, create: false) { try await AccessTokens(store: $0.store).revoke(token, actor: commandLineActor) }
        Console.current.print("Revoked token '\(record.name)'.")
    }
}
