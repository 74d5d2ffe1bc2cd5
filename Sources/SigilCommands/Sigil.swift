import ArgumentParser
import Foundation
import SigilCore

/// The `sigil` command.
public struct Sigil: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sigil",
        abstract: "Certificate lifecycle management: keys, CSRs, a private CA, and everything after.",
        discussion: """
            Exit codes: 0 success; 1 the operation failed (policy or template violation, \
            lint errors, a file that already exists); 2 bad usage or bad input \
            (malformed file, wrong passphrase, unknown key type); 3 the request waits for approval.
            """,
        version: SigilVersion.current,
        subcommands: [KeyCommand.self, CSRCommand.self, CACommand.self, CertCommand.self, RequestCommand.self, AuditCommand.self, TokenCommand.self, CRLCommand.self, ACMECommand.self, ServeCommand.self, MigrateCommand.self, StoreCommand.self, AgentCommand.self, ScanCommand.self, ImportCommand.self, ReportCommand.self, NotifyCommand.self]
    )

    public init() {}

    /// Runs the command line and returns the process exit code. Errors are
    /// printed as one `sigil: error:` line (plus the list of broken rules).
    public static func run(arguments: [String]) async -> Int32 {
        let console = Console.current
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as SigilError {
            console.error("sigil: error: \(error.description)")
            return exitCode(for: error.kind)
        } catch {
            var code = exitCode(for: error).rawValue
            // ArgumentParser reports validation errors as EX_USAGE (64); Sigil's contract is 2 for bad usage.
            if code == 64 { code = 2 }
            let message = fullMessage(for: error)
            if code == 0 {
                if !message.isEmpty { console.print(message) }
            } else if !message.isEmpty {
                console.error(message.hasPrefix("Error:") ? "sigil: error:" + message.dropFirst(6) : message)
            }
            return code
        }
    }

    static func exitCode(for kind: SigilError.Kind) -> Int32 {
        switch kind {
        case .badInput, .wrongPassphrase, .unsupported: return 2
        default: return 1
        }
    }
}

public enum SigilVersion {
    public static let current = "0.1.0"
}
