import ArgumentParser
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore

struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Requests waiting for a person's decision.",
        subcommands: [RequestList.self, RequestShow.self, RequestApprove.self, RequestReject.self]
    )
}


struct RequestList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List requests (default: pending ones).")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("pending, issued, rejected or all.", valueName: "status")) var status: String = "pending"
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let filter: RequestStatus?
        if status == "all" { filter = nil } else {
            guard let parsed = RequestStatus(rawValue: status) else { throw SigilError.badInput("--status must be pending, issued, rejected or all") }
            filter = parsed
        }
        let records = try await Workspace.with(home, create: false) { workspace in
            try await workspace.store.read { try await $0.requests(status: filter) }
        }
        if json { return try JSONOutput.print(records.map(RequestReport.init)) }
        if records.isEmpty { return Console.current.print("No \(status == "all" ? "" : status + " ")requests.") }
        Console.current.print(table(["ID", "STATUS", "PROFILE", "REQUESTER", "CREATED", "NAMES"],
                                    records.map { [$0.id, $0.status.rawValue, $0.profile, $0.requester, iso($0.createdAt), $0.names.joined(separator: ",")] }))
    }
}

struct RequestShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a request and what its CSR asks for.")
    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The request id.", valueName: "id")) var id: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let record = try await Workspace.with(home, create: false) { workspace in
            guard let record = try await workspace.store.read({ [id] in try await $0.request(id: id) }) else {
                throw SigilError.badInput("no request with id '\(id)'")
            }
            return record
        }
        if json { return try JSONOutput.print(RequestReport(record: record)) }
        let console = Console.current
        func line(_ label: String, _ value: String) { console.print(label.padding(toLength: 12, withPad: " ", startingAt: 0) + value) }
        line("Request:", record.id)
        line("Status:", record.status.rawValue)
        line("Profile:", record.profile)
        line("Requester:", record.requester)
        line("Subject:", record.subject)
        line("Names:", record.names.joined(separator: ", "))
        line("Created:", iso(record.createdAt))
        for reason in record.reasons { line("Note:", reason) }
        if let by = record.decidedBy { line("Decided:", "\(record.decidedAt.map(iso) ?? "") by \(by)") }
        if let serial = record.certificateSerial { line("Serial:", serial) }
    }
}

struct RequestApprove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve a pending request and issue its certificate.")
    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The request id.", valueName: "id")) var id: String
    @Option(help: ArgumentHelp("A note for the audit trail.", valueName: "text")) var reason: String?
    @Option(help: ArgumentHelp("Where to write the certificate (default: standard output).", valueName: "file")) var out: String?
    @Flag(help: "Replace an existing output file.") var force = false
    @OptionGroup var passphrase: PassphraseSource

    func run() async throws {
        if let out, !force, FileManager.default.fileExists(atPath: out) { throw SigilError(.alreadyExists, "\(out) already exists; use --force to replace it") }
        let issued = try await Workspace.with(home, create: false) { workspace in
            guard let request = try await workspace.store.read({ [id] in try await $0.request(id: id) }) else {
                throw SigilError.badInput("no request with id '\(id)'")
            }
            let issuer = try await workspace.authority.resolveIssuerForCommand(request.issuer)
            try await workspace.authority.unlock(issuer.name, passphrase: try passphrase.caPassphrase(for: issuer.name, confirm: false))
            return try await workspace.authority.approve(requestID: id, actor: commandLineActor, note: reason)
        }
        try emit(Array(issued.certificate.pemString.utf8), to: out, force: force)
        Console.current.error("Approved request \(id): issued certificate \(issued.record.serial)")
    }
}

struct RequestReject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a pending request.")
    @OptionGroup var home: HomeOptions
    @Argument(help: ArgumentHelp("The request id.", valueName: "id")) var id: String
    @Option(help: ArgumentHelp("Why (recorded and shown to the requester).", valueName: "text")) var reason: String

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must not be empty") }
    }

    func run() async throws {
        _ = try await Workspace.with(home, create: false) { workspace in
            try await workspace.authority.reject(requestID: id, reason: reason, actor: commandLineActor)
        }
        Console.current.print("Rejected request \(id).")
    }
}
