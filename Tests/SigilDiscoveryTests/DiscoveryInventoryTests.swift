import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import NIOSSL
import SigilAuthority
import SigilCore
@testable import SigilDiscovery
import SigilStore
import SigilTesting
import Testing

@Suite("Discovery inventory")
struct DiscoveryInventoryTests {
    @Test("import: each certificate once, sightings per file, Sigil's own certificates stay issued, one audit entry per run")
    func importTwice() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let (csr, _) = try TestAuthority.csr(["svc.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            Issue.record("not issued"); return
        }
        let outside = try Fixtures.certificate("outside.example")
        let expired = try Fixtures.certificate("old.example", notAfter: TestAuthority.defaultNow.addingTimeInterval(-86_400))
        let tree = FileWalker.absolute(ca.directory.file("tree"))
        try FileManager.default.createDirectory(atPath: tree + "/sub", withIntermediateDirectories: true)
        try Data((issued.certificate.pemString + outside.pemString).utf8).write(to: URL(fileURLWithPath: tree + "/bundle.pem"))
        try Data(outside.derBytes).write(to: URL(fileURLWithPath: tree + "/sub/outside.der"))
        try Data(expired.derBytes).write(to: URL(fileURLWithPath: tree + "/sub/old.cer"))
        try Data([0xDE, 0xAD]).write(to: URL(fileURLWithPath: tree + "/junk.bin"))
        // A link back up the tree: the walk must end.
        try FileManager.default.createSymbolicLink(atPath: tree + "/sub/loop", withDestinationPath: tree)

        let inventory = DiscoveryInventory(store: ca.store, actor: "test")
        let countBefore = try await ca.store.read { try await $0.countCertificates() }
        let first = try await inventory.record(import: try FileWalker().collect([tree]), now: ca.clock.now())
        #expect(first.filesRead == 4)
        #expect(first.junk.map(\.path) == [tree + "/junk.bin"])
        #expect(first.inventory == InventoryCounts(certificatesFound: 3, newCertificates: 2, knownCertificates: 1, expired: 1))

        ca.clock.advance(by: 3600)
        let second = try await inventory.record(import: try FileWalker().collect([tree]), now: ca.clock.now())
        #expect(second.inventory == InventoryCounts(certificatesFound: 3, newCertificates: 0, knownCertificates: 3, expired: 1))

        let (own, foreign, sightings, audit) = try await ca.store.read { session in
            (try await session.certificate(fingerprint: issued.record.fingerprint), try await session.certificate(fingerprint: outside.sha256Fingerprint),
             try await session.sightings(fingerprint: outside.sha256Fingerprint), try await session.auditEntries(afterSeq: 0, limit: 1000))
        }
        #expect(own?.source == .issued)
        #expect(foreign?.source == .imported)
        #expect(foreign?.issuer == outside.issuer.openSSLString)
        #expect(Set(sightings.map(\.location)) == [tree + "/bundle.pem", tree + "/sub/outside.der"])
        #expect(sightings.first { $0.location == tree + "/bundle.pem" }?.chainPosition == 1)
        #expect(sightings.allSatisfy { $0.lastSeen == ca.clock.now() && $0.firstSeen == TestAuthority.defaultNow && $0.kind == .file })
        let runs = audit.filter { $0.action == "discovery.import" }
        #expect(runs.count == 2)
        let details = try JSONSerialization.jsonObject(with: Data(try #require(runs.last).details.utf8)) as? [String: String]
        #expect(details?["new"] == "0" && details?["certificates"] == "3" && details?["junk"] == "1")
        #expect(try await ca.store.read { try await $0.countCertificates() } == countBefore + 2)
    }

    @Test("the walk: a missing path is bad input; unreadable files are skipped with a note")
    func walk() throws {
        let directory = try TemporaryDirectory("sigil-walk")
        defer { directory.remove() }
        #expect(throws: SigilError.self) { try FileWalker().collect([directory.file("missing")]) }
        let locked = try directory.write("x", to: "locked.pem")
        chmod(locked, 0)
        let collection = try FileWalker().collect([directory.path])
        if getuid() == 0 {
            #expect(collection.files.count == 1)  // root reads anything
        } else {
            #expect(collection.skipped.map(\.path) == [locked])
            #expect(collection.skipped.first?.reason.hasPrefix("not readable") == true)
        }
    }

    @Test("scan: a TLS server's chain, version and cipher; refused and non-TLS endpoints are listed, not fatal")
    func scan() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let key = try PrivateKey.generate(.ecP256)
        let leaf = try Fixtures.certificate("tls.example", key: key)
        let extra = try Fixtures.certificate("extra.example")
        let tls = try await LoopbackServer.tls(chain: [leaf, extra], key: key)
        let plain = try await LoopbackServer.plain()
        let closed = try RefusingPort()
        let closedPort = closed.port
        defer { closed.close(); Task { try? await tls.close(); try? await plain.close() } }

        var targets = try ScanTargets(serverName: "tls.example")
        for port in [tls.port, plain.port, closedPort] { try targets.add("127.0.0.1:\(port)") }
        // No endpoint here is silent: the timeout only bounds a handshake slowed by parallel tests.
        let summary = try await Discovery.scan(targets, timeout: .seconds(15), concurrency: 4, store: ca.store, actor: "test", clock: ca.clock)
        #expect(summary.endpointsScanned == 3 && summary.endpointsReached == 1 && summary.endpointsUnreachable == 2)
        let endpoint = try #require(summary.endpoints.first)
        #expect(endpoint.location == "127.0.0.1:\(tls.port)" && endpoint.serverName == "tls.example" && endpoint.address == "127.0.0.1")
        #expect(endpoint.chain == [leaf.sha256Fingerprint, extra.sha256Fingerprint])
        #expect(endpoint.tlsVersion == "TLSv1.3")
        #expect(endpoint.cipher?.hasPrefix("TLS_") == true)
        #expect(Set(summary.unreachable.map(\.reason)) == ["TLS handshake failed", "connection refused"])
        let sighting = try await ca.store.read { try await $0.sightings(fingerprint: extra.sha256Fingerprint) }
        #expect(sighting.count == 1 && sighting[0].chainPosition == 1 && sighting[0].cipher == endpoint.cipher && sighting[0].port == tls.port)
        #expect(try await ca.store.read { try await $0.certificate(fingerprint: leaf.sha256Fingerprint) }?.source == .discovered)
    }

    @Test("the ServerHello parser reads the suite across record boundaries and waits for more bytes")
    func serverHello() {
        var hello: [UInt8] = [0x02, 0x00, 0x00, 0x2A, 0x03, 0x03] + [UInt8](repeating: 7, count: 32) + [0x02, 0xAA, 0xBB, 0x13, 0x02, 0x00]
        let record = { (payload: ArraySlice<UInt8>) -> [UInt8] in [0x16, 0x03, 0x03, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload }
        #expect(ServerHello.cipherSuite(inRecords: record(hello[...])) == 0x1302)
        #expect(ServerHello.cipherSuite(inRecords: record(hello[0..<20]) + record(hello[20...])) == 0x1302)
        #expect(ServerHello.cipherSuite(inRecords: Array(record(hello[...]).prefix(30))) == nil)
        hello[0] = 0x0B
        #expect(ServerHello.cipherSuite(inRecords: record(hello[...])) == nil)
        #expect(TLSCipherSuites.name(0x1302) == "TLS_AES_256_GCM_SHA384" && TLSCipherSuites.name(0x1234) == "0x1234")
    }
}

/// Servers on 127.0.0.1 with an ephemeral port, for the prober to meet.
struct LoopbackServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func tls(chain: [X509Certificate], key: PrivateKey) async throws -> LoopbackServer {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pkcs8PEM().utf8), format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackServer(channel: channel)
    }

    /// Accepts and answers garbage: not TLS.
    static func plain() async throws -> LoopbackServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(NotTLS()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackServer(channel: channel)
    }

    func close() async throws { try await channel.close() }
}

/// A loopback port that is bound but not listening: a connection to it is refused, and while this
/// holds it no other socket can be given the port (one closed after use could go to another
/// test's socket before the scan reaches it: tests run in parallel).
final class RefusingPort: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EBADF) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }
}

/// Answers whatever comes with an HTTP error, as a plain HTTP server on a TLS port would.
final class NotTLS: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.0 400 Bad Request\r\n\r\n")), promise: nil)
        context.close(promise: nil)
    }
}
