import Foundation
import Logging
import ServiceLifecycle
import SigilCore
import SigilDiscovery
import SigilStore

/// `sigil.yaml`'s `discovery:` block: what the server scans and imports on a schedule.
///
/// ```yaml
/// discovery:
///   interval: 6h
///   targets: [10.0.0.0/28, "www.example.com:443"]
///   ports: [443, 8443]
///   paths: [/etc/ssl/certs/services]
/// ```
public struct DiscoverySchedule: Sendable, Decodable, Equatable {
    public var interval: String?
    public var targets: [String]?
    public var ports: [Int]?
    public var paths: [String]?
    public var timeout: String?

    /// Checks everything before the server starts: a bad schedule is a configuration error, not a log line every six hours.
    public func validated() throws -> (interval: Duration, targets: ScanTargets?, paths: [String], timeout: Duration) {
        let seconds = try DurationText.parse(interval ?? "6h", what: "discovery.interval")
        guard seconds >= 60 else { throw SigilError.badInput("discovery.interval must be at least 1m") }
        let timeout = try DurationText.parse(self.timeout ?? "5s", what: "discovery.timeout")
        var parsed: ScanTargets?
        if let targets, !targets.isEmpty {
            parsed = try Discovery.targets(targets, ports: ports, serverName: nil)
        }
        let paths = paths ?? []
        guard paths.allSatisfy({ $0.hasPrefix("/") }) else { throw SigilError.badInput("discovery.paths must be absolute") }
        guard parsed != nil || !paths.isEmpty else { throw SigilError.badInput("discovery needs targets or paths") }
        let timeoutDuration = Duration.milliseconds(Int64(timeout * 1000))
        try Discovery.checkLimits(timeout: timeoutDuration, concurrency: ScanLimits.defaultConcurrency)
        return (.milliseconds(Int64(seconds * 1000)), parsed, paths, timeoutDuration)
    }
}

/// Runs the configured discovery every interval, on the node that holds the
/// `discovery` scheduler lock (one node of several). The audit trail says when it last ran
/// (on any node), so neither a restart nor a new leader runs it again before it is due;
/// a first start runs it at once.
struct DiscoveryScheduleService: Service {
    let environment: ServerEnvironment
    let interval: Duration
    let targets: ScanTargets?
    let paths: [String]
    let timeout: Duration
    /// How often a node that does not lead asks again.
    let retry: Duration
    var logger: Logger

    func run() async throws {
        let lock = environment.authority.store.schedulerLock(named: "discovery")
        try await cancelWhenGracefulShutdown {
            // A run that failed before writing its audit entry still counts, so a failing scan is not retried every tick.
            var lastAttempt: Date?
            // The last run the wait below was announced for: once in the log, not every tick.
            var announced: Date?
            while !Task.isCancelled {
                guard await lock.acquire() else {
                    try? await Task.sleep(for: retry)
                    continue
                }
                let last = [lastAttempt, await lastRun()].compactMap { $0 }.max()
                if let last {
                    let wait = last.timeIntervalSince(environment.clock.now()) + Double(interval.components.seconds)
                    if wait > 0 {
                        if announced != last {
                            announced = last
                            let due = last.addingTimeInterval(Double(interval.components.seconds))
                            logger.info("scheduled discovery: last ran at \(RFC3339.string(last)), next run at \(RFC3339.string(due))")
                        }
                        // Look again at least every scheduler tick: leadership may move, another node may run it.
                        try? await Task.sleep(for: min(.milliseconds(Int64(wait * 1000)), retry))
                        continue
                    }
                }
                lastAttempt = environment.clock.now()
                await runOnce()
            }
        }
        await lock.release()
    }

    /// When a scheduled scan or import last finished on any node: the newest `discovery.*`
    /// audit entry by the scheduler.
    func lastRun() async -> Date? {
        do {
            return try await environment.authority.store.read { session in
                try await session.auditEntries(AuditFilter(actor: "scheduler", action: "discovery.", limit: 1)).first?.time
            }
        } catch {
            logger.warning("scheduled discovery: cannot read when it last ran: \(error)")
            return nil
        }
    }

    func runOnce() async {
        let store = environment.authority.store
        if let targets {
            do {
                let summary = try await Discovery.scan(targets, timeout: timeout, concurrency: ScanLimits.defaultConcurrency, store: store,
                                                       actor: "scheduler", clock: environment.clock)
                logger.info("scheduled scan: \(summary.endpointsReached) of \(summary.endpointsScanned) endpoints answered, \(summary.inventory.newCertificates) new certificates")
            } catch {
                logger.error("scheduled scan failed: \(error)")
            }
        }
        if !paths.isEmpty {
            do {
                let summary = try await Discovery.importFiles(paths, store: store, actor: "scheduler", clock: environment.clock)
                logger.info("scheduled import: \(summary.filesRead) files, \(summary.inventory.newCertificates) new certificates, \(summary.junk.count) junk")
            } catch {
                logger.error("scheduled import failed: \(error)")
            }
        }
    }
}
