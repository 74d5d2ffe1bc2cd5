import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle
import SigilACME
import SigilAuthority
import SigilCore
import SigilStore

/// Where `sigil serve` listens.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:8443`, `[::1]:8443`, `:8443`.
    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw SigilError.badInput("listen address '\(text)' must be HOST:PORT, e.g. 127.0.0.1:8443")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Runs the HTTPS and HTTP listeners and the background services until SIGTERM
/// or SIGINT; in-flight requests finish before it returns.
public struct SigilServerRunner {
    public var environment: ServerEnvironment
    public var identity: ServerIdentity
    public var listen: ListenAddress
    public var httpListen: ListenAddress
    public var logger: Logger
    /// Called with the ports actually bound (useful with port 0).
    public var onListening: @Sendable (_ https: Int, _ http: Int) async -> Void
    /// How often scheduled work is looked at (and leadership asked for, with several nodes).
    public var schedulerInterval: Duration = .seconds(60)
    /// `sigil.yaml`'s `discovery:` schedule, if any.
    public var discovery: DiscoverySchedule?

    public init(environment: ServerEnvironment, identity: ServerIdentity, listen: ListenAddress, httpListen: ListenAddress, logger: Logger,
                onListening: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }) {
        self.environment = environment
        self.identity = identity
        self.listen = listen
        self.httpListen = httpListen
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let ports = PortCollector(onListening)
        // Idle, empty and half-open connections are closed after 30 s, and at most 8192 are
        // held per listener, so a pile of silent clients cannot exhaust file descriptors.
        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(30))
        let api = Application(
            router: SigilApplication.apiRouter(environment),
            server: try .tls(.http1(configuration: http1), tlsConfiguration: identity.tlsConfiguration()),
            configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: "sigil",
                                                    availableConnectionsDelegate: MaximumAvailableConnections(8192)),
            onServerRunning: { channel in await ports.https(channel.localAddress?.port ?? 0) },
            logger: logger)
        let publicSurface = Application(
            router: SigilApplication.publicRouter(environment),
            server: .http1(configuration: http1),
            configuration: ApplicationConfiguration(address: .hostname(httpListen.host, port: httpListen.port), serverName: "sigil",
                                                    availableConnectionsDelegate: MaximumAvailableConnections(8192)),
            onServerRunning: { channel in await ports.http(channel.localAddress?.port ?? 0) },
            logger: logger)
        let renewal = RenewalService(identity: identity, logger: logger)
        let revocation = RevocationRefreshService(environment: environment, interval: schedulerInterval, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: api), .init(service: publicSurface), .init(service: renewal), .init(service: revocation),
        ]
        if let acme = environment.acme { services.append(.init(service: NoncePruningService(acme: acme))) }
        if let plan = try discovery?.validated() {
            services.append(.init(service: DiscoveryScheduleService(environment: environment, interval: plan.interval, targets: plan.targets, paths: plan.paths,
                                                                    timeout: plan.timeout, retry: schedulerInterval, logger: logger)))
        }
        if let sqlite = environment.authority.store as? SQLiteStore { services.append(.init(service: StoreMaintenanceService(store: sqlite, logger: logger))) }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Reports both ports once both listeners are up.
actor PortCollector {
    private var httpsPort: Int?
    private var httpPort: Int?
    private let callback: @Sendable (Int, Int) async -> Void

    init(_ callback: @escaping @Sendable (Int, Int) async -> Void) {
        self.callback = callback
    }

    func https(_ port: Int) async {
        httpsPort = port
        await fire()
    }

    func http(_ port: Int) async {
        httpPort = port
        await fire()
    }

    private func fire() async {
        if let httpsPort, let httpPort { await callback(httpsPort, httpPort) }
    }
}

struct RenewalService: Service {
    let identity: ServerIdentity
    let logger: Logger

    func run() async throws {
        // runRenewal loops until cancelled; graceful shutdown cancels it.
        try await cancelWhenGracefulShutdown {
            await identity.runRenewal(logger: logger)
        }
    }
}

/// Rebuilds CRLs before they go stale (every minute it checks; a CRL is rebuilt
/// at half its lifetime) so that no relying party ever waits for a signature.
///
/// With several nodes on one database only the node holding the store's scheduler
/// lock does it; the others ask for the lock on every tick and take over when the
/// leader dies (its lock goes with its database connection). Each node still renews
/// its own TLS certificate (`RenewalService`): that work is per node.
struct RevocationRefreshService: Service {
    let environment: ServerEnvironment
    var interval: Duration = .seconds(60)
    var logger: Logger = Logger(label: "sigil")

    func run() async throws {
        let lock = environment.authority.store.schedulerLock(named: "scheduled-work")
        try await cancelWhenGracefulShutdown {
            var leading = false
            while !Task.isCancelled {
                let leader = await lock.acquire()
                if leader != leading {
                    leading = leader
                    if leader {
                        logger.notice("scheduler: this node now leads the scheduled work (CRL refresh)")
                    } else {
                        logger.notice("scheduler: this node no longer leads the scheduled work")
                    }
                }
                environment.metrics.setSchedulerLeader(leader)
                if leader { await environment.refreshRevocationData() }
                try? await Task.sleep(for: interval)
            }
        }
        await lock.release()
    }
}

/// Drops redeemed ACME nonces once they have expired (every ten minutes).
struct NoncePruningService: Service {
    let acme: ACMEServer

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(600))
                await acme.prune()
            }
        }
    }
}

/// Keeps SQLite's planner statistics current: at start and every hour.
struct StoreMaintenanceService: Service {
    let store: SQLiteStore
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await store.optimize() } catch { logger.warning("ANALYZE failed: \(error)") }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
    }
}
