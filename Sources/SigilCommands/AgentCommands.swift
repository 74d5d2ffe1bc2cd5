import ArgumentParser
import Foundation
import SigilAgent
import SigilCore
import Synchronization

/// `sigil agent`: obtains, renews and deploys certificates on this host.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Keep certificates on this host obtained, renewed, deployed and reloaded (ACME or Sigil's REST API).",
        discussion: """
            `sigil agent [run] --config FILE [--once]` runs as a daemon (SIGTERM stops it cleanly, SIGHUP reads the configuration again), or makes one pass with --once. \
            The configuration defaults to $SIGIL_AGENT_CONFIG, else $SIGIL_HOME/agent.yaml. \
            Exit codes: 0 every certificate is fine; 1 a renewal, deployment or reload failed (see `sigil agent status`); \
            2 bad usage or a bad configuration file.
            """,
        subcommands: [AgentRun.self, AgentStatusCommand.self, AgentRenew.self, AgentRollback.self],
        defaultSubcommand: AgentRun.self
    )
}

struct AgentConfigOption: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("The agent's YAML configuration (default: $SIGIL_AGENT_CONFIG, else $SIGIL_HOME/agent.yaml).", valueName: "file"))
    var config: String?

    func load() throws -> AgentConfiguration {
        let environment = Console.current.environment
        let path = config ?? environment["SIGIL_AGENT_CONFIG"]
            ?? ((environment["SIGIL_HOME"] ?? (NSHomeDirectory() + "/.sigil")) + "/agent.yaml")
        return try AgentConfiguration.load(path: path)
    }

    func agent() throws -> Agent {
        let configuration = try load()
        return try Agent(configuration: configuration, environment: Console.current.environment) { line in
            Console.current.error("sigil agent: \(RFC3339.string(Date())) \(line)")
        }
    }
}

struct AgentRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent: as a daemon, or one pass with --once.",
        discussion: "Test hook: SIGIL_AGENT_TEST_HALT_BEFORE=STEP prints that deployment step on stderr and halts before it (for SIGKILL tests).")
    @OptionGroup var options: AgentConfigOption
    @Flag(help: "Make one pass over every certificate and exit (1 if any failed).") var once = false

    func run() async throws {
        let agent = try options.agent()
        if once {
            try reportPass(await agent.runPass(), agent: agent)
            return
        }
        // SIGTERM and SIGINT cancel the loop; a deployment in progress finishes first (it never awaits).
        // SIGHUP reads the configuration again after the pass in progress; a file that does not
        // load is reported and the daemon carries on with the configuration it has.
        let daemon = DaemonTask()
        let reload = DaemonRequest()
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        var sources = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { daemon.stop() }
            source.resume()
            return source
        }
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { reload.request() }
        hangup.resume()
        sources.append(hangup)
        defer { sources.forEach { $0.cancel() } }
        var current = agent
        while let task = daemon.start({ [current] in await current.runDaemon(reload: reload) }) {
            guard await task.value == .reloadRequested else { break }
            do {
                current = try options.agent()
                Console.current.error("sigil agent: \(RFC3339.string(Date())) configuration reloaded: \(current.configuration.certificates.count) certificate(s)")
            } catch {
                Console.current.error("sigil agent: \(RFC3339.string(Date())) configuration not reloaded, carrying on with the previous one: \(error)")
            }
        }
    }
}

/// The daemon's current loop, so that a stop signal cancels whichever loop runs, including
/// one started right after a reload.
final class DaemonTask: Sendable {
    private let state = Mutex<(task: Task<DaemonEnd, Never>?, stopped: Bool)>((nil, false))

    /// Starts `body` unless a stop came first.
    func start(_ body: @escaping @Sendable () async -> DaemonEnd) -> Task<DaemonEnd, Never>? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            let task = Task { await body() }
            state.task = task
            return task
        }
    }

    func stop() {
        state.withLock { state in
            state.stopped = true
            state.task?.cancel()
        }
    }
}

/// Prints what a pass did and fails (exit 1) when any certificate failed.
func reportPass(_ outcomes: [String: PassOutcome], agent: Agent) throws {
    var failures: [String] = []
    for certificate in agent.configuration.certificates {
        guard let outcome = outcomes[certificate.name] else { continue }
        switch outcome {
        case .unchanged: Console.current.print("\(certificate.name): up to date")
        case .renewed(let serial): Console.current.print("\(certificate.name): deployed serial \(serial)")
        case .reloadFailed(let message):
            Console.current.print("\(certificate.name): deployed, but reload failed")
            failures.append("\(certificate.name): \(message)")
        case .failed(let message): failures.append("\(certificate.name): \(message)")
        case .backingOff(let until):
            failures.append("\(certificate.name): waiting after earlier failures until \(RFC3339.string(until)) (sigil agent renew \(certificate.name) --force tries now)")
        }
    }
    if !failures.isEmpty {
        throw SigilError(.verificationFailed, "\(failures.count) of \(outcomes.count) certificate\(outcomes.count == 1 ? "" : "s") failed", reasons: failures)
    }
}

struct AgentStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Each certificate's names, serial, expiry, next renewal and why, last success and last error.")
    @OptionGroup var options: AgentConfigOption
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let rows = try options.agent().status()
        if json { return try JSONOutput.print(rows) }
        Console.current.print(table(["NAME", "SERIAL", "NOT AFTER", "NEXT RENEWAL", "WHY", "FAILURES", "LAST ERROR"], rows.map { r in
            [r.name, r.serial.map { String($0.prefix(16)) } ?? "(none)", r.notAfter ?? "-", r.nextRenewal ?? "-", r.renewalReason ?? "-",
             String(r.consecutiveFailures), r.lastError.map { String($0.prefix(80)) } ?? "-"]
        }))
    }
}

struct AgentRenew: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew one certificate now (deploy and reload it).")
    @OptionGroup var options: AgentConfigOption
    @Argument(help: ArgumentHelp("The certificate's name in the configuration.", valueName: "name")) var name: String
    @Flag(help: "Try even while an earlier failure's backoff lasts.") var force = false

    func run() async throws {
        let agent = try options.agent()
        _ = try agent.configuration.certificate(named: name)
        try reportPass(await agent.runPass(only: name, force: true, ignoreBackoff: force), agent: agent)
    }
}

struct AgentRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put the previous key, certificate and chain back (atomically) and run the reload command.")
    @OptionGroup var options: AgentConfigOption
    @Argument(help: ArgumentHelp("The certificate's name in the configuration.", valueName: "name")) var name: String

    func run() async throws {
        let agent = try options.agent()
        let result = try await agent.rollback(name)
        let serial = agent.status().first { $0.name == name }?.serial ?? "?"
        Console.current.print("\(name): rolled back to serial \(serial)")
        if let result, !result.succeeded {
            throw SigilError(.verificationFailed, "\(name): the files are rolled back, but the reload command failed: \(result.summary)",
                             reasons: result.stderr.isEmpty ? [] : [String(result.stderr.suffix(500))])
        }
    }
}
