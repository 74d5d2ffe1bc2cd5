import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The tamper-evident audit trail.",
        subcommands: [AuditVerify.self, AuditList.self, AuditExport.self]
    )
}


func allAuditEntries(_ store: any Store) async throws -> [AuditEntry] {
    var entries: [AuditEntry] = []
    while true {
        let after = entries.last?.seq ?? 0
        let page = try await store.read { try await $0.auditEntries(afterSeq: after, limit: 5000) }
        entries += page
        if page.count < 5000 { return entries }
    }
}

struct AuditVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the hash chain; name the first changed, removed or reordered entry (exit 1).")
    @OptionGroup var home: HomeOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let result = try await Workspace.with(home, create: false) { try await $0.authority.verifyAudit() }
        if json {
            try JSONOutput.print(VerificationReport(result))
        } else if result.ok {
            Console.current.print("Audit chain intact: \(result.entries) entries, head \(result.headHash.prefix(16))…")
        } else {
            Console.current.print("Audit chain BROKEN at entry \(result.firstBadSeq ?? 0): \(result.problem ?? "")")
        }
        if !result.ok { throw ExitCode(1) }
    }

    struct VerificationReport: Encodable {
        var result: AuditChain.Verification
        init(_ result: AuditChain.Verification) { self.result = result }
        enum Keys: String, CodingKey { case ok, entries, firstBadSeq = "first_bad_seq", problem, headHash = "head_hash" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(result.ok, forKey: .ok)
            try c.encode(result.entries, forKey: .entries)
            try c.encode(result.firstBadSeq, forKey: .firstBadSeq)
            try c.encode(result.problem, forKey: .problem)
            try c.encode(result.headHash, forKey: .headHash)
        }
    }
}

struct AuditList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List audit entries.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("Only entries by this actor.", valueName: "actor")) var actor: String?
    @Option(help: ArgumentHelp("Only this action (e.g. certificate.issued).", valueName: "action")) var action: String?
    @Option(help: ArgumentHelp("Only the last N entries.", valueName: "n")) var last: Int?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        var entries = try await Workspace.with(home, create: false) { try await allAuditEntries($0.store) }
        if let actor { entries = entries.filter { $0.actor == actor } }
        if let action { entries = entries.filter { $0.action == action } }
        if let last { entries = Array(entries.suffix(max(0, last))) }
        if json { return try JSONOutput.print(entries.map(AuditEntryReport.init)) }
        Console.current.print(table(["SEQ", "TIME", "ACTOR", "ACTION", "OBJECT"],
                                    entries.map { [String($0.seq), iso($0.time), $0.actor, $0.action, $0.object] }))
    }
}

struct AuditExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export the whole trail as JSON or CSV, hashes included.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("json or csv.", valueName: "format")) var format: String = "json"
    @Option(help: ArgumentHelp("Where to write (default: standard output).", valueName: "file")) var out: String?
    @Flag(help: "Replace an existing file.") var force = false

    func validate() throws {
        guard ["json", "csv"].contains(format) else { throw ValidationError("--format must be json or csv") }
    }

    func run() async throws {
        let entries = try await Workspace.with(home, create: false) { try await allAuditEntries($0.store) }
        let bytes: [UInt8]
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            bytes = Array(try encoder.encode(entries.map(AuditEntryReport.init))) + [0x0a]
        } else {
            func field(_ text: String) -> String {
                text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
            }
            var lines = ["seq,time,actor,action,object,details,prev_hash,hash"]
            for e in entries {
                lines.append([String(e.seq), e.time.formatted(.iso8601), e.actor, e.action, e.object, e.details, e.prevHash, e.hash].map(field).joined(separator: ","))
            }
            bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        }
        try emit(bytes, to: out, force: force)
    }
}
