import ArgumentParser
import Foundation
import SigilCore
import SigilStore

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database schema's migrations and print its version.",
        discussion: """
            Every command and `sigil serve` migrate on start; this does it alone, e.g. before starting \
            several nodes. On PostgreSQL an advisory lock makes concurrent runs wait for each other, \
            so the schema is migrated once.
            """)
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("A SQLite path or postgres://… URL (default: $SIGIL_DATABASE, sigil.yaml `database`, SIGIL_HOME/sigil.db).", valueName: "url"))
    var database: String?

    func run() async throws {
        let configuration = try SigilConfiguration.load(home: home.path)
        let location = Workspace.databaseLocation(home: home.path, flag: database, file: configuration.database)
        let store = try await Workspace.openStore(location)
        do {
            try await store.migrate()
            let version = try await store.schemaVersion()
            try? await store.close()
            Console.current.print("schema version \(version) (\(DatabaseURL.redact(location)))")
        } catch {
            try? await store.close()
            throw SigilError(.io, "cannot migrate \(DatabaseURL.redact(location)): \(error)")
        }
    }
}

struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Move an installation between databases.",
        subcommands: [StoreCopyCommand.self])
}

struct StoreCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy every table (issuers with their encrypted keys, certificates, requests, tokens, CRLs, audit) into an empty database.",
        discussion: """
            Rows are copied verbatim, so the audit chain verifies on the target. The target must be \
            empty; the copy is one transaction there, so a failure leaves it empty. Stop the servers \
            on the source first. Exit 1 when the target is not empty or the copy fails.
            """)
    @Option(help: ArgumentHelp("The source: a SQLite path or sqlite://PATH (or postgres://…).", valueName: "url")) var from: String
    @Option(help: ArgumentHelp("The target: postgres://… (or a SQLite path).", valueName: "url")) var to: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let source = try await Workspace.openStore(from, mustExist: true)
        let target: any Store
        do {
            target = try await Workspace.openStore(to)
        } catch {
            try? await source.close()
            throw error
        }
        let counts: [StoreCopy.TableCount]
        do {
            counts = try await StoreCopy.copy(from: source, to: target)
        } catch {
            try? await source.close()
            try? await target.close()
            throw SigilError(.conflict, "nothing was copied: \(error)")
        }
        try? await source.close()
        try? await target.close()
        if json {
            try JSONOutput.print(Report(from: DatabaseURL.redact(from), to: DatabaseURL.redact(to), tables: Dictionary(uniqueKeysWithValues: counts.map { ($0.table, $0.rows) })))
        } else {
            for count in counts { Console.current.print("\(count.table): \(count.rows)") }
            Console.current.print("copied \(counts.reduce(0) { $0 + $1.rows }) rows from \(DatabaseURL.redact(from)) to \(DatabaseURL.redact(to))")
        }
    }

    struct Report: Encodable {
        var from: String
        var to: String
        var tables: [String: Int]
    }
}
