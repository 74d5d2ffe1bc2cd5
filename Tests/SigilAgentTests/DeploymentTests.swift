import Foundation
import SigilAgent
import SigilCore
import SigilTesting
import Testing

@Suite("Deployment and its journal")
struct DeploymentTests {
    func setup() throws -> (TemporaryDirectory, Deployer, MiniCA) {
        let directory = try TemporaryDirectory("agent-deploy")
        let state = StateDirectory(path: directory.file("state"))
        try state.prepare()
        return (directory, Deployer(state: state), try MiniCA())
    }

    /// The serial of the certificate on disk, and whether the key on disk matches it.
    func onDisk(_ certificate: ManagedCertificate) throws -> (serial: String, matches: Bool) {
        let bundle = try #require(CertificateBundle.read(key: certificate.key.path, certificate: certificate.certificate.path, chain: certificate.chain?.path))
        let key = try PrivateKey.decode(Array(bundle.keyPEM.utf8), source: "key", passphrase: { nil }).key
        return (bundle.certificate.serialHex, bundle.certificate.publicKey == key.publicKey)
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o777
    }

    @Test("a deployment writes every file with its mode, leaves no temporaries, and keeps the previous version")
    func deploys() throws {
        let (directory, deployer, ca) = try setup()
        defer { directory.remove() }
        let cert = managed("web", in: directory)
        let first = try ca.issue(["www.example.com"])
        try deployer.deploy(first, for: cert)
        #expect(try onDisk(cert) == (first.certificate.serialHex, true))
        #expect(mode(cert.key.path) == 0o600)
        #expect(mode(cert.certificate.path) == 0o644)
        let fullchain = try X509Certificate.parseChain(pem: String(contentsOfFile: cert.fullchain!.path, encoding: .utf8))
        #expect(fullchain.map(\.serialHex) == [first.certificate.serialHex, ca.certificate.serialHex])
        #expect(!directory.entries().contains { $0.contains("sigil-new") })
        #expect(deployer.previousBundle("web") == nil)

        let second = try ca.issue(["www.example.com"])
        try deployer.deploy(second, for: cert)
        #expect(try onDisk(cert).serial == second.certificate.serialHex)
        #expect(deployer.previousBundle("web")?.certificate.serialHex == first.certificate.serialHex)
        #expect(mode(deployer.state.previous("web") + "/key.pem") == 0o600)
    }

    @Test("a key that does not match, or a chain that does not verify, is refused and nothing changes")
    func refusesMismatch() throws {
        let (directory, deployer, ca) = try setup()
        defer { directory.remove() }
        let cert = managed("web", in: directory)
        let good = try ca.issue(["www.example.com"])
        try deployer.deploy(good, for: cert)

        var wrongKey = try ca.issue(["www.example.com"])
        wrongKey.keyPEM = try PrivateKey.generate(.ecP256).pkcs8PEM()
        #expect(throws: SigilError.self) { try deployer.deploy(wrongKey, for: cert) }

        var wrongChain = try ca.issue(["www.example.com"])
        wrongChain.chain = [try MiniCA(name: "Another Root").certificate]
        #expect(throws: SigilError.self) { try deployer.deploy(wrongChain, for: cert) }

        var noChain = try ca.issue(["www.example.com"])
        noChain.chain = []
        #expect(throws: SigilError.self) { try deployer.deploy(noChain, for: cert) }

        #expect(try onDisk(cert) == (good.certificate.serialHex, true))
        #expect(!directory.entries().contains { $0.contains("sigil-new") })
    }

    @Test("a crash before the journal leaves the old pair; recovery removes the temporaries",
          arguments: ["keep-previous", "journal"])
    func crashBeforeJournal(step: String) throws {
        let (directory, deployer, ca) = try setup()
        defer { directory.remove() }
        let cert = managed("web", in: directory)
        let old = try ca.issue(["www.example.com"])
        try deployer.deploy(old, for: cert)
        var crashing = deployer
        crashing.interruptBefore = step
        #expect(throws: Deployer.Interrupted.self) { try crashing.deploy(try ca.issue(["www.example.com"]), for: cert) }
        #expect(directory.entries().contains { $0.contains("sigil-new") })
        #expect(try deployer.recover(cert) == .discarded)
        #expect(try onDisk(cert) == (old.certificate.serialHex, true))
        #expect(!directory.entries().contains { $0.contains("sigil-new") })
        #expect(try deployer.recover(cert) == .nothing)
    }

    @Test("a crash between the renames is completed from the journal: the new pair, matching",
          arguments: ["rename-key", "rename-certificate", "rename-fullchain", "commit"])
    func crashDuringRenames(step: String) throws {
        let (directory, deployer, ca) = try setup()
        defer { directory.remove() }
        let cert = managed("web", in: directory)
        try deployer.deploy(try ca.issue(["www.example.com"]), for: cert)
        let new = try ca.issue(["www.example.com"])
        var crashing = deployer
        crashing.interruptBefore = step
        #expect(throws: Deployer.Interrupted.self) { try crashing.deploy(new, for: cert) }
        #expect(FileManager.default.fileExists(atPath: deployer.state.journal("web")))
        #expect(try deployer.recover(cert) == .completed)
        #expect(try onDisk(cert) == (new.certificate.serialHex, true))
        let fullchain = try X509Certificate.parseChain(pem: String(contentsOfFile: cert.fullchain!.path, encoding: .utf8))
        #expect(fullchain.first?.serialHex == new.certificate.serialHex)
        #expect(!FileManager.default.fileExists(atPath: deployer.state.journal("web")))
        #expect(!directory.entries().contains { $0.contains("sigil-new") })
    }

    @Test("a crash while the previous version is swapped is settled on recovery")
    func previousSwap() throws {
        let (directory, deployer, ca) = try setup()
        defer { directory.remove() }
        let cert = managed("web", in: directory)
        let first = try ca.issue(["www.example.com"])
        try deployer.deploy(first, for: cert)
        try deployer.deploy(try ca.issue(["www.example.com"]), for: cert)
        // As if killed between `previous/web -> web.old` and `web.new -> web`.
        let previous = deployer.state.previous("web")
        #expect(rename(previous, previous + ".new") == 0)
        _ = try deployer.recover(cert)
        #expect(deployer.previousBundle("web")?.certificate.serialHex == first.certificate.serialHex)
        #expect(!FileManager.default.fileExists(atPath: previous + ".new"))
    }

    @Test("rollback restores the previous pair through the same journaled path")
    func rollback() async throws {
        let directory = try TemporaryDirectory("agent-rollback")
        defer { directory.remove() }
        let ca = try MiniCA()
        let cert = managed("web", in: directory)
        let configuration = AgentConfiguration(file: directory.file("agent.yaml"), stateDirectory: directory.file("state"), certificates: [cert])
        let agent = try Agent(configuration: configuration, environment: [:], log: { _ in })
        let deployer = Deployer(state: agent.state)
        let first = try ca.issue(["www.example.com"]), second = try ca.issue(["www.example.com"])
        try deployer.deploy(first, for: cert)
        try deployer.deploy(second, for: cert)
        let result = try await agent.rollback("web")
        #expect(result == nil)
        #expect(try onDisk(cert) == (first.certificate.serialHex, true))
        // Rolling back again returns to the newer one: the rolled-back version became "previous".
        _ = try await agent.rollback("web")
        #expect(try onDisk(cert).serial == second.certificate.serialHex)
        let status = agent.status()
        #expect(status.first?.serial == second.certificate.serialHex)
        #expect(status.first?.previousSerial == first.certificate.serialHex)
    }
}

