import Crypto
import Foundation
import SigilCore
import X509

/// A key, its certificate and the chain above it, checked to belong together.
public struct CertificateBundle: Sendable {
    public var keyPEM: String
    public var certificate: X509Certificate
    public var chain: [X509Certificate]

    public init(keyPEM: String, certificate: X509Certificate, chain: [X509Certificate]) {
        self.keyPEM = keyPEM
        self.certificate = certificate
        self.chain = chain
    }

    /// The bytes written for each file role.
    public func contents(_ role: FileRole) -> [UInt8] {
        switch role {
        case .key: return Array(keyPEM.utf8)
        case .certificate: return Array(certificate.pemString.utf8)
        case .chain: return Array(chain.map(\.pemString).joined().utf8)
        case .fullchain: return Array(([certificate] + chain).map(\.pemString).joined().utf8)
        }
    }

    /// The private key matches the certificate's public key, and every certificate is
    /// signed by the next one in the chain (checked with swift-certificates), so a
    /// deployment never installs a pair a TLS server would refuse to load.
    public func verify() throws {
        let key = try PrivateKey.decode(Array(keyPEM.utf8), source: "the new key", passphrase: { nil }).key
        guard let certificateKey = certificate.publicKey, certificateKey == key.publicKey else {
            throw SigilError(.verificationFailed, "the certificate's public key does not match the private key")
        }
        guard !chain.isEmpty else { throw SigilError(.verificationFailed, "the CA returned no chain above the certificate") }
        let all = try ([certificate] + chain).map { try Certificate(derEncoded: $0.derBytes) }
        for index in 0..<(all.count - 1) {
            let child = all[index], parent = all[index + 1]
            guard child.issuer == parent.subject, parent.publicKey.isValidSignature(child.signature, for: child) else {
                throw SigilError(.verificationFailed,
                                 "the chain does not verify: certificate \(index) (\(child.subject)) is not signed by the next one (\(parent.subject))")
            }
        }
    }

    /// Reads a deployed bundle back from its files; nil when any is missing or unreadable.
    public static func read(key: String, certificate: String, chain: String?) -> CertificateBundle? {
        guard let keyBytes = AtomicFile.read(key), let certBytes = AtomicFile.read(certificate),
              let cert = try? X509Certificate(pemOrDER: certBytes, source: certificate) else { return nil }
        var chainCertificates: [X509Certificate] = []
        if let chain, let bytes = AtomicFile.read(chain), let text = String(bytes: bytes, encoding: .utf8) {
            chainCertificates = (try? X509Certificate.parseChain(pem: text, source: chain)) ?? []
        }
        return CertificateBundle(keyPEM: String(decoding: keyBytes, as: UTF8.self), certificate: cert, chain: chainCertificates)
    }
}

/// Crash-safe deployment of several files.
///
/// One rename is atomic, four are not. So: every new file is written beside its
/// target and fsynced first; then a journal naming each temporary file, its target
/// and its SHA-256 is written atomically and fsynced; then the renames run back to back
/// (key, certificate and fullchain adjacent, so a reader's window on a mismatched pair is
/// a few system calls); then the journal is removed. `recover` on the next start
/// finishes the renames of a journaled deployment (its temporaries are complete), or
/// deletes the temporaries of one that never reached its journal: after a crash at
/// any point the deployed key and certificate match again, old or new.
public struct Deployer: Sendable {
    public let state: StateDirectory
    /// Test hook (SIGIL_AGENT_TEST_HALT_BEFORE=step): announce that step on stderr and halt
    /// before it for good, so a test can SIGKILL the process there. A halt rather than a
    /// delay: a test that is slow to read the announcement must not find the step done.
    public var haltBefore: String?
    public var log: @Sendable (String) -> Void
    /// Test hook: stop dead before this step (no cleanup), as a crash would.
    public var interruptBefore: String?

    /// Thrown by `interruptBefore`.
    public struct Interrupted: Error {}

    public init(state: StateDirectory, haltBefore: String? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.state = state
        self.haltBefore = haltBefore
        self.log = log
    }

    struct Journal: Codable {
        struct Entry: Codable {
            var role: FileRole
            var target: String
            var temporary: String
            var sha256: String
        }
        var name: String
        var files: [Entry]
    }

    static let temporarySuffix = "sigil-new"

    private func step(_ name: String, _ what: String) throws {
        if interruptBefore == what { throw Interrupted() }
        guard haltBefore == what else { return }
        FileHandle.standardError.write(Data("agent: test step: \(name): \(what) (halted)\n".utf8))
        while true { Thread.sleep(forTimeInterval: 3_600) }
    }

    /// Checks `bundle`, writes it for `certificate` and keeps the version it replaces.
    public func deploy(_ bundle: CertificateBundle, for certificate: ManagedCertificate) throws {
        try bundle.verify()
        let name = certificate.name
        var entries: [Journal.Entry] = []
        do {
            try step(name, "stage")
            for (role, target) in certificate.targets {
                let bytes = bundle.contents(role)
                let temporary = try AtomicFile.writeTemporary(bytes, beside: target.path, mode: target.mode, suffix: Deployer.temporarySuffix)
                entries.append(Journal.Entry(role: role, target: target.path, temporary: temporary, sha256: Hex.encode(SHA256.hash(data: bytes))))
                try FileOwnership.apply(target, to: temporary)
            }
            for directory in Set(entries.map { URL(fileURLWithPath: $0.target).deletingLastPathComponent().path }) {
                AtomicFile.syncDirectory(directory)
            }
            try step(name, "keep-previous")
            try keepPrevious(certificate)
            try step(name, "journal")
            let journal = Journal(name: name, files: entries)
            try AtomicFile.write(Array(try AgentJSON.encoder.encode(journal)), to: state.journal(name), mode: 0o600)
        } catch {
            if !(error is Interrupted) { for entry in entries { unlink(entry.temporary) } }
            throw error
        }
        // From here on the deployment is decided: recover() completes it after a crash.
        for entry in entries {
            try step(name, "rename-\(entry.role.rawValue)")
            guard rename(entry.temporary, entry.target) == 0 else {
                throw SigilError(.io, "cannot move the new \(entry.role.rawValue) into \(entry.target): \(String(cString: strerror(errno))); the next start completes it")
            }
        }
        for directory in Set(entries.map { URL(fileURLWithPath: $0.target).deletingLastPathComponent().path }) {
            AtomicFile.syncDirectory(directory)
        }
        try step(name, "commit")
        unlink(state.journal(name))
        AtomicFile.syncDirectory(of: state.journal(name))
    }

    /// What `recover` found.
    public enum Recovery: Equatable, Sendable {
        case nothing
        /// A journaled deployment was finished: the new files are in place (reload them).
        case completed
        /// An unjournaled deployment was abandoned: its temporary files were removed.
        case discarded
    }

    /// Finishes or undoes a deployment a crash interrupted.
    public func recover(_ certificate: ManagedCertificate) throws -> Recovery {
        try settlePrevious(certificate.name)
        let journalPath = state.journal(certificate.name)
        if let data = AtomicFile.read(journalPath) {
            guard let journal = try? AgentJSON.decoder.decode(Journal.self, from: Data(data)) else {
                throw SigilError(.io, "the deployment journal \(journalPath) is damaged; check the deployed files and remove it")
            }
            for entry in journal.files where FileManager.default.fileExists(atPath: entry.temporary) {
                guard rename(entry.temporary, entry.target) == 0 else {
                    throw SigilError(.io, "cannot complete the interrupted deployment of \(entry.target): \(String(cString: strerror(errno)))")
                }
            }
            for directory in Set(journal.files.map { URL(fileURLWithPath: $0.target).deletingLastPathComponent().path }) {
                AtomicFile.syncDirectory(directory)
            }
            for entry in journal.files {
                let now = AtomicFile.read(entry.target).map { Hex.encode(SHA256.hash(data: $0)) }
                if now != entry.sha256 {
                    log("\(certificate.name): \(entry.target) changed after the interrupted deployment; leaving it as it is")
                }
            }
            unlink(journalPath)
            AtomicFile.syncDirectory(of: journalPath)
            log("\(certificate.name): completed a deployment interrupted by a crash")
            return .completed
        }
        var removed = false
        for (_, target) in certificate.targets {
            let url = URL(fileURLWithPath: target.path)
            let directory = url.deletingLastPathComponent().path
            let prefix = ".\(url.lastPathComponent).\(Deployer.temporarySuffix)-"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where entry.hasPrefix(prefix) {
                unlink(directory + "/" + entry)
                removed = true
            }
        }
        if removed { log("\(certificate.name): removed the files of a deployment interrupted before its journal; the previous files stay") }
        return removed ? .discarded : .nothing
    }

    // MARK: The previous version

    /// Copies the currently deployed files to `previous/NAME` (through `NAME.new`, swapped
    /// in by renames that `settlePrevious` finishes after a crash).
    func keepPrevious(_ certificate: ManagedCertificate) throws {
        guard let current = CertificateBundle.read(key: certificate.key.path, certificate: certificate.certificate.path, chain: certificate.chain?.path),
              (try? current.verifyKeyMatch()) == true else { return }
        let target = state.previous(certificate.name)
        let fresh = target + ".new", old = target + ".old"
        try? FileManager.default.removeItem(atPath: fresh)
        try AtomicFile.makeDirectory(fresh, mode: 0o700)
        for role in FileRole.allCases {
            try AtomicFile.write(current.contents(role), to: "\(fresh)/\(role.rawValue).pem", mode: 0o600)
        }
        if FileManager.default.fileExists(atPath: target) {
            try? FileManager.default.removeItem(atPath: old)
            guard rename(target, old) == 0 else { throw SigilError(.io, "cannot update \(target): \(String(cString: strerror(errno)))") }
        }
        guard rename(fresh, target) == 0 else { throw SigilError(.io, "cannot update \(target): \(String(cString: strerror(errno)))") }
        AtomicFile.syncDirectory(of: target)
        try? FileManager.default.removeItem(atPath: old)
    }

    func settlePrevious(_ name: String) throws {
        let target = state.previous(name)
        let fresh = target + ".new", old = target + ".old"
        let manager = FileManager.default
        if !manager.fileExists(atPath: target), manager.fileExists(atPath: fresh) {
            if rename(fresh, target) == 0 { AtomicFile.syncDirectory(of: target) }
        }
        if manager.fileExists(atPath: target) {
            try? manager.removeItem(atPath: fresh)
            try? manager.removeItem(atPath: old)
        } else if manager.fileExists(atPath: old) {
            _ = rename(old, target)
        }
    }

    /// The version kept by the last deployment, if any.
    public func previousBundle(_ name: String) -> CertificateBundle? {
        let base = state.previous(name)
        return CertificateBundle.read(key: base + "/key.pem", certificate: base + "/certificate.pem", chain: base + "/chain.pem")
    }
}

extension CertificateBundle {
    func verifyKeyMatch() throws -> Bool {
        let key = try PrivateKey.decode(Array(keyPEM.utf8), source: "key", passphrase: { nil }).key
        return certificate.publicKey == key.publicKey
    }
}

/// Owner and group names to ids, and applying them.
public enum FileOwnership {
    public static func userID(_ name: String) -> uid_t? {
        if let id = uid_t(name) { return id }
        return getpwnam(name)?.pointee.pw_uid
    }

    public static func groupID(_ name: String) -> gid_t? {
        if let id = gid_t(name) { return id }
        return getgrnam(name)?.pointee.gr_gid
    }

    static func apply(_ target: DeployTarget, to path: String) throws {
        guard target.owner != nil || target.group != nil else { return }
        let uid = target.owner.flatMap(userID) ?? uid_t.max
        let gid = target.group.flatMap(groupID) ?? gid_t.max
        guard chown(path, uid, gid) == 0 else {
            throw SigilError(.io, "cannot give \(target.path) to \(target.owner ?? "-"):\(target.group ?? "-"): \(String(cString: strerror(errno)))")
        }
        // chown may clear mode bits; set them again.
        chmod(path, target.mode)
    }
}
