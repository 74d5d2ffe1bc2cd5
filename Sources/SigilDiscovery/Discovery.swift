import Foundation
import SigilCore
import SigilStore

/// The limits every caller of a scan shares (CLI, REST API, schedule).
public enum ScanLimits {
    public static let concurrency = 1...1024
    public static let defaultConcurrency = 32
    /// Per connect and per handshake.
    public static let timeout: ClosedRange<Duration> = .milliseconds(50) ... .seconds(120)
    public static let defaultTimeout: Duration = .seconds(5)
}

/// The scan and import runs, from parsed input to a summary, shared by
/// `sigil scan`/`sigil import`, the REST API and the scheduled discovery.
public enum Discovery {
    /// Parses targets (each a target or, with `fromFiles`, already read file text).
    public static func targets(_ targets: [String], files: [(path: String, text: String)] = [], ports: [Int]?, serverName: String?,
                               limit: Int = ScanTargets.defaultLimit) throws -> ScanTargets {
        var parsed = try ScanTargets(defaultPorts: ports ?? [443], serverName: serverName, limit: limit)
        for target in targets { try parsed.add(target) }
        for file in files { try parsed.add(fileText: file.text, source: file.path) }
        guard !parsed.endpoints.isEmpty else { throw SigilError.badInput("no targets to scan") }
        return parsed
    }

    public static func checkLimits(timeout: Duration, concurrency: Int) throws {
        guard ScanLimits.timeout.contains(timeout) else { throw SigilError.badInput("the timeout must be between 50ms and 120s") }
        guard ScanLimits.concurrency.contains(concurrency) else { throw SigilError.badInput("the concurrency must be between 1 and 1024") }
    }

    /// Probes every endpoint and records what answered.
    public static func scan(_ targets: ScanTargets, timeout: Duration, concurrency: Int, store: any Store, actor: String, clock: any SigilClock,
                            progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> ScanSummary {
        try checkLimits(timeout: timeout, concurrency: concurrency)
        let endpoints = targets.endpoints
        let prober = try TLSProber(timeout: timeout)
        let results = await prober.probe(endpoints, concurrency: concurrency) { progress($0, endpoints.count) }
        return try await DiscoveryInventory(store: store, actor: actor).record(scan: results, now: clock.now())
    }

    /// Reads every file under `paths` and records the certificates found.
    public static func importFiles(_ paths: [String], store: any Store, actor: String, clock: any SigilClock,
                                   progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> ImportSummary {
        guard !paths.isEmpty else { throw SigilError.badInput("no paths to import") }
        let collection = try FileWalker().collect(paths, progress: progress)
        return try await DiscoveryInventory(store: store, actor: actor).record(import: collection, now: clock.now())
    }
}
