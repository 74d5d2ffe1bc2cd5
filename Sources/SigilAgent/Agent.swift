import Foundation
import SigilCore
import Synchronization
import X509

/// What one pass did for one certificate.
public enum PassOutcome: Sendable, Equatable {
    case unchanged
    case renewed(serial: String)
    /// The certificate is deployed but its reload failed (reported, retried with backoff).
    case reloadFailed(String)
    case failed(String)
    /// A previous failure's backoff has not expired yet.
    case backingOff(until: Date)

    public var isFailure: Bool {
        switch self {
        case .unchanged, .renewed: return false
        default: return true
        }
    }
}

/// Why `Agent.runDaemon` returned.
public enum DaemonEnd: Sendable, Equatable {
    case stopped
    case reloadRequested
}

/// A request made from a signal handler and taken by the daemon loop (SIGHUP: read the
/// configuration again).
public final class DaemonRequest: Sendable {
    private let pending = Mutex(false)

    public init() {}

    public func request() { pending.withLock { $0 = true } }

    var isPending: Bool { pending.withLock { $0 } }

    /// True once per request.
    func take() -> Bool {
        pending.withLock { value in
            defer { value = false }
            return value
        }
    }
}

/// The renewal agent: for each managed certificate, finish any interrupted deployment,
/// decide whether it is due (missing, names changed, ARI window, two thirds of its
/// lifetime), obtain a new one, deploy it atomically, reload, and remember the result.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let state: StateDirectory
    let deployer: Deployer
    let clock: any SigilClock
    let log: @Sendable (String) -> Void

    public init(configuration: AgentConfiguration, clock: any SigilClock = SystemClock(),
                environment: [String: String] = ProcessInfo.processInfo.environment,
                log: @escaping @Sendable (String) -> Void) throws {
        self.configuration = configuration
        self.state = StateDirectory(path: configuration.stateDirectory)
        self.clock = clock
        self.log = log
        let halt = environment["SIGIL_AGENT_TEST_HALT_BEFORE"].flatMap { $0.isEmpty ? nil : $0 }
        self.deployer = Deployer(state: state, haltBefore: halt, log: log)
        try state.prepare()
    }

    // MARK: Passes

    /// One pass over every certificate (or only `only`); `force` renews even when not due,
    /// `ignoreBackoff` even while a failure's backoff lasts.
    public func runPass(only: String? = nil, force: Bool = false, ignoreBackoff: Bool = false) async -> [String: PassOutcome] {
        var outcomes: [String: PassOutcome] = [:]
        for certificate in configuration.certificates where only == nil || certificate.name == only {
            if Task.isCancelled { break }
            outcomes[certificate.name] = await process(certificate, force: force, ignoreBackoff: ignoreBackoff)
        }
        return outcomes
    }

    /// Runs passes until the task is cancelled (SIGTERM), sleeping until the next
    /// certificate is due, a backoff expires or an ARI check is owed.
    ///
    /// A request on `reload` (SIGHUP) ends the loop between passes, never inside one: the
    /// caller reads the configuration again and starts a new loop. A pass in progress
    /// finishes first, so a reload never leaves an order or a deployment half done.
    @discardableResult
    public func runDaemon(reload: DaemonRequest? = nil) async -> DaemonEnd {
        log("agent started: \(configuration.certificates.count) certificate(s), state in \(state.path)")
        while !Task.isCancelled {
            if reload?.take() == true { return .reloadRequested }
            _ = await runPass()
            // At least a second between passes: a time already past (a renewal that is due while
            // a failure's backoff lasts) must not make the daemon run pass after pass in a loop.
            let wake = max(nextWake(), clock.now().addingTimeInterval(1))
            // Sleep in slices of at most a second, so a reload request is seen promptly.
            while !Task.isCancelled, reload?.isPending != true {
                let delay = wake.timeIntervalSince(clock.now())
                if delay <= 0 { break }
                do {
                    try await Task.sleep(for: .milliseconds(Int(min(delay, 1) * 1000) + 1))
                } catch {
                    break
                }
            }
        }
        log("agent stopped")
        return .stopped
    }

    func nextWake() -> Date {
        let now = clock.now()
        var wake = now.addingTimeInterval(configuration.checkInterval.timeInterval)
        for certificate in configuration.certificates {
            let record = state.load(certificate.name)
            for candidate in [record.nextAttempt, record.renewAt, record.ariCheckAfter].compactMap({ $0 }) where candidate < wake {
                wake = candidate
            }
        }
        return wake
    }

    func process(_ certificate: ManagedCertificate, force: Bool, ignoreBackoff: Bool) async -> PassOutcome {
        var acme: ACMEClient?
        let outcome = await process(certificate, force: force, ignoreBackoff: ignoreBackoff, acme: &acme)
        // AsyncHTTPClient requires an explicit shutdown.
        await acme?.shutdown()
        return outcome
    }

    func process(_ certificate: ManagedCertificate, force: Bool, ignoreBackoff: Bool, acme: inout ACMEClient?) async -> PassOutcome {
        let now = clock.now()
        var record = state.load(certificate.name)
        do {
            if try deployer.recover(certificate) == .completed {
                record.reloadPending = certificate.reload != nil
            }
        } catch {
            return fail(certificate, &record, "recovering an interrupted deployment: \(error)", serial: nil)
        }
        if !ignoreBackoff, let next = record.nextAttempt, next > now {
            return .backingOff(until: next)
        }
        let deployed = currentBundle(certificate)
        var due: String?
        if force {
            due = "renewal forced"
        } else if deployed == nil {
            due = "no usable deployed certificate"
        } else if let deployed, Set(deployed.certificate.names.map { $0.lowercased() }) != Set(certificate.names.map { $0.lowercased() }) {
            due = "the configured names changed"
        }
        if due == nil, let deployed {
            let serial = deployed.certificate.serialHex
            if record.serial != serial {
                record.serial = serial
                record.renewAt = nil
                record.ariWindowStart = nil
                record.ariWindowEnd = nil
                record.ariCheckAfter = nil
            }
            if case .acme(let settings) = certificate.authority, (record.ariCheckAfter ?? .distantPast) <= now {
                do {
                    let client = try ACMEClient(settings: settings, state: state)
                    acme = client
                    if let window = try await client.renewalWindow(for: deployed.certificate) {
                        if window.start != record.ariWindowStart || window.end != record.ariWindowEnd { record.renewAt = nil }
                        record.ariWindowStart = window.start
                        record.ariWindowEnd = window.end
                        record.ariCheckAfter = RenewalSchedule.nextARICheck(window: window, now: now)
                    } else {
                        record.ariCheckAfter = now.addingTimeInterval(21_600)
                    }
                } catch {
                    // ARI is advisory: without an answer the two-thirds rule still applies.
                    log("\(certificate.name): renewalInfo unavailable: \(error)")
                    record.ariCheckAfter = now.addingTimeInterval(min(3_600, max(60, lifetime(deployed) / 10)))
                }
            }
            if record.renewAt == nil {
                var window: RenewalWindow?
                if let start = record.ariWindowStart, let end = record.ariWindowEnd { window = RenewalWindow(start: start, end: end) }
                var rng = SystemRandomNumberGenerator()
                let decision = RenewalSchedule.decide(notBefore: deployed.certificate.notBefore, notAfter: deployed.certificate.notAfter,
                                                      window: window, now: now, using: &rng)
                record.renewAt = decision.renewAt
                record.renewalReason = decision.reason.rawValue
                log("\(certificate.name): serial \(serial) renews at \(RFC3339.string(decision.renewAt)) (\(decision.explanation))")
            }
            if let renewAt = record.renewAt, renewAt <= now { due = "renewal time reached (\(record.renewalReason ?? "two-thirds"))" }
        }
        guard let reason = due else {
            if record.reloadPending, let reload = certificate.reload {
                return await runReload(reload, certificate, &record, serial: deployed?.certificate.serialHex)
            }
            try? state.save(record, for: certificate.name)
            return .unchanged
        }
        log("\(certificate.name): obtaining a certificate: \(reason)")
        record.lastAttempt = now
        do {
            let bundle = try await obtain(certificate, current: deployed, acme: &acme)
            try deployer.deploy(bundle, for: certificate)
            let serial = bundle.certificate.serialHex
            log("\(certificate.name): deployed serial \(serial), valid until \(RFC3339.string(bundle.certificate.notAfter))")
            record.serial = serial
            record.renewAt = nil
            record.renewalReason = nil
            record.ariWindowStart = nil
            record.ariWindowEnd = nil
            record.ariCheckAfter = nil
            record.lastSuccess = clock.now()
            record.lastError = nil
            record.consecutiveFailures = 0
            record.nextAttempt = nil
            // The next renewal time: two thirds now, refined by ARI on the next pass.
            var rng = SystemRandomNumberGenerator()
            let decision = RenewalSchedule.decide(notBefore: bundle.certificate.notBefore, notAfter: bundle.certificate.notAfter, window: nil,
                                                  now: clock.now(), using: &rng)
            record.renewAt = decision.renewAt
            record.renewalReason = decision.reason.rawValue
            if case .acme = certificate.authority { record.ariCheckAfter = clock.now() }
            guard let reload = certificate.reload else {
                record.reloadPending = false
                try? state.save(record, for: certificate.name)
                return .renewed(serial: serial)
            }
            let outcome = await runReload(reload, certificate, &record, serial: serial)
            return outcome == .unchanged ? .renewed(serial: serial) : outcome
        } catch {
            if Task.isCancelled {
                try? state.save(record, for: certificate.name)
                return .failed("stopped")
            }
            let message = "\(error)"
            let outcome = fail(certificate, &record, message, serial: deployed?.certificate.serialHex)
            // Best effort, and only when the server answered: a report to a server that cannot be reached is lost anyway.
            if case .sigil(let settings) = certificate.authority, !(error is UnreachableError) {
                if let client = try? SigilRESTClient(settings: settings) {
                    await client.reportFailure(certificate: certificate.name, names: certificate.names, serial: deployed?.certificate.serialHex, error: message)
                    await client.shutdown()
                }
            }
            return outcome
        }
    }

    func lifetime(_ bundle: CertificateBundle) -> TimeInterval {
        bundle.certificate.notAfter.timeIntervalSince(bundle.certificate.notBefore)
    }

    func fail(_ certificate: ManagedCertificate, _ record: inout CertificateState, _ message: String, serial: String?) -> PassOutcome {
        let now = clock.now()
        record.consecutiveFailures += 1
        record.lastError = message
        record.lastAttempt = now
        var rng = SystemRandomNumberGenerator()
        let delay = Backoff.delay(failures: record.consecutiveFailures, settings: configuration.backoff, using: &rng)
        record.nextAttempt = now.addingTimeInterval(delay)
        log("\(certificate.name): failed (\(record.consecutiveFailures) in a row): \(message); next attempt in \(Int(delay.rounded())) s")
        try? state.save(record, for: certificate.name)
        return .failed(message)
    }

    func runReload(_ reload: ReloadCommand, _ certificate: ManagedCertificate, _ record: inout CertificateState, serial: String?) async -> PassOutcome {
        let clock = self.clock
        let result = await ReloadRunner.run(reload, certificate: certificate, scratch: state.path, now: { clock.now() })
        record.lastReload = result
        if result.succeeded {
            record.reloadPending = false
            log("\(certificate.name): reload succeeded")
            try? state.save(record, for: certificate.name)
            return .unchanged
        }
        record.reloadPending = true
        let stderr = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let message = "the reload command \(reload.argv.joined(separator: " ")) failed: \(result.summary)\(stderr.isEmpty ? "" : ": " + String(stderr.suffix(500)))"
        _ = fail(certificate, &record, message, serial: serial)
        return .reloadFailed(message)
    }

    /// The deployed key, certificate and chain, when they are readable and belong together.
    func currentBundle(_ certificate: ManagedCertificate) -> CertificateBundle? {
        guard let bundle = CertificateBundle.read(key: certificate.key.path, certificate: certificate.certificate.path, chain: certificate.chain?.path),
              (try? bundle.verifyKeyMatch()) == true else { return nil }
        return bundle
    }

    // MARK: Obtaining

    func obtain(_ certificate: ManagedCertificate, current: CertificateBundle?, acme: inout ACMEClient?) async throws -> CertificateBundle {
        let key: PrivateKey
        if certificate.reuseKey, let current, let existing = try? PrivateKey.decode(Array(current.keyPEM.utf8), source: certificate.key.path, passphrase: { nil }).key,
           existing.keyType == certificate.keyType {
            key = existing
        } else {
            key = try PrivateKey.generate(certificate.keyType)
        }
        let csr = try Agent.csr(names: certificate.names, key: key)
        let pem: String
        switch certificate.authority {
        case .acme(let settings):
            let client: ACMEClient
            if let acme { client = acme } else { client = try ACMEClient(settings: settings, state: state); acme = client }
            let responder: any ChallengeSolver
            if let hook = settings.dns01Hook {
                responder = DNS01Hook(command: hook, wait: settings.dns01Wait, scratch: state.path, certificate: certificate.name, log: log)
            } else if let webroot = settings.http01Webroot {
                responder = WebrootPublisher(webroot: webroot)
            } else {
                responder = HTTP01Responder(listen: settings.http01Listen)
            }
            try await responder.start()
            do {
                // RFC 9773 §5: name the certificate this order replaces when the CA offers ARI.
                var replaces: String?
                if let current, await client.supportsARI() { replaces = ACMEClient.certificateID(current.certificate) }
                pem = try await client.obtain(names: certificate.names, csr: csr.derBytes, replaces: replaces, responder: responder)
                await responder.stop()
            } catch {
                await responder.stop()
                throw error
            }
        case .sigil(let settings):
            let client = try SigilRESTClient(settings: settings)
            do {
                pem = try await client.issue(csrPEM: csr.pemString)
                await client.shutdown()
            } catch {
                await client.shutdown()
                throw error
            }
        }
        let certificates = try X509Certificate.parseChain(pem: pem, source: "the CA's answer")
        guard let leaf = certificates.first else { throw SigilError(.io, "the CA returned no certificate") }
        let missing = Set(certificate.names.map { $0.lowercased() }).subtracting(leaf.names.map { $0.lowercased() })
        guard missing.isEmpty else {
            throw SigilError(.verificationFailed, "the CA's certificate lacks \(missing.sorted().joined(separator: ", "))")
        }
        return CertificateBundle(keyPEM: key.pkcs8PEM(), certificate: leaf, chain: Array(certificates.dropFirst()))
    }

    /// A CSR naming the first DNS name as CN and every name as a SAN (DNS or IP).
    static func csr(names: [String], key: PrivateKey) throws -> CertificationRequest {
        var request = CSRRequest()
        request.subjectAltNames = names.map { name in NameRules.parseIPAddress(name).map(SubjectAltName.ip) ?? .dns(name) }
        if let first = names.first(where: { NameRules.parseIPAddress($0) == nil }) {
            request.subject = try DistinguishedName { CommonName(first) }
        }
        return try request.signed(with: key)
    }

    // MARK: Rollback

    /// Puts the previous key, certificate and chain back (atomically, through the same
    /// journaled deployment) and runs the reload command.
    public func rollback(_ name: String) async throws -> ReloadResult? {
        let certificate = try configuration.certificate(named: name)
        _ = try deployer.recover(certificate)
        guard let previous = deployer.previousBundle(name) else {
            throw SigilError(.notFound, "\(name): no previous version is kept in \(state.previous(name))")
        }
        try deployer.deploy(previous, for: certificate)
        var record = state.load(name)
        record.serial = previous.certificate.serialHex
        record.renewAt = nil
        record.ariCheckAfter = nil
        log("\(name): rolled back to serial \(previous.certificate.serialHex)")
        guard let reload = certificate.reload else {
            try? state.save(record, for: name)
            return nil
        }
        let clock = self.clock
        let result = await ReloadRunner.run(reload, certificate: certificate, scratch: state.path, now: { clock.now() })
        record.lastReload = result
        record.reloadPending = !result.succeeded
        try? state.save(record, for: name)
        return result
    }
}
