import Foundation
import SigilCore

/// Runs the reload command after a deployment, with the certificate's name and files in
/// its environment.
public enum ReloadRunner {
    public static func run(_ command: ReloadCommand, certificate: ManagedCertificate, scratch: String, now: @Sendable () -> Date) async -> ReloadResult {
        await CommandRunner.run(command, environment: [
            "SIGIL_AGENT_CERTIFICATE": certificate.name,
            "SIGIL_AGENT_KEY": certificate.key.path,
            "SIGIL_AGENT_CERT": certificate.certificate.path,
            "SIGIL_AGENT_FULLCHAIN": certificate.fullchain?.path ?? "",
        ], label: "reload-\(certificate.name)", scratch: scratch, now: now)
    }
}

/// Runs an operator's command (a reload, a DNS hook) without a shell (unless configured
/// as `sh -c`), with a timeout, and keeps its exit status and the end of its standard error.
public enum CommandRunner {
    static let keptStderr = 4_096

    public static func run(_ command: ReloadCommand, environment extra: [String: String], label: String, scratch: String,
                           now: @Sendable () -> Date) async -> ReloadResult {
        guard let executable = resolve(command.argv[0]) else {
            return ReloadResult(at: now(), exitCode: nil, status: "not-started", stderr: "\(command.argv[0]): command not found")
        }
        let stderrPath = "\(scratch)/.\(label)-\(getpid())-\(UInt32.random(in: 0 ... .max)).err"
        FileManager.default.createFile(atPath: stderrPath, contents: nil, attributes: [.posixPermissions: 0o600])
        defer { unlink(stderrPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.argv.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        guard let errorHandle = FileHandle(forWritingAtPath: stderrPath) else {
            return ReloadResult(at: now(), exitCode: nil, status: "not-started", stderr: "cannot capture standard error in \(scratch)")
        }
        process.standardError = errorHandle
        do {
            try process.run()
        } catch {
            try? errorHandle.close()
            return ReloadResult(at: now(), exitCode: nil, status: "not-started", stderr: "\(executable): \(error.localizedDescription)")
        }
        try? errorHandle.close()
        let started = Date()
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(started) > command.timeout.timeInterval {
                timedOut = true
                process.terminate()
                let grace = Date()
                while process.isRunning, Date().timeIntervalSince(grace) < 5 { try? await Task.sleep(for: .milliseconds(50)) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        let output = AtomicFile.read(stderrPath) ?? []
        let tail = String(decoding: output.suffix(keptStderr), as: UTF8.self)
        if timedOut {
            return ReloadResult(at: now(), exitCode: nil, status: "timed-out", stderr: tail)
        }
        let signalled = process.terminationReason == .uncaughtSignal
        return ReloadResult(at: now(), exitCode: process.terminationStatus, status: signalled ? "signalled" : "exited", stderr: tail)
    }

    static func resolve(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        return nil
    }
}
