import ArgumentParser
import Foundation
import SigilCore
import SigilServer
import SigilStore

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports over the inventory.",
        subcommands: [ComplianceReportCommand.self]
    )
}

/// `sigil report compliance`: the compliance engine's findings over the store, written for a
/// terminal, a program, a spreadsheet or a browser, and a CI gate (`--fail-on`).
struct ComplianceReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compliance",
        abstract: "Weak keys, SHA-1/MD5, validity beyond policy, expired or unknown certificates in use, wildcards, shared keys, crypto agility.",
        discussion: """
            Each finding names its certificate, where it was seen (sigil scan / sigil import) and the controls it \
            bears on (PCI DSS v4.0 4.2.1 and 4.2.1.1, NIST SP 800-52 Rev. 2, NIST SP 800-57 Part 1 Rev. 5, \
            ISO/IEC 27001:2022 A.8.24). The dashboard's compliance page and GET /api/v1/reports/compliance use \
            the same engine. Exit 1 with --fail-on when a finding is at or above that severity; 2 for bad flags.
            """)

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The database: a SQLite path or postgres://… URL (default: $SIGIL_DATABASE, sigil.yaml `database`, SIGIL_HOME/sigil.db).", valueName: "url"))
    var database: String?
    @Option(help: ArgumentHelp("text, json, csv or html.", valueName: "format")) var format: String = "text"
    @Option(help: ArgumentHelp("Write the report to this file (atomically, mode 0644; replaces it) instead of standard output.", valueName: "file"))
    var output: String?
    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when any finding is at or above this severity: info, low, medium, high or critical.", valueName: "severity"))
    var failOn: String?
    @Option(name: .customLong("expiring-within"), help: ArgumentHelp("In-use certificates expiring within this are findings (30d, 2w, 12h; a bare number is days).", valueName: "duration"))
    var expiringWithin: String = "30d"
    @Option(name: .customLong("seen-within"), help: ArgumentHelp("A certificate seen on a TLS endpoint within this is in use.", valueName: "duration"))
    var seenWithin: String = "30d"
    @Option(name: .customLong("max-validity"), help: ArgumentHelp("Maximum validity of TLS certificates in days (default: the CA/B Forum Baseline Requirements maximum at each certificate's notBefore).", valueName: "days"))
    var maxValidity: Int?

    func validate() throws {
        guard ComplianceReportFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be text, json, csv or html, not '\(format)'")
        }
        if let failOn, ComplianceSeverity(rawValue: failOn) == nil {
            throw ValidationError("--fail-on must be info, low, medium, high or critical, not '\(failOn)'")
        }
        _ = try Self.duration(expiringWithin, flag: "--expiring-within")
        _ = try Self.duration(seenWithin, flag: "--seen-within")
        if let maxValidity, !(1...36_500).contains(maxValidity) {
            throw ValidationError("--max-validity must be a number of days from 1 to 36500, not \(maxValidity)")
        }
        if let output, output.isEmpty { throw ValidationError("--output needs a file name") }
    }

    static func duration(_ text: String, flag: String) throws -> TimeInterval {
        guard let seconds = DurationText.seconds(in: text, bare: .days) else {
            throw ValidationError("\(flag) must be a duration such as 30d, 2w or 12h, not '\(text)'")
        }
        return seconds
    }

    func run() async throws {
        let policy = CompliancePolicy(seenWithin: try Self.duration(seenWithin, flag: "--seen-within"),
                                      expiringWithin: try Self.duration(expiringWithin, flag: "--expiring-within"), maxValidityDays: maxValidity)
        // A report reads: it never creates a database where none is.
        let settings = try SigilConfiguration.load(home: home.path)
        let location = Workspace.databaseLocation(home: home.path, flag: database, file: settings.database)
        if FileManager.default.fileExists(atPath: home.path), case .sqlite(let path)? = try? DatabaseURL.parse(location),
           !FileManager.default.fileExists(atPath: path) {
            throw SigilError.badInput("there is no SQLite database at \(path)")
        }
        let workspace = try await Workspace.open(home, create: false, configuration: settings, databasePath: database)
        let report: ComplianceReport
        do {
            let now = workspace.authority.clock.now()
            report = try await workspace.store.read { try await $0.complianceReport(policy, now: now, examples: nil) }
            await workspace.close()
        } catch {
            await workspace.close()
            throw error
        }
        try emit(try ComplianceReportFormat(rawValue: format)!.render(report), to: output, mode: 0o644, force: true)
        if let failOn, let threshold = ComplianceSeverity(rawValue: failOn) {
            let failing = report.results.filter { $0.check.severity >= threshold }.map(\.count).reduce(0, +)
            if failing > 0 {
                Console.current.error("sigil: \(failing) finding\(failing == 1 ? "" : "s") at or above \(threshold.rawValue) (--fail-on \(threshold.rawValue))")
                throw ExitCode(1)
            }
        }
    }
}
