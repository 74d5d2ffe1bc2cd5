import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SigilAuthority
import SigilCore
@testable import SigilServer
import SigilStore
import SigilTesting
import Testing
import X509

@Suite("CRL and OCSP over HTTP")
struct RevocationSurfaceTests {
    @Test("OCSP: good, revoked, unknown, unauthorized, malformed; cached; nonce echoed", arguments: [OCSPResponder.SignerMode.ca, .delegated])
    func ocsp(mode: OCSPResponder.SignerMode) async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let env = ServerEnvironment(authority: ca.authority, metrics: SigilMetrics(), ocspSigner: mode)
        let (csr, _) = try TestAuthority.csr(["o.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else {
            Issue.record("not issued"); return
        }
        let intermediate = issued.chain[0]
        let good = try OCSPTestRequest.make(issuer: intermediate, serials: [issued.certificate.serialNumber])
        let app = Application(router: SigilApplication.publicRouter(env))
        try await app.test(.router) { client in
            var first = ByteBuffer()
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: good)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/ocsp-response")
                #expect(response.headers[.cacheControl]?.contains("max-age") == true)
                first = response.body
            }
            // The same request again is served from the cache: byte for byte the same signed response.
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: good)) { response in
                #expect(response.body == first)
            }
            #expect(Array(first.readableBytesView.prefix(5)) == [0x30, 0x82, first.readableBytesView[first.readerIndex + 2], first.readableBytesView[first.readerIndex + 3], 0x0a] || first.readableBytes > 100)
            _ = try await ca.authority.revoke(issued.record.serial, reason: .keyCompromise, actor: "t")
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: good)) { response in
                #expect(response.body != first)
                // revoked [1] with reason keyCompromise [0] { ENUMERATED 1 }
                #expect(Array(response.body.readableBytesView).firstRange(of: [0xa0, 0x03, 0x0a, 0x01, 0x01]) != nil)
            }
            let base64 = Data(good).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try await client.execute(uri: "/ocsp/\(base64)", method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(response.body.readableBytesView).firstRange(of: [0xa0, 0x03, 0x0a, 0x01, 0x01]) != nil)
            }
            let unknown = try OCSPTestRequest.make(issuer: intermediate, serials: [[0x12, 0x34]])
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: unknown)) { response in
                // unknown [2] IMPLICIT NULL
                #expect(Array(response.body.readableBytesView).firstRange(of: [0x82, 0x00, 0x18, 0x0f]) != nil)
            }
            let otherKey = try PrivateKey.generate(.ecP256)
            let stranger = try CertificateBuilder(
                serialNumber: [9], issuer: try DistinguishedName.parseOpenSSL("/CN=Stranger"), subject: try DistinguishedName.parseOpenSSL("/CN=Stranger"),
                notBefore: TestAuthority.defaultNow, notAfter: TestAuthority.defaultNow.addingTimeInterval(86_400), publicKey: otherKey.publicKey, extensions: []
            ).sign(with: otherKey)
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"],
                                     body: ByteBuffer(bytes: try OCSPTestRequest.make(issuer: stranger, serials: [[1]]))) { response in
                #expect(Array(response.body.readableBytesView) == OCSP.errorResponse(.unauthorized))
            }
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(string: "junk")) { response in
                #expect(response.status == .ok)
                #expect(Array(response.body.readableBytesView) == OCSP.errorResponse(.malformedRequest))
            }
            try await client.execute(uri: "/ocsp/%%%", method: .get) { response in
                #expect(Array(response.body.readableBytesView) == OCSP.errorResponse(.malformedRequest))
            }
            let nonce = Array("nonce-nonce-1234".utf8)
            let withNonce = try OCSPTestRequest.make(issuer: intermediate, serials: [issued.certificate.serialNumber], nonce: nonce)
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: withNonce)) { response in
                #expect(Array(response.body.readableBytesView).firstRange(of: nonce) != nil)
                #expect(response.headers[.cacheControl] == "no-store")
            }
        }
    }

    @Test func crlIsServedWithCachingHeadersAndConditionalRequests() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let env = ServerEnvironment(authority: ca.authority, metrics: SigilMetrics())
        let app = Application(router: SigilApplication.publicRouter(env))
        try await app.test(.router) { client in
            var etag = ""
            try await client.execute(uri: "/crl/intermediate.crl", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/pkix-crl")
                etag = response.headers[.eTag] ?? ""
                #expect(response.headers[.lastModified] != nil && response.headers[.cacheControl]?.contains("max-age") == true)
                let crl = try CertificateRevocationList(derEncoded: Array(response.body.readableBytesView))
                #expect(crl.entries.isEmpty)
            }
            try await client.execute(uri: "/crl/intermediate.crl", method: .get, headers: [.ifNoneMatch: etag]) { response in
                #expect(response.status == .notModified)
            }
            try await client.execute(uri: "/crl/nope.crl", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
        let (csr, _) = try TestAuthority.csr(["c.example.com"])
        guard case .issued(let issued) = try await ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t")) else { return }
        _ = try await ca.authority.revoke(issued.record.serial, reason: .cessationOfOperation, actor: "t")
        try await app.test(.router) { client in
            try await client.execute(uri: "/crl/intermediate.crl", method: .get) { response in
                let crl = try CertificateRevocationList(derEncoded: Array(response.body.readableBytesView))
                #expect(crl.entries.map { Hex.encode($0.serial) } == [issued.record.serial])
            }
        }
    }
}

@Suite("OCSP GET paths")
struct OCSPGetPathTests {
    /// Bytes whose base64 holds `//`, starts with `/` and holds `+`: the raw forms that router
    /// path segments used to mangle (empty segments dropped), found by a flaky CI run.
    @Test("raw, percent-encoded and base64url forms decode to the same bytes")
    func forms() throws {
        let bytes: [UInt8] = [0xff, 0xff, 0xfe, 0x30, 0x0b, 0xff, 0xff, 0xff, 0xfb, 0xef, 0xbe]
        let base64 = Data(bytes).base64EncodedString()
        #expect(base64.hasPrefix("/") && base64.contains("//") && base64.contains("+"), "the sample must exercise the traps: \(base64)")
        let percent = base64.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let url = base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        for form in [base64, percent, url, base64.replacingOccurrences(of: "=", with: "")] {
            #expect(OCSPResponder.requestFromGETPath("/ocsp/" + form) == bytes, "form \(form)")
        }
        #expect(OCSPResponder.requestFromGETPath("/ocsp/") == nil)
        #expect(OCSPResponder.requestFromGETPath("/ocsp/%%%") == nil)
        #expect(OCSPResponder.requestFromGETPath("/ocsp/a") == nil)
        #expect(OCSPResponder.requestFromGETPath("/crl/abcd") == nil)
    }
}

@Suite("Sharded CRLs over HTTP")
struct ShardedCRLSurfaceTests {
    @Test func shardURLsServeTheirShard() async throws {
        let ca = try await TestAuthority.make(crlShards: 2)
        defer { Task { await ca.close() } }
        let env = ServerEnvironment(authority: ca.authority, metrics: SigilMetrics())
        let app = Application(router: SigilApplication.publicRouter(env))
        try await app.test(.router) { client in
            for shard in 0..<2 {
                try await client.execute(uri: "/crl/intermediate/\(shard).crl", method: .get) { response in
                    #expect(response.status == .ok)
                    let crl = try CertificateRevocationList(derEncoded: Array(response.body.readableBytesView))
                    #expect(crl.issuingDistributionPoint == "http://pki.example.com/crl/intermediate/\(shard).crl")
                }
            }
            try await client.execute(uri: "/crl/intermediate/2.crl", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }
}
