import ArgumentParser
import Foundation
import SigilCore
import SigilDiscovery
import SigilStore

/// `sigil scan`: TLS endpoint discovery into the inventory.
struct ScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Scan TLS endpoints and record every certificate they present.",
        discussion: """
            Targets: host:port, host:443,8443, host (uses --ports), IPv4 and IPv6 addresses ([::1]:443), \
            CIDR blocks (10.0.0.0/28:443,8443) and ranges (10.0.0.1-10.0.0.20 or 10.0.0.1-20). \
            Certificates are accepted whatever they are (this is inventory, not trust). \
            Exit codes: 0 the scan ran (unreachable endpoints are listed), 1 no endpoint answered, 2 bad targets.
            """
    )

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The database (default: SIGIL_HOME/sigil.db, $SIGIL_DATABASE).", valueName: "url")) var database: String?
    @Argument(help: ArgumentHelp("Targets to scan.", valueName: "target")) var targets: [String] = []
    @Option(name: .customLong("file"), help: ArgumentHelp("A file of targets (whitespace-separated, # comments). Repeatable.", valueName: "file"))
    var files: [String] = []
    @Option(help: ArgumentHelp("Ports for targets that name none (default 443), e.g. 443,8443 or 8000-8010.", valueName: "ports")) var ports: String?
    @Option(help: ArgumentHelp("The SNI name to send (default: the target's name; none for addresses).", valueName: "name")) var sni: String?
    @Option(help: ArgumentHelp("Endpoints probed at once (1-1024).", valueName: "n")) var concurrency: Int = ScanLimits.defaultConcurrency
    @Option(help: ArgumentHelp("Connect and handshake timeout, e.g. 5s or 500ms.", valueName: "duration")) var timeout: String = "5s"
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        guard !targets.isEmpty || !files.isEmpty else { throw SigilError.badInput("give at least one target or --file") }
        let timeout = try parseTimeout(self.timeout)
        try Discovery.checkLimits(timeout: timeout, concurrency: concurrency)
        let fileTexts = try files.map { path in
            // A missing targets file is a wrong argument (exit 2), not a failed operation.
            guard FileManager.default.fileExists(atPath: path) else { throw SigilError.badInput("targets file \(path) does not exist") }
            return (path: path, text: String(decoding: try Files.read(path, what: "targets file"), as: UTF8.self))
        }
        let parsed = try Discovery.targets(targets, files: fileTexts, ports: try ports.map(ScanTargets.parsePorts), serverName: sni)
        let progress = ProgressBar(unit: "endpoints")
        let summary = try await Workspace.with(home, databasePath: database) { workspace in
            try await Discovery.scan(parsed, timeout: timeout, concurrency: concurrency, store: workspace.store, actor: commandLineActor,
                                     clock: workspace.authority.clock) { done, total in progress.update(done, of: total) }
        }
        progress.finish()
        if json {
            try JSONOutput.print(summary)
        } else {
            printSummary(summary)
        }
        if summary.endpointsReached == 0 {
            throw SigilError(.io, "none of the \(summary.endpointsScanned) endpoints could be scanned")
        }
    }

    private func printSummary(_ summary: ScanSummary) {
        let console = Console.current
        if !summary.endpoints.isEmpty {
            console.print(table(["ENDPOINT", "SNI", "ADDRESS", "TLS", "CIPHER", "CERTS"], summary.endpoints.map {
                [$0.location, $0.serverName.isEmpty ? "-" : $0.serverName, $0.address ?? "-", $0.tlsVersion ?? "-", $0.cipher ?? "-", "\($0.chain.count)"]
            }))
        }
        if !summary.unreachable.isEmpty {
            console.print("Unreachable:")
            for endpoint in summary.unreachable { console.print("  \(endpoint.location): \(endpoint.reason)") }
        }
        let counts = summary.inventory
        console.print("Endpoints: \(summary.endpointsScanned) scanned, \(summary.endpointsReached) answered, \(summary.endpointsUnreachable) unreachable.")
        console.print("Certificates: \(counts.certificatesFound) found, \(counts.newCertificates) new to the inventory, \(counts.knownCertificates) already known, \(counts.expired) expired still in use.")
    }
}

/// `sigil import`: certificates from files into the inventory.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import certificates from files and directories (PEM, DER, PKCS#7) into the inventory.",
        discussion: """
            Directories are read recursively. Files that hold no certificate are listed as junk, \
            unreadable ones as skipped; neither stops the import. Private keys are skipped unread. \
            Exit codes: 0 the import ran, 2 a path does not exist.
            """
    )

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The database (default: SIGIL_HOME/sigil.db, $SIGIL_DATABASE).", valueName: "url")) var database: String?
    @Argument(help: ArgumentHelp("Files and directories.", valueName: "path")) var paths: [String] = []
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        guard !paths.isEmpty else { throw SigilError.badInput("give at least one file or directory") }
        let progress = ProgressBar(unit: "files")
        let summary = try await Workspace.with(home, databasePath: database) { workspace in
            try await Discovery.importFiles(paths, store: workspace.store, actor: commandLineActor, clock: workspace.authority.clock) { progress.update($0, of: nil) }
        }
        progress.finish()
        if json { return try JSONOutput.print(summary) }
        let console = Console.current
        for file in summary.files { console.print("\(file.path): \(file.certificates.count) certificate(s)") }
        for junk in summary.junk { console.print("junk: \(junk.path): \(junk.reason)") }
        for skipped in summary.skipped { console.print("skipped: \(skipped.path): \(skipped.reason)") }
        let counts = summary.inventory
        console.print("Files: \(summary.filesRead) read, \(summary.filesWithCertificates) with certificates, \(summary.junk.count) junk, \(summary.skipped.count) skipped, \(summary.privateKeysSkipped) private key(s) skipped.")
        console.print("Certificates: \(counts.certificatesFound) found, \(counts.newCertificates) new to the inventory, \(counts.knownCertificates) already known, \(counts.expired) expired.")
    }
}

/// `5s`, `500ms`, `2m`; a bare number is seconds.
func parseTimeout(_ text: String) throws -> Duration {
    let seconds = try DurationText.parse(text, what: "timeout", bare: .seconds)
    return .milliseconds(Int64((seconds * 1000).rounded()))
}

/// A one-line progress bar on standard error, only when it is a terminal (never in
/// pipes, logs or tests). @unchecked: updates come from concurrent probes, so the
/// state is behind a lock.
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let unit: String
    private let enabled: Bool
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(unit: String) {
        self.unit = unit
        enabled = Console.current === Console.standard && isatty(STDERR_FILENO) == 1
    }

    func update(_ done: Int, of total: Int?) {
        guard enabled else { return }
        lock.withLock {
            let now = Date()
            guard now.timeIntervalSince(lastDraw) >= 0.1 || done == total else { return }
            lastDraw = now
            var line = "\r\u{1B}[K"
            if let total, total > 0 {
                let width = 30
                let filled = width * done / total
                line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) \(unit)"
            } else {
                line += "\(done) \(unit) read"
            }
            FileHandle.standardError.write(Data(line.utf8))
            drawn = true
        }
    }

    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            drawn = false
        }
    }
}
