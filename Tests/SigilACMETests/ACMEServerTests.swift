import Foundation
import Logging
@testable import SigilACME
import SigilAuthority
import SigilCore
import SigilStore
import SigilTesting
import Testing
import X509

/// Challenge outcomes decided by the test. The network validators themselves are exercised
/// against real clients (lego, certbot) and responders in tests/interop/test_acme_*.py.
struct StubValidator: ChallengeValidator {
    var failure: ACMEProblem?
    func validate(type: String, identifier: ACMEIdentifier, token: String, keyAuthorization: String) async throws(ACMEProblem) {
        if let failure { throw failure }
    }
}

struct ACMEFixture {
    let ca: TestAuthority
    let server: ACMEServer

    static func make(eabRequired: Bool = false, failure: ACMEProblem? = nil, limits: ACMERateLimits = ACMERateLimits(),
                     allowed: [String] = []) async throws -> ACMEFixture {
        let ca = try await TestAuthority.make()
        let provisioner = ACMEProvisioner(name: "acme", allowedNames: try allowed.map { try NamePattern($0) }, eabRequired: eabRequired)
        let configuration = ACMEConfiguration(provisioners: [provisioner], rateLimits: limits)
        let nonces = try await NonceLedger.make(store: ca.store, mode: .memory, clock: ca.clock)
        let server = ACMEServer(authority: ca.authority, configuration: configuration, nonces: nonces, validator: StubValidator(failure: failure),
                                baseURL: "https://acme.example.com", logger: Logger(label: "test"))
        try await ca.authority.unlock("intermediate", passphrase: TestAuthority.passphrase)
        try await ca.authority.unlock("root", passphrase: TestAuthority.passphrase)
        return ACMEFixture(ca: ca, server: server)
    }

    func client(_ keyType: KeyType = .ecP256) throws -> ACMETestClient { try ACMETestClient(server: server, keyType: keyType) }

    /// Registers, orders `names`, answers every http-01 (or dns-01) challenge; returns the order URL and body.
    func readyOrder(_ client: ACMETestClient, _ names: [String], profile: String? = nil) async throws -> (String, [String: Any]) {
        if client.accountURL == nil { try await client.register() }
        var payload: [String: Any] = ["identifiers": names.map { ["type": NameRules.parseIPAddress($0) != nil ? "ip" : "dns", "value": $0] }]
        if let profile { payload["profile"] = profile }
        let created = try await client.send(client.url("new-order"), payload: payload)
        #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        let orderURL = try #require(created.header("Location"))
        for authzURL in ACMETestClient.json(created)["authorizations"] as? [String] ?? [] {
            let authz = ACMETestClient.json(try await client.send(authzURL, payload: nil))
            guard authz["status"] as? String == "pending" else { continue }
            let challenges = authz["challenges"] as? [[String: Any]] ?? []
            let challenge = try #require(challenges.first { $0["type"] as? String == "http-01" } ?? challenges.first)
            _ = try await client.send(challenge["url"] as! String, payload: [String: Any]())
        }
        return (orderURL, ACMETestClient.json(try await client.send(orderURL, payload: nil)))
    }

    func close() async { await ca.close() }
}

@Suite("ACME: JWS and accounts")
struct ACMEJWSTests {
    @Test("base64url: round trips every length; refuses padding, other alphabets and stray bits")
    func base64url() throws {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: ""))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.decode("YQ==") == nil)
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("YR") == nil)   // 'R' leaves non-zero bits after one byte
        #expect(Base64URL.decode("Y") == nil)
        #expect(JSONText.encode(["b": [1, true, "x\"\n"], "a": ["c": false]]) == Array(#"{"a":{"c":false},"b":[1,true,"x\"\n"]}"#.utf8))
    }

    @Test("RFC 8037 A.3 thumbprint of an Ed25519 JWK")
    func thumbprint() throws {
        let jwk = try JWK(json: ["kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"])
        #expect(jwk.thumbprint == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    }

    @Test("accounts with every accepted algorithm; the same key finds the same account",
          arguments: [KeyType.ecP256, .ecP384, .ecP521, .rsa(bits: 2048), .ed25519])
    func algorithms(keyType: KeyType) async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client(keyType)
        let created = try await client.register(contact: ["mailto:ops@example.com"])
        #expect(created.status == 201)
        let again = try await client.register()
        #expect(again.status == 200)
        #expect(again.header("Location") == created.header("Location"))
        #expect(created.header("Replay-Nonce") != nil)
        #expect(created.header("Link")?.contains("rel=\"index\"") == true)
    }

    @Test("forged and malformed requests get the RFC 8555 problem types")
    func forgeries() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        try await client.register()
        let newOrder = client.url("new-order")
        let order: [String: Any] = ["identifiers": [["type": "dns", "value": "a.example.com"]]]

        // A replayed request: the nonce was used.
        client.nonce = await client.freshNonce()
        let body = try client.jws(url: newOrder, payload: order)
        #expect(await client.post(newOrder, body: body).status == 201)
        let replay = await client.post(newOrder, body: body)
        #expect(replay.status == 400 && replay.problemType == "badNonce")

        // A nonce this server never issued, and none at all.
        #expect(await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["nonce": "AAAA"])).problemType == "badNonce")
        #expect(await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["nonce": NSNull()])).problemType == "badNonce")

        // One bit flipped inside the signature.
        var forged = try client.jws(url: newOrder, payload: order)
        var signature = Base64URL.decode(forged["signature"] as! String)!
        signature[5] ^= 0x01
        forged["signature"] = Base64URL.encode(signature)
        let badSignature = await client.post(newOrder, body: forged)
        #expect(badSignature.status == 400 && badSignature.problemType == "malformed")

        // Algorithms: none, a MAC, and one that does not fit the key.
        for alg in ["none", "HS256"] {
            let response = await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["alg": alg]))
            #expect(response.problemType == "badSignatureAlgorithm")
            #expect((ACMETestClient.json(response)["algorithms"] as? [String])?.contains("ES256") == true)
        }
        #expect(await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["alg": "RS256"])).problemType == "badSignatureAlgorithm")

        // RFC 8555 §6.4: the url must be the one the request went to.
        let wrongURL = await client.post(newOrder, body: try client.jws(url: client.url("new-account"), payload: order))
        #expect(wrongURL.status == 403 && wrongURL.problemType == "unauthorized")

        // jwk and kid together; jwk where kid is required; an unknown account.
        let both = await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["jwk": try ACMETestClient.jwk(client.key)]))
        #expect(both.problemType == "malformed")
        #expect(await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, useJWK: true)).problemType == "malformed")
        let ghost = await client.post(newOrder, body: try client.jws(url: newOrder, payload: order, header: ["kid": client.url("acct/nobody")]))
        #expect(ghost.problemType == "accountDoesNotExist")

        // RFC 8555 §6.2: application/jose+json only.
        let json = await client.post(newOrder, body: try client.jws(url: newOrder, payload: order), contentType: "application/json")
        #expect(json.status == 415 && json.problemType == "malformed")
        // The general serialization and unprotected headers are refused.
        #expect(await client.post(newOrder, body: ["signatures": [], "payload": ""]).problemType == "malformed")

        // GET on a POST-as-GET resource.
        let get = await f.server.handle(ACMERequest(method: "GET", path: "/acme/acme/order/x", contentType: nil, body: []))
        #expect(get.status == 405)
        // Every response carries a fresh nonce.
        #expect(get.header("Replay-Nonce") != nil)
    }

    @Test("External Account Binding: required, verified, single use")
    func externalAccountBinding() async throws {
        let f = try await ACMEFixture.make(eabRequired: true)
        defer { Task { await f.close() } }
        let keys = ExternalAccountKeys(store: f.ca.store, clock: f.ca.clock)
        let eab = try await keys.create(name: "team-a", allowedNames: ["*.team-a.example.com"], actor: "test")

        let noBinding = try f.client()
        #expect(try await noBinding.register().problemType == "externalAccountRequired")

        let wrongMAC = try f.client()
        #expect(try await wrongMAC.register(eab: (eab.id, Base64URL.encode([UInt8](repeating: 7, count: 32)))).problemType == "unauthorized")

        let good = try f.client()
        #expect(try await good.register(eab: (eab.id, eab.hmacKey)).status == 201)
        #expect(try await keys.list().first?.accountID != nil)

        let reuse = try f.client()
        #expect(try await reuse.register(eab: (eab.id, eab.hmacKey)).problemType == "unauthorized")

        // The binding's name limits apply to the account's orders.
        let inside = try await good.send(good.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "www.team-a.example.com"]]])
        #expect(inside.status == 201)
        let outside = try await good.send(good.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "www.team-b.example.com"]]])
        #expect(outside.problemType == "rejectedIdentifier")
    }

    @Test("key change moves the account to the new key; deactivation locks it")
    func keyChangeAndDeactivation() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        try await client.register()
        let oldKey = client.key
        let newKey = try PrivateKey.generate(.ecP256)
        let keyChange = client.url("key-change")
        let inner = try ACMETestClient(server: f.server, keyType: .ecP256)
        inner.key = newKey
        inner.nonce = nil
        let innerJWS = try inner.jws(url: keyChange, payload: ["account": client.accountURL!, "oldKey": try ACMETestClient.jwk(oldKey)], useJWK: true)
        let changed = try await client.send(keyChange, payload: innerJWS)
        #expect(changed.status == 200, "\(String(decoding: changed.body, as: UTF8.self))")
        // The old key no longer signs for the account; the new one does.
        #expect(try await client.send(client.accountURL!, payload: nil).problemType == "malformed")
        client.key = newKey
        #expect(try await client.send(client.accountURL!, payload: nil).status == 200)

        let deactivated = try await client.send(client.accountURL!, payload: ["status": "deactivated"])
        #expect(ACMETestClient.json(deactivated)["status"] as? String == "deactivated")
        #expect(try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "a.example.com"]]]).problemType == "unauthorized")
    }

    @Test("nonces in the store are redeemed once across nodes")
    func sharedNonces() async throws {
        let ca = try await TestAuthority.make()
        defer { Task { await ca.close() } }
        let nodeA = try await NonceLedger.make(store: ca.store, mode: .store, clock: ca.clock)
        let nodeB = try await NonceLedger.make(store: ca.store, mode: .store, clock: ca.clock)
        let nonce = nodeA.issue()
        let expiry = try nodeB.check(nonce)
        try await nodeB.redeem(nonce, expires: expiry)
        await #expect(throws: ACMEProblem.self) { try await nodeA.redeem(nonce, expires: expiry) }
        // Expired nonces are refused before any lookup.
        ca.clock.advance(by: 7200)
        #expect(throws: ACMEProblem.self) { try nodeA.check(nodeA.issue().isEmpty ? "" : nonce) }
    }
}

@Suite("ACME: orders, challenges, certificates")
struct ACMEOrderTests {
    @Test("order status follows its authorizations; finalize checks the CSR; reuse of valid authorizations")
    func fullFlow() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        try await client.register()
        // Finalize before the authorizations are done.
        let created = try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "www.example.com"], ["type": "dns", "value": "*.example.com"]]])
        #expect(ACMETestClient.json(created)["status"] as? String == "pending")
        let early = try await client.send(ACMETestClient.json(created)["finalize"] as! String, payload: ["csr": "AAAA"])
        #expect(early.status == 403 && early.problemType == "orderNotReady")
        // The wildcard's authorization offers dns-01 only and names the base domain.
        let authzURLs = ACMETestClient.json(created)["authorizations"] as! [String]
        let wildcard = try await authzURLs.asyncFirst { ACMETestClient.json(try await client.send($0, payload: nil))["wildcard"] as? Bool == true }
        let wildcardBody = ACMETestClient.json(try await client.send(try #require(wildcard), payload: nil))
        #expect((wildcardBody["challenges"] as? [[String: Any]])?.map { $0["type"] as! String } == ["dns-01"])
        #expect((wildcardBody["identifier"] as? [String: String])?["value"] == "example.com")

        let (orderURL, ready) = try await f.readyOrder(client, ["api.example.com", "10.1.2.3"])
        #expect(ready["status"] as? String == "ready")
        let finalizeURL = ready["finalize"] as! String

        // The CSR must name exactly the order's identifiers.
        let (extra, _) = try TestAuthority.csr(["api.example.com", "other.example.com"])
        let wrong = try await client.send(finalizeURL, payload: ["csr": Base64URL.encode(extra.derBytes)])
        #expect(wrong.problemType == "badCSR")
        // The certificate key must not be the account key.
        var same = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=api.example.com"))
        same.subjectAltNames = [.dns("api.example.com"), .ip([10, 1, 2, 3])]
        let sameKey = try same.signed(with: client.key)
        #expect(try await client.send(finalizeURL, payload: ["csr": Base64URL.encode(sameKey.derBytes)]).problemType == "badCSR")

        let key = try PrivateKey.generate(.ecP256)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=api.example.com"))
        request.subjectAltNames = [.dns("api.example.com"), .ip([10, 1, 2, 3])]
        let finalized = try await client.send(finalizeURL, payload: ["csr": Base64URL.encode(try request.signed(with: key).derBytes)])
        let body = ACMETestClient.json(finalized)
        #expect(finalized.status == 200 && body["status"] as? String == "valid", "\(String(decoding: finalized.body, as: UTF8.self))")
        let certificateURL = try #require(body["certificate"] as? String)
        // Finalizing again is refused.
        #expect(try await client.send(finalizeURL, payload: ["csr": Base64URL.encode(try request.signed(with: key).derBytes)]).problemType == "orderNotReady")

        let download = try await client.send(certificateURL, payload: nil)
        #expect(download.header("Content-Type") == "application/pem-certificate-chain")
        let chain = try X509Certificate.parseChain(pem: String(decoding: download.body, as: UTF8.self))
        #expect(chain.count == 2)
        #expect(Set(chain[0].names) == ["api.example.com", "10.1.2.3"])
        #expect(chain[0].notAfter.timeIntervalSince(chain[0].notBefore) > 80 * 86_400)
        let alternate = try #require(download.header("Link"))
        #expect(alternate.contains("rel=\"alternate\""))
        let full = try await client.send(certificateURL + "/1", payload: nil)
        #expect(try X509Certificate.parseChain(pem: String(decoding: full.body, as: UTF8.self)).count == 3)
        // Another account may not download it.
        let stranger = try f.client()
        try await stranger.register()
        #expect(try await stranger.send(certificateURL, payload: nil).problemType == "unauthorized")
        #expect(try await stranger.send(orderURL, payload: nil).problemType == "unauthorized")

        // A second order for the same names reuses the valid authorizations.
        let again = try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "api.example.com"]]])
        #expect(ACMETestClient.json(again)["status"] as? String == "ready")
    }

    @Test("a failed challenge makes the authorization and the order invalid, with the error")
    func failedChallenge() async throws {
        let f = try await ACMEFixture.make(failure: ACMEProblem(.incorrectResponse, "wrong key authorization"))
        defer { Task { await f.close() } }
        let client = try f.client()
        let (_, order) = try await f.readyOrder(client, ["bad.example.com"])
        #expect(order["status"] as? String == "invalid")
        let error = order["error"] as? [String: Any]
        let sub = (error?["subproblems"] as? [[String: Any]])?.first
        #expect(sub?["type"] as? String == "urn:ietf:params:acme:error:incorrectResponse")
        #expect((sub?["identifier"] as? [String: String])?["value"] == "bad.example.com")
    }

    @Test("identifiers, profiles and rate limits are checked at newOrder")
    func orderChecks() async throws {
        let f = try await ACMEFixture.make(limits: ACMERateLimits(ordersPerAccountPerHour: 3, ordersPerNamePerHour: 100), allowed: ["*.example.com"])
        defer { Task { await f.close() } }
        let client = try f.client()
        try await client.register()
        let url = client.url("new-order")
        #expect(try await client.send(url, payload: ["identifiers": [["type": "email", "value": "a@example.com"]]]).problemType == "unsupportedIdentifier")
        let bad = try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "bad_name.example.com"]]])
        #expect(bad.problemType == "rejectedIdentifier")
        #expect(((ACMETestClient.json(bad)["subproblems"] as? [[String: Any]])?.first?["identifier"] as? [String: String])?["value"] == "bad_name.example.com")
        #expect(try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "www.example.org"]]]).problemType == "rejectedIdentifier")
        #expect(try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "a.example.com"]], "profile": "gold"]).problemType == "invalidProfile")
        for i in 0..<3 {
            #expect(try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "n\(i).example.com"]]]).status == 201)
        }
        let limited = try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "n9.example.com"]]])
        #expect(limited.status == 429 && limited.problemType == "rateLimited" && limited.header("Retry-After") != nil)
        // An hour later the account may order again.
        f.ca.clock.advance(by: 3601)
        client.nonce = nil
        #expect(try await client.send(url, payload: ["identifiers": [["type": "dns", "value": "n9.example.com"]]]).status == 201)
    }

    @Test("orders and pending authorizations expire")
    func expiry() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        try await client.register()
        let created = try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "late.example.com"]]])
        f.ca.clock.advance(by: 8 * 86_400)
        client.nonce = nil
        let order = ACMETestClient.json(try await client.send(created.header("Location")!, payload: nil))
        #expect(order["status"] as? String == "invalid")
    }

    @Test("shortlived profile, revocation by account and by certificate key, ARI windows and replaces")
    func revocationAndRenewalInfo() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        func issue(_ name: String, profile: String? = nil, replaces: String? = nil) async throws -> X509Certificate {
            var (_, ready) = try await f.readyOrder(client, [name], profile: profile)
            if let replaces {
                // A renewal that names the certificate it replaces (RFC 9773 §5).
                let created = try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": name]], "replaces": replaces])
                #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
                ready = ACMETestClient.json(created)
            }
            let key = try PrivateKey.generate(.ecP256)
            var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=\(name)"))
            request.subjectAltNames = [.dns(name)]
            let done = ACMETestClient.json(try await client.send(ready["finalize"] as! String, payload: ["csr": Base64URL.encode(try request.signed(with: key).derBytes)]))
            let pem = try await client.send(done["certificate"] as! String, payload: nil)
            return try X509Certificate.parseChain(pem: String(decoding: pem.body, as: UTF8.self))[0]
        }
        let short = try await issue("short.example.com", profile: "shortlived")
        #expect(short.notAfter.timeIntervalSince(short.notBefore) <= 6 * 86_400 + 3600)

        let certificate = try await issue("ari.example.com")
        let ariID = Base64URL.encode(certificate.authorityKeyIdentifier!) + "." + Base64URL.encode(certificate.serialNumber)
        let info = await f.server.handle(ACMERequest(method: "GET", path: "/acme/acme/renewal-info/\(ariID)", contentType: nil, body: []))
        #expect(info.status == 200 && info.header("Retry-After") != nil)
        let window = (ACMETestClient.json(info)["suggestedWindow"] as? [String: String]) ?? [:]
        #expect(window["start"]! < window["end"]!)
        #expect(window["start"]! > RFC3339.string(certificate.notBefore))

        // Renewal with replaces, once.
        _ = try await issue("ari.example.com", replaces: ariID)
        let twice = try await client.send(client.url("new-order"), payload: ["identifiers": [["type": "dns", "value": "ari.example.com"]], "replaces": ariID])
        #expect(twice.status == 409 && twice.problemType == "alreadyReplaced")

        // Revocation: reasons are checked, the account that ordered it may revoke, then alreadyRevoked.
        let revoke = client.url("revoke-cert")
        #expect(try await client.send(revoke, payload: ["certificate": Base64URL.encode(certificate.derBytes), "reason": 2]).problemType == "badRevocationReason")
        let stranger = try f.client()
        try await stranger.register()
        #expect(try await stranger.send(revoke, payload: ["certificate": Base64URL.encode(certificate.derBytes)]).problemType == "unauthorized")
        #expect(try await client.send(revoke, payload: ["certificate": Base64URL.encode(certificate.derBytes), "reason": 4]).status == 200)
        #expect(try await client.send(revoke, payload: ["certificate": Base64URL.encode(certificate.derBytes)]).problemType == "alreadyRevoked")
        // The ARI window moves into the past.
        let after = ACMETestClient.json(await f.server.handle(ACMERequest(method: "GET", path: "/acme/acme/renewal-info/\(ariID)", contentType: nil, body: [])))
        #expect(((after["suggestedWindow"] as? [String: String])?["end"] ?? "9") < RFC3339.string(f.ca.clock.now()))
        let garbage = await f.server.handle(ACMERequest(method: "GET", path: "/acme/acme/renewal-info/not-an-id", contentType: nil, body: []))
        #expect(garbage.status == 400 && garbage.problemType == "malformed")
    }

    @Test("revocation signed by the certificate's own key")
    func revokeWithCertificateKey() async throws {
        let f = try await ACMEFixture.make()
        defer { Task { await f.close() } }
        let client = try f.client()
        let (_, ready) = try await f.readyOrder(client, ["own.example.com"])
        let key = try PrivateKey.generate(.ecP384)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=own.example.com"))
        request.subjectAltNames = [.dns("own.example.com")]
        let done = ACMETestClient.json(try await client.send(ready["finalize"] as! String, payload: ["csr": Base64URL.encode(try request.signed(with: key).derBytes)]))
        let pem = try await client.send(done["certificate"] as! String, payload: nil)
        let certificate = try X509Certificate.parseChain(pem: String(decoding: pem.body, as: UTF8.self))[0]
        let holder = try f.client()
        holder.key = key
        let revoked = try await holder.send(holder.url("revoke-cert"), payload: ["certificate": Base64URL.encode(certificate.derBytes), "reason": 1], useJWK: true)
        #expect(revoked.status == 200)
        let record = try await f.ca.authority.findCertificate(certificate.sha256Fingerprint)
        #expect(record.revocationReason == 1)
        let audit = try await f.ca.authority.verifyAudit()
        #expect(audit.ok)
    }

    @Test("DNS messages: a TXT query encodes and a reply with compression parses")
    func dnsMessages() throws {
        let query = try DNSClient.encodeQuery(id: 0x1234, name: "_acme-challenge.example.com", type: .txt)
        #expect(query.prefix(4) == [0x12, 0x34, 0x01, 0x00])
        // Reply: header, the question, and one TXT answer whose name is a pointer to offset 12.
        var reply: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        reply += query[12...]
        reply += [0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 60, 0, 6, 5] + Array("hello".utf8)
        let records = try DNSClient.parseReply(reply, id: 0x1234, name: "x")
        #expect(records.count == 1 && records[0].type == .txt && records[0].data == [5] + Array("hello".utf8))
        #expect(throws: DNSClient.LookupError.self) { try DNSClient.parseReply(Array(reply.prefix(20)), id: 0x1234, name: "x") }
    }
}

extension Array where Element: Sendable {
    func asyncFirst(_ predicate: (Element) async throws -> Bool) async rethrows -> Element? {
        for element in self where try await predicate(element) { return element }
        return nil
    }
}
