import Foundation
import Logging
import NIOCore
import NIOSSL
import SigilAuthority
import SigilCore
import SigilStore
import Synchronization
import X509

/// The HTTPS listener's own certificate, issued by Sigil's CA for the configured
/// names and renewed at two thirds of its lifetime. The key exists only in
/// memory; TLS picks up a renewed certificate through NIOSSL's context callback,
/// so renewal needs no restart and drops no connection.
public final class ServerIdentity: Sendable {
    let authority: CertificateAuthority
    let names: [String]
    let days: Int
    let clientTrustRoots: [NIOSSLCertificate]
    private let current = Mutex<(override: NIOSSLContextConfigurationOverride, notBefore: Date, notAfter: Date, serial: String)?>(nil)

    public init(authority: CertificateAuthority, names: [String], days: Int = 30) async throws {
        self.authority = authority
        self.names = names.isEmpty ? ["localhost", "127.0.0.1"] : names
        self.days = days
        // Client certificates arrive without their chain, so the intermediates are here too.
        let roots = try await authority.issuers().filter { !$0.certificatePEM.isEmpty }
            .map { try NIOSSLCertificate(bytes: Array($0.certificatePEM.utf8), format: .pem) }
        self.clientTrustRoots = roots
        try await renew()
    }

    public var serial: String? { current.withLock { $0?.serial } }

    /// Issues a new certificate and key and makes them current.
    public func renew() async throws {
        let key = try PrivateKey.generate(.ecP256)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=\(names[0])"))
        request.subjectAltNames = try names.map { name in
            NameRules.parseIPAddress(name) != nil ? try SubjectAltName(parsing: "IP:\(name)") : try SubjectAltName(parsing: "DNS:\(name)")
        }
        let outcome = try await authority.submit(IssuanceRequest(
            csr: try request.signed(with: key), profile: "tls-server", days: days, requester: "sigil-server", owner: "sigil-server", tags: ["server-tls"]))
        guard case .issued(let issued) = outcome else { throw SigilError(.internalFailure, "the server certificate needs approval; the tls-server profile must not require it") }
        let chain = try ([issued.certificate] + issued.chain.dropLast()).map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pkcs8PEM().utf8), format: .pem))
        current.withLock { $0 = (override, issued.certificate.notBefore, issued.certificate.notAfter, issued.record.serial) }
    }

    /// The configuration the listener starts with; each handshake asks for the current context.
    public func tlsConfiguration() throws -> TLSConfiguration {
        guard let initial = current.withLock({ $0?.override }), let chain = initial.certificateChain, let key = initial.privateKey else {
            throw SigilError(.internalFailure, "no server certificate yet")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates(clientTrustRoots)
        configuration.minimumTLSVersion = .tlsv12
        // Do not wait the default 5 s for an idle client's close_notify at shutdown.
        configuration.shutdownTimeout = .seconds(1)
        configuration.sslContextCallback = { [self] _, promise in
            promise.succeed(current.withLock { $0?.override } ?? .noChanges)
        }
        return configuration
    }

    /// When the current certificate reaches two thirds of its lifetime.
    public var renewalDue: Date? {
        current.withLock { state in
            state.map { $0.notBefore.addingTimeInterval($0.notAfter.timeIntervalSince($0.notBefore) * 2 / 3) }
        }
    }

    /// Renews whenever due, until cancelled; failures are logged and retried.
    public func runRenewal(logger: Logger) async {
        while !Task.isCancelled {
            let due = renewalDue ?? Date()
            // Wake at least every minute: a revoked server certificate is replaced at once.
            let wait = max(1, min(due.timeIntervalSince(authority.clock.now()), 60))
            try? await Task.sleep(for: .seconds(wait))
            if Task.isCancelled { return }
            var revoked = false
            if let serial, let record = try? await authority.findCertificate(serial), record.storedStatus == .revoked { revoked = true }
            if revoked || (renewalDue.map { authority.clock.now() >= $0 } ?? true) {
                do {
                    try await renew()
                    logger.info("renewed the server certificate", metadata: ["serial": "\(serial ?? "")"])
                } catch {
                    logger.error("server certificate renewal failed; retrying in a minute", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(60))
                }
            }
        }
    }
}
