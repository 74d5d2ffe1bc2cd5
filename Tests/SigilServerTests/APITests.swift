import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import SigilTesting
import Testing
import X509
import Yams

/// A CA, a metrics registry and one token per role, over a real SQLite store.
struct APIFixture {
    let ca: TestAuthority
    let env: ServerEnvironment
    let tokens: [Role: String]

    static func make() async throws -> APIFixture {
        let ca = try await TestAuthority.make()
        let env = ServerEnvironment(authority: ca.authority, metrics: SigilMetrics())
        var tokens: [Role: String] = [:]
        for role in Role.allCases {
            let allowed = role == .requester ? [".example.com"] : []
            tokens[role] = try await env.tokens.create(name: "t-\(role.rawValue)", role: role, expiresIn: nil, allowedNames: allowed, actor: "test").1
        }
        return APIFixture(ca: ca, env: env, tokens: tokens)
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: SigilApplication.apiRouter(env))
        try await app.test(.router) { client in try await body(client) }
    }

    func headers(_ role: Role?) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let role { fields[.authorization] = "Bearer \(tokens[role]!)" }
        return fields
    }
}

func jsonBody(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

func decode(_ buffer: ByteBuffer) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
}

@Suite("REST API")
struct APITests {
    @Test func openAPIDescribesExactlyTheRoutes() throws {
        let document = try #require(try Yams.load(yaml: OpenAPIDocument.text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var described = Set<String>()
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                described.insert("\(method.uppercased()) \(path)")
            }
        }
        var served = Set(APIRoutes.all.map { "\($0.method.rawValue) \($0.path)" })
        served.formUnion(["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml"])
        #expect(described == served, "only described: \(described.subtracting(served)); only served: \(served.subtracting(described))")
    }

    @Test("every route × every role: 401 without a token, 403 for the wrong role, never a 500")
    func accessMatrix() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        try await fixture.test { client in
            for route in APIRoutes.all {
                let uri = route.path.replacingOccurrences(of: "{serial}", with: "00").replacingOccurrences(of: "{id}", with: "x")
                    .replacingOccurrences(of: "{name}", with: "root")
                let method = HTTPRequest.Method(rawValue: route.method.rawValue)!
                try await client.execute(uri: uri, method: method, headers: fixture.headers(nil), body: jsonBody([:])) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri) without a token")
                    #expect(response.headers[.contentType] == "application/problem+json")
                }
                try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer sigil_000000000000_forged"], body: jsonBody([:])) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri) with a forged token")
                }
                for role in Role.allCases {
                    try await client.execute(uri: uri, method: method, headers: fixture.headers(role), body: jsonBody([:])) { response in
                        if let permission = route.permission, !role.allows(permission) {
                            #expect(response.status == .forbidden, "\(role) \(method) \(uri)")
                        } else {
                            #expect(response.status != .forbidden && response.status != .unauthorized, "\(role) \(method) \(uri): \(response.status)")
                        }
                        #expect(response.status.code < 500, "\(role) \(method) \(uri): \(response.status)")
                    }
                }
            }
        }
    }

    @Test func issueListRevokeRenewThroughTheAPI() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        let (csr, _) = try TestAuthority.csr(["api.example.com"])
        try await fixture.test { client in
            var serial = ""
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: fixture.headers(.requester),
                                     body: jsonBody(["csr": csr.pemString, "profile": "tls-server", "owner": "team-a", "tags": ["web"]])) { response in
                #expect(response.status == .created)
                let body = decode(response.body)
                serial = body["serial"] as? String ?? ""
                #expect((body["chain"] as? [String])?.count == 2)
                #expect((body["certificate"] as? String)?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
            }
            try await client.execute(uri: "/api/v1/certificates?owner=team-a&limit=10", method: .get, headers: fixture.headers(.auditor)) { response in
                let items = decode(response.body)["items"] as? [[String: Any]] ?? []
                #expect(items.map { $0["serial"] as? String } == [serial])
            }
            try await client.execute(uri: "/api/v1/certificates/\(serial)/pem", method: .get, headers: fixture.headers(.requester)) { response in
                #expect(String(buffer: response.body).components(separatedBy: "BEGIN CERTIFICATE").count == 4)
            }
            let (renewal, _) = try TestAuthority.csr(["api.example.com"])
            try await client.execute(uri: "/api/v1/certificates/\(serial)/renew", method: .post, headers: fixture.headers(.requester),
                                     body: jsonBody(["csr": renewal.pemString])) { response in
                #expect(response.status == .created)
                #expect(decode(response.body)["renewed_from"] as? String == serial)
            }
            let (other, _) = try TestAuthority.csr(["other.example.com"])
            try await client.execute(uri: "/api/v1/certificates/\(serial)/renew", method: .post, headers: fixture.headers(.requester),
                                     body: jsonBody(["csr": other.pemString])) { response in
                #expect(response.status == .unprocessableContent)
            }
            try await client.execute(uri: "/api/v1/certificates/\(serial)/revoke", method: .post, headers: fixture.headers(.operator),
                                     body: jsonBody(["reason": "keyCompromise"])) { response in
                #expect(response.status == .ok)
                #expect(decode(response.body)["status"] as? String == "revoked")
                #expect(decode(response.body)["revocation_reason"] as? Int == 1)
            }
            try await client.execute(uri: "/api/v1/certificates/\(serial)/revoke", method: .post, headers: fixture.headers(.operator),
                                     body: jsonBody(["reason": "keyCompromise"])) { response in
                #expect(response.status == .conflict)
            }
        }
    }

    @Test func requesterNamesAreLimitedAndRejectionsListEveryRule() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        let key = try PrivateKey.generate(.ed25519)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=www.other.org"))
        request.subjectAltNames = [.dns("www.other.org")]
        let csr = try request.signed(with: key)
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: fixture.headers(.requester),
                                     body: jsonBody(["csr": csr.pemString, "profile": "tls-server", "days": 400])) { response in
                #expect(response.status == .unprocessableContent)
                #expect(response.headers[.contentType] == "application/problem+json")
                let body = decode(response.body)
                #expect(body["type"] as? String == "urn:sigil:problem:policy-violation")
                let errors = body["errors"] as? [String] ?? []
                #expect(errors.count == 3, "\(errors)")
                #expect(errors.contains { $0.contains("this requester may request") })
            }
        }
        #expect(try await fixture.ca.store.read { try await $0.countCertificates() } == 2)
    }

    @Test("bad input gets a 4xx problem and records nothing", arguments: [
        ("{\"csr\": ", "malformed-request"),
        ("[1, 2]", "malformed-request"),
        ("{\"csr\": \"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\", \"profile\": \"tls-server\"}", "malformed-request"),
        ("{\"csr\": \"x\", \"profile\": \"tls-server\", \"color\": \"blue\"}", "malformed-request"),
        ("{\"csr\": 5, \"profile\": \"tls-server\"}", "malformed-request"),
        ("{\"profile\": \"tls-server\"}", "malformed-request"),
        ("{\"csr\": \"x\", \"profile\": \"tls-server\", \"days\": true}", "malformed-request"),
    ])
    func badInput(body: String, code: String) async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: fixture.headers(.admin), body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest)
                #expect(decode(response.body)["type"] as? String == "urn:sigil:problem:\(code)")
            }
        }
        #expect(try await fixture.ca.store.read { try await $0.countCertificates() } == 2)
    }

    @Test func oversizedBodiesAndWrongMediaTypes() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        try await fixture.test { client in
            let huge = ByteBuffer(string: "{\"csr\": \"" + String(repeating: "A", count: 300_000) + "\", \"profile\": \"tls-server\"}")
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: fixture.headers(.admin), body: huge) { response in
                #expect(response.status == .contentTooLarge)
            }
            var headers = fixture.headers(.admin)
            headers[.contentType] = "text/plain"
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: headers, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .unsupportedMediaType)
            }
            try await client.execute(uri: "/api/v1/nowhere", method: .get, headers: fixture.headers(.admin)) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func approvalsAndTokensThroughTheAPI() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        let (csr, _) = try TestAuthority.csr(["dev@example.com"], subject: "/O=Example/CN=Signing")
        try await fixture.test { client in
            var requestID = ""
            try await client.execute(uri: "/api/v1/certificates", method: .post, headers: fixture.headers(.admin),
                                     body: jsonBody(["csr": csr.pemString, "profile": "code-signing"])) { response in
                #expect(response.status == .accepted)
                requestID = decode(response.body)["request_id"] as? String ?? ""
            }
            try await client.execute(uri: "/api/v1/requests", method: .get, headers: fixture.headers(.auditor)) { response in
                #expect((decode(response.body)["items"] as? [[String: Any]])?.count == 1)
            }
            try await client.execute(uri: "/api/v1/requests/\(requestID)/approve", method: .post, headers: fixture.headers(.operator),
                                     body: jsonBody(["note": "ok"])) { response in
                #expect(response.status == .created)
            }
            var tokenID = ""
            var secret = ""
            try await client.execute(uri: "/api/v1/tokens", method: .post, headers: fixture.headers(.admin),
                                     body: jsonBody(["name": "ci", "role": "requester", "expires_in": "30d", "allowed_names": ["*.ci.example.com"]])) { response in
                #expect(response.status == .created)
                let body = decode(response.body)
                tokenID = body["id"] as? String ?? ""
                secret = body["token"] as? String ?? ""
                #expect(secret.hasPrefix("sigil_"))
            }
            try await client.execute(uri: "/api/v1/tokens", method: .get, headers: fixture.headers(.admin)) { response in
                #expect(!String(buffer: response.body).contains(secret))
            }
            try await client.execute(uri: "/api/v1/profiles", method: .get, headers: [.authorization: "Bearer \(secret)"]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/tokens/\(tokenID)", method: .delete, headers: fixture.headers(.admin)) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/profiles", method: .get, headers: [.authorization: "Bearer \(secret)"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/api/v1/audit/verify", method: .get, headers: fixture.headers(.auditor)) { response in
                #expect(decode(response.body)["ok"] as? Bool == true)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("sigil_issuances_total"))
                #expect(text.contains("sigil_http_requests_total"))
                #expect(text.contains("sigil_certificates_expiring"))
            }
        }
    }

    @Test func paginationWithCursors() async throws {
        let fixture = try await APIFixture.make()
        defer { Task { await fixture.ca.close() } }
        for i in 0..<5 {
            let (csr, _) = try TestAuthority.csr(["p\(i).example.com"])
            _ = try await fixture.ca.authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "t"))
        }
        try await fixture.test { client in
            var seen: [String] = []
            var cursor: String?
            repeat {
                let uri = "/api/v1/certificates?profile=tls-server&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                try await client.execute(uri: uri, method: .get, headers: fixture.headers(.auditor)) { response in
                    let body = decode(response.body)
                    seen += (body["items"] as? [[String: Any]] ?? []).compactMap { $0["serial"] as? String }
                    cursor = body["next_cursor"] as? String
                }
            } while cursor != nil && seen.count < 10
            #expect(seen.count == 5 && Set(seen).count == 5)
            try await client.execute(uri: "/api/v1/certificates?cursor=garbage", method: .get, headers: fixture.headers(.auditor)) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
