import Crypto
import Foundation
import SigilCore
import SigilStore
import Synchronization
import X509

/// The certificate authority: its issuers, issuance under policy, approval and
/// the audit trail. Every state change is recorded with its audit entry in one
/// store transaction, and a certificate is returned only after it is recorded.
public final class CertificateAuthority: Sendable {
    public let store: any Store
    private let settings: Mutex<AuthorityConfiguration>
    /// The configuration in force (only the public URL may change, once a listener's port is known).
    public var configuration: AuthorityConfiguration { settings.withLock { $0 } }
    public let clock: any SigilClock
    public let policy: IssuancePolicy
    private let signers = Mutex<[String: any Signer]>([:])
    /// Parsed issuer certificates and chains, keyed by the certificate PEM so an
    /// imported or replaced certificate is never served from a stale entry.
    private let parsedIssuers = Mutex<[String: X509Certificate]>([:])
    private let chains = Mutex<[String: (pem: String, chain: [X509Certificate])]>([:])
    private let issuerSnapshot = Mutex<(taken: ContinuousClock.Instant, records: [IssuerRecord])?>(nil)

    public init(store: any Store, configuration: AuthorityConfiguration = AuthorityConfiguration(), clock: any SigilClock = SystemClock(),
                policy: IssuancePolicy = .standard) {
        self.store = store
        self.settings = Mutex(configuration)
        self.clock = clock
        self.policy = policy
    }

    /// Sets the base of the URLs written into certificates, when it was not configured and
    /// the HTTP listener's port was chosen by the system (a listener on port 0).
    public func setHTTPPublicURL(_ url: String) {
        settings.withLock { $0.httpPublicURL = url.hasSuffix("/") ? String(url.dropLast()) : url }
    }

    // MARK: Issuers

    /// Issuers change rarely (a CA is created or imported) but are read on every
    /// request; a snapshot younger than this is reused. Changes made by this process
    /// drop it at once; changes from another process or node show within this time.
    static let issuerSnapshotLifetime: Duration = .seconds(5)

    public func issuers() async throws -> [IssuerRecord] {
        let now = ContinuousClock.now
        if let snapshot = issuerSnapshot.withLock({ $0 }), now - snapshot.taken < Self.issuerSnapshotLifetime {
            return snapshot.records
        }
        let records = try await store.read { try await $0.issuers() }
        issuerSnapshot.withLock { $0 = (now, records) }
        return records
    }

    func forgetIssuerSnapshot() {
        issuerSnapshot.withLock { $0 = nil }
    }

    public func issuer(_ name: String) async throws -> IssuerRecord {
        if let cached = try await issuers().first(where: { $0.name == name }) { return cached }
        forgetIssuerSnapshot()
        guard let record = try await store.read({ try await $0.issuer(named: name) }) else {
            let known = try await issuers().map(\.name)
            throw SigilError.badInput("no CA named '\(name)'\(known.isEmpty ? "; create one with `sigil ca init`" : " (known: \(known.joined(separator: ", ")))")")
        }
        return record
    }

    /// The issuer used when a request names none: the intermediate named
    /// `intermediate` (what `sigil ca init --intermediate` makes), else the newest one.
    public func defaultIssuer() async throws -> IssuerRecord {
        let all = try await issuers()
        if let named = all.first(where: { $0.name == "intermediate" && $0.status == .active }) { return named }
        if let intermediate = all.last(where: { !$0.isRoot && $0.status == .active }) { return intermediate }
        if all.contains(where: { $0.isRoot }) {
            throw SigilError.badInput("there is no intermediate CA to issue from; create one with `sigil ca init --intermediate` (or name --issuer root explicitly)")
        }
        throw SigilError.badInput("there is no CA yet; create one with `sigil ca init`")
    }

    /// Decrypts an issuer's key and keeps the signer in memory.
    public func unlock(_ name: String, passphrase: [UInt8]) async throws {
        let record = try await issuer(name)
        guard record.status != .external else { throw SigilError.badInput("CA '\(name)' is held elsewhere; Sigil has no key for it") }
        let key = try KeyVault.open(record.keyBlob, passphrase: passphrase, context: name)
        signers.withLock { $0[name] = SoftwareSigner(key) }
    }

    public func isUnlocked(_ name: String) -> Bool { signers.withLock { $0[name] != nil } }

    func signer(_ name: String) throws -> any Signer {
        guard let signer = signers.withLock({ $0[name] }) else {
            throw SigilError.badInput("CA '\(name)' is locked: give its passphrase")
        }
        return signer
    }

    /// Makes a self-signed root CA.
    public func createRoot(_ options: NewCAOptions, passphrase: [UInt8], actor: String) async throws -> IssuerRecord {
        try await requireFreeName(options.name)
        let key = try PrivateKey.generate(options.keyType)
        let now = clock.now()
        let start = ASN1Time.truncate(now.addingTimeInterval(-ValidityRule.backdate))
        let ski = SerialNumber.keyIdentifier(for: key.publicKey)
        let builder = CertificateBuilder(
            serialNumber: SerialNumber.random(), issuer: options.subject, subject: options.subject, notBefore: start,
            notAfter: start.addingTimeInterval(Double(options.days) * 86_400 - 1), publicKey: key.publicKey,
            extensions: [
                try Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: options.pathLength), critical: true),
                try Certificate.Extension(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true), critical: true),
                try Certificate.Extension(SubjectKeyIdentifier(keyIdentifier: ski[...]), critical: false),
                try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: ski[...]), critical: false),
            ])
        let certificate = try builder.sign(with: key)
        return try await recordNewIssuer(options.name, certificate: certificate, key: key, parent: nil, isRoot: true, passphrase: passphrase, actor: actor)
    }

    /// Makes an intermediate CA signed by `parent`, which must be unlocked.
    public func createIntermediate(_ options: NewCAOptions, parent: String, passphrase: [UInt8], actor: String) async throws -> IssuerRecord {
        try await requireFreeName(options.name)
        let parentRecord = try await issuer(parent)
        let parentSigner = try signer(parent)
        let parentCertificate = try X509Certificate(pemOrDER: Array(parentRecord.certificatePEM.utf8))
        guard parentCertificate.isCertificateAuthority else { throw SigilError.badInput("'\(parent)' is not a CA certificate") }
        let key = try PrivateKey.generate(options.keyType)
        let now = clock.now()
        let start = ASN1Time.truncate(now.addingTimeInterval(-ValidityRule.backdate))
        let end = start.addingTimeInterval(Double(options.days) * 86_400 - 1)
        guard end <= parentCertificate.notAfter else {
            throw SigilError(.policyViolation, "an intermediate of \(options.days) days would outlive '\(parent)', which expires \(RFC3339.string(parentCertificate.notAfter))")
        }
        var extensions = [
            try Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: options.pathLength), critical: true),
            try Certificate.Extension(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true), critical: true),
            try Certificate.Extension(SubjectKeyIdentifier(keyIdentifier: SerialNumber.keyIdentifier(for: key.publicKey)[...]), critical: false),
            try Certificate.Extension(AuthorityKeyIdentifier(
                keyIdentifier: (parentCertificate.subjectKeyIdentifier ?? SerialNumber.keyIdentifier(for: parentSigner.publicKey))[...]), critical: false),
        ]
        if !options.extendedKeyUsage.isEmpty {
            extensions.append(try Certificate.Extension(ExtendedKeyUsage(UsageNames.parseExtendedKeyUsage(options.extendedKeyUsage)), critical: false))
        }
        extensions.append(try ExtraExtensions.certificatePolicies([ExtraExtensions.anyPolicy]))
        extensions.append(try ExtraExtensions.crlDistributionPoints([configuration.crlURL(issuer: parent)]))
        extensions.append(try Certificate.Extension(AuthorityInformationAccess([
            .init(method: .ocspServer, location: .uniformResourceIdentifier(configuration.ocspURL)),
            .init(method: .issuingCA, location: .uniformResourceIdentifier(configuration.caIssuersURL(issuer: parent))),
        ]), critical: false))
        let builder = CertificateBuilder(
            serialNumber: SerialNumber.random(), issuer: parentCertificate.subject, subject: options.subject, notBefore: start, notAfter: end,
            publicKey: key.publicKey, extensions: extensions)
        let certificate = try builder.sign(with: parentSigner)
        return try await recordNewIssuer(options.name, certificate: certificate, key: key, parent: parent, isRoot: false, passphrase: passphrase, actor: actor)
    }

    /// For an offline root: makes the intermediate's key (stored encrypted, pending)
    /// and returns the CSR to take to the root.
    public func createIntermediateRequest(_ options: NewCAOptions, passphrase: [UInt8], actor: String) async throws -> CertificationRequest {
        try await requireFreeName(options.name)
        let key = try PrivateKey.generate(options.keyType)
        var request = CSRRequest(subject: options.subject)
        request.keyUsage = KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true)
        let csr = try request.signed(with: key)
        let now = clock.now()
        let record = IssuerRecord(
            name: options.name, parentName: nil, certificatePEM: "", keyBlob: try KeyVault.seal(key, passphrase: passphrase, context: options.name),
            keyType: key.keyType.description, subject: options.subject.openSSLString, notBefore: now, notAfter: now, isRoot: false,
            createdAt: now, status: .pending)
        let fingerprint = key.publicKey.sha256Fingerprint
        let csrPEM = csr.pemString
        try await store.write { session in
            try await session.insertIssuer(record)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "key.created", object: "ca:\(options.name)",
                                                     details: ["key_type": record.keyType, "public_key_sha256": fingerprint]))
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "ca.requested", object: "ca:\(options.name)",
                                                     details: ["subject": record.subject, "csr_sha256": Hex.encode(SHA256.hash(data: Array(csrPEM.utf8)))]))
        }
        signers.withLock { $0[options.name] = SoftwareSigner(key) }
        forgetIssuerSnapshot()
        return csr
    }

    /// Installs the certificate an outside CA signed for a pending intermediate.
    /// Refuses a certificate for another key or one that is not a CA.
    public func importIssuerCertificate(name: String, certificate: X509Certificate, parentChain: [X509Certificate], actor: String) async throws -> IssuerRecord {
        var record = try await issuer(name)
        guard record.status == .pending else { throw SigilError.badInput("CA '\(name)' is not waiting for a certificate (status \(record.status.rawValue))") }
        guard let certificateKey = certificate.publicKey else { throw SigilError.badInput("the certificate's public key is not supported") }
        let csrKey = try pendingPublicKey(record)
        guard certificateKey == csrKey else {
            throw SigilError(.verificationFailed, "the certificate is for a different key than CA '\(name)' holds (certificate key \(certificateKey.sha256Fingerprint.prefix(16))…, CA key \(csrKey.sha256Fingerprint.prefix(16))…)")
        }
        guard certificate.isCertificateAuthority else { throw SigilError(.verificationFailed, "the certificate is not a CA certificate (basicConstraints cA is not TRUE)") }
        if let usage = (try? certificate.extensions.keyUsage) ?? nil, !usage.keyCertSign {
            throw SigilError(.verificationFailed, "the certificate's key usage does not allow signing certificates (keyCertSign)")
        }
        var parentName: String?
        var externals: [IssuerRecord] = []
        if let parent = parentChain.first {
            guard let parentKey = parent.publicKey, certificate.isSigned(by: parentKey) else {
                throw SigilError(.verificationFailed, "the certificate is not signed by the given chain's first certificate")
            }
            for (index, external) in parentChain.enumerated() {
                let externalName = "\(name)-parent\(index == 0 ? "" : "\(index + 1)")"
                externals.append(IssuerRecord(
                    name: externalName, parentName: index + 1 < parentChain.count ? "\(name)-parent\(index + 2)" : nil,
                    certificatePEM: external.pemString, keyBlob: "", keyType: external.publicKey?.keyType.description ?? "unknown",
                    subject: external.subject.openSSLString, notBefore: external.notBefore, notAfter: external.notAfter,
                    isRoot: external.isSelfIssued, createdAt: clock.now(), status: .external))
            }
            parentName = externals.first?.name
        }
        record.certificatePEM = certificate.pemString
        record.subject = certificate.subject.openSSLString
        record.notBefore = certificate.notBefore
        record.notAfter = certificate.notAfter
        record.status = .active
        record.parentName = parentName
        record.isRoot = certificate.isSelfIssued
        let updated = record
        let newExternals = externals
        let now = clock.now()
        let inventory = try CertificateRecord(certificate, issuer: parentName ?? certificate.issuer.openSSLString, source: .imported, profile: "ca", now: now)
        try await store.write { session in
            for external in newExternals where try await session.issuer(named: external.name) == nil { try await session.insertIssuer(external) }
            try await session.updateIssuer(updated)
            if try await session.certificate(fingerprint: inventory.fingerprint) == nil { try await session.insertCertificate(inventory) }
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "ca.imported", object: "ca:\(name)",
                                                     details: ["fingerprint": inventory.fingerprint, "subject": updated.subject]))
        }
        forgetIssuerSnapshot()
        return updated
    }

    private func pendingPublicKey(_ record: IssuerRecord) throws -> PublicKey {
        if let signer = signers.withLock({ $0[record.name] }) { return signer.publicKey }
        throw SigilError.badInput("CA '\(record.name)' is locked: give its passphrase to import its certificate")
    }

    private func requireFreeName(_ name: String) async throws {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", options: .regularExpression) != nil else {
            throw SigilError.badInput("CA name '\(name)' must be 1–63 letters, digits, '.', '_' or '-' (it appears in URLs)")
        }
        forgetIssuerSnapshot()
        if try await store.read({ try await $0.issuer(named: name) }) != nil {
            throw SigilError(.alreadyExists, "a CA named '\(name)' already exists")
        }
    }

    private func recordNewIssuer(_ name: String, certificate: X509Certificate, key: PrivateKey, parent: String?, isRoot: Bool,
                                 passphrase: [UInt8], actor: String) async throws -> IssuerRecord {
        let now = clock.now()
        let record = IssuerRecord(
            name: name, parentName: parent, certificatePEM: certificate.pemString, keyBlob: try KeyVault.seal(key, passphrase: passphrase, context: name),
            keyType: key.keyType.description, subject: certificate.subject.openSSLString, notBefore: certificate.notBefore,
            notAfter: certificate.notAfter, isRoot: isRoot, createdAt: now)
        let inventory = try CertificateRecord(certificate, issuer: parent ?? name, source: .issued, profile: isRoot ? "root-ca" : "sub-ca", now: now)
        try await store.write { session in
            try await session.insertIssuer(record)
            try await session.insertCertificate(inventory)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "key.created", object: "ca:\(name)",
                                                     details: ["key_type": record.keyType, "public_key_sha256": key.publicKey.sha256Fingerprint]))
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "ca.created", object: "ca:\(name)",
                                                     details: ["subject": record.subject, "serial": inventory.serial, "parent": parent ?? "",
                                                               "fingerprint": inventory.fingerprint, "not_after": RFC3339.string(record.notAfter)]))
        }
        signers.withLock { $0[name] = SoftwareSigner(key) }
        forgetIssuerSnapshot()
        return record
    }

    func issuerCertificate(_ record: IssuerRecord) throws -> X509Certificate {
        if let cached = parsedIssuers.withLock({ $0[record.certificatePEM] }) { return cached }
        let certificate = try X509Certificate(pemOrDER: Array(record.certificatePEM.utf8))
        parsedIssuers.withLock { $0[record.certificatePEM] = certificate }
        return certificate
    }

    /// The issuer's certificate followed by its parents, up to the root.
    public func chain(issuer name: String) async throws -> [X509Certificate] {
        let head = try await issuer(name)
        if let cached = chains.withLock({ $0[name] }), cached.pem == head.certificatePEM { return cached.chain }
        let built = try await buildChain(issuer: name)
        chains.withLock { $0[name] = (head.certificatePEM, built) }
        return built
    }

    private func buildChain(issuer name: String) async throws -> [X509Certificate] {
        var chain: [X509Certificate] = []
        var next: String? = name
        var seen = Set<String>()
        while let current = next, !seen.contains(current) {
            seen.insert(current)
            let record = try await issuer(current)
            guard !record.certificatePEM.isEmpty else { break }
            chain.append(try issuerCertificate(record))
            next = record.parentName
        }
        return chain
    }

    // MARK: Audit

    /// Walks the whole chain in pages.
    public func verifyAudit() async throws -> AuditChain.Verification {
        var verifier = AuditChain.Verifier()
        var after: Int64 = 0
        while true {
            let from = after
            let page = try await store.read { try await $0.auditEntries(afterSeq: from, limit: 5000) }
            page.forEach { verifier.feed($0) }
            guard let last = page.last, page.count == 5000 else { break }
            after = last.seq
        }
        return verifier.result
    }
}

extension CertificateRecord {
    /// The inventory record of a certificate.
    public init(_ certificate: X509Certificate, issuer: String, source: CertificateSource, profile: String?, owner: String? = nil,
                tags: [String] = [], requestID: String? = nil, now: Date) throws {
        let keyType = certificate.publicKey?.keyType
        self.init(
            serial: certificate.serialHex, issuer: issuer, subject: certificate.subject.openSSLString,
            commonName: certificate.subject.values(of: .commonName).first, sans: certificate.subjectAltNames.map(\.description),
            notBefore: certificate.notBefore, notAfter: certificate.notAfter, keyType: keyType?.description ?? "unknown",
            keyAlgorithm: keyType?.algorithmName ?? "unknown", keySize: keyType?.size ?? 0,
            signatureAlgorithm: certificate.signatureAlgorithm.description, fingerprint: certificate.sha256Fingerprint,
            source: source, profile: profile, owner: owner, tags: tags, pem: certificate.pemString, requestID: requestID, createdAt: now,
            publicKeySHA256: certificate.publicKeySHA256, isCA: certificate.isCertificateAuthority)
    }
}
