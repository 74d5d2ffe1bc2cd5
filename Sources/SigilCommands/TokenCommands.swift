import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens with a role (admin, operator, requester, auditor).",
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self]
    )
}

struct TokenReport: Encodable {
    var record: TokenRecord
    var token: String?
    enum Keys: String, CodingKey {
        case id, name, role, token
        case allowedNames = "allowed_names", createdAt = "created_at", createdBy = "created_by", expiresAt = "expires_at"
        case revokedAt = "revoked_at", lastUsedAt = "last_used_at"
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(record.id, forKey: .id)
        try c.encode(record.name, forKey: .name)
        try c.encode(record.role, forKey: .role)
        if let token { try c.encode(token, forKey: .token) }
        try c.encode(record.allowedNames, forKey: .allowedNames)
        try c.encode(iso(record.createdAt), forKey: .createdAt)
        try c.encode(record.createdBy, forKey: .createdBy)
        try c.encode(record.expiresAt.map(iso), forKey: .expiresAt)
        try c.encode(record.revokedAt.map(iso), forKey: .revokedAt)
        try c.encode(record.lastUsedAt.map(iso), forKey: .lastUsedAt)
    }
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
        let lifetime = try expires.map(parseDuration)
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
