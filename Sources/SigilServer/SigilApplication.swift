import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import SigilACME
import SigilAuthority
import SigilCore
import SigilStore
import X509
import Crypto

/// The route tables of `sigil serve`: the HTTPS surface (REST API and
/// operations) and the plain-HTTP surface for relying parties.
public enum SigilApplication {
    /// The HTTPS router: `/api/v1/...`, `/healthz`, `/readyz`, `/metrics`, `/openapi.yaml`.
    public static func apiRouter(_ env: ServerEnvironment, mtlsRole: Role? = .requester) -> Router<SigilRequestContext> {
        let router = Router(context: SigilRequestContext.self)
        router.add(middleware: MetricsRecorder(metrics: env.metrics))
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: LogRequestsMiddleware(.info, includeHeaders: .none))
        for route in APIRoutes.all {
            router.on(RouterPath(route.path), method: route.method) { request, context in
                var context = context
                if let permission = route.permission {
                    guard let identity = try await authenticate(request, context, env, mtlsRole: mtlsRole) else {
                        throw Problem(.unauthorized, "give a bearer token (Authorization: Bearer sigil_...) or a client certificate")
                    }
                    guard identity.role.allows(permission) else {
                        throw Problem(.forbidden, "the \(identity.role.rawValue) role may not do this")
                    }
                    context.identity = identity
                }
                return try await route.handler(request, context, env)
            }
        }
        addOperations(router, env)
        if let acme = env.acme { addACME(router, acme) }
        if let dashboard = try? Dashboard(env: env) { dashboard.register(on: router) }
        return router
    }

    /// `/acme/{provisioner}/...`: the HTTP surface only; the protocol lives in SigilACME.
    static func addACME(_ router: Router<SigilRequestContext>, _ acme: ACMEServer) {
        @Sendable func response(_ answer: ACMEResponse, _ request: Request) -> Response {
            var headers = HTTPFields()
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            return Response(status: HTTPResponse.Status(code: answer.status), headers: headers,
                            body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        let handler: @Sendable (Request, SigilRequestContext) async throws -> Response = { request, _ in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: 256 * 1024)
            } catch {
                return response(acme.reject(ACMEProblem(.malformed, "the request body is larger than 256 KiB", status: 413), path: request.uri.path), request)
            }
            return response(await acme.handle(ACMERequest(method: request.method.rawValue, path: request.uri.path,
                                                           contentType: request.headers[.contentType], body: Array(body.readableBytesView))), request)
        }
        for method in [HTTPRequest.Method.get, .head, .post] {
            router.on("/acme/**", method: method, use: handler)
        }
    }

    static func addOperations(_ router: Router<SigilRequestContext>, _ env: ServerEnvironment) {
        router.get("/healthz") { _, _ in try json(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in
            do {
                _ = try await env.authority.store.read { try await $0.countCertificates() }
            } catch {
                throw Problem(.unavailable, "the database is not reachable")
            }
            let issuer = try? await env.authority.defaultIssuer()
            guard let issuer, env.authority.isUnlocked(issuer.name) else { throw Problem(.unavailable, "the issuing CA is not unlocked") }
            return try json(.ok, ["status": "ready", "issuer": issuer.name])
        }
        router.get("/metrics") { _, _ in
            let now = env.clock.now()
            for days in [7, 30] {
                let count = try await env.authority.store.read { session in
                    try await session.certificates(CertificateQuery(now: now, expiringBefore: now.addingTimeInterval(Double(days) * 86_400), limit: 1_000_000)).count
                }
                env.metrics.setExpiring(within: days, count: count)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: env.metrics.render())))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }
    }

    /// The plain-HTTP router: CA certificates (and, with revocation, CRLs and OCSP).
    public static func publicRouter(_ env: ServerEnvironment) -> Router<SigilRequestContext> {
        let router = Router(context: SigilRequestContext.self)
        router.add(middleware: MetricsRecorder(metrics: env.metrics))
        router.add(middleware: ProblemMiddleware())
        router.get("/healthz") { _, _ in try json(.ok, ["status": "ok"]) }
        router.get("/crl/{file}") { request, context in
            let file = try context.parameter("file")
            guard file.hasSuffix(".crl") else { throw Problem(.notFound, "no such file") }
            return try await crlResponse(request, name: String(file.dropLast(4)), shard: nil, env)
        }
        // Sharded CRLs: /crl/{issuer}/{shard}.crl, the URL written into each certificate.
        // (The first segment has the same parameter name as above: the router's trie requires it.)
        router.get("/crl/{file}/{shard}") { request, context in
            let file = try context.parameter("shard")
            guard file.hasSuffix(".crl"), let shard = Int(file.dropLast(4)), shard >= 0, shard < env.authority.configuration.crlShards,
                  env.authority.configuration.crlShards > 1 else { throw Problem(.notFound, "no such CRL shard") }
            return try await crlResponse(request, name: try context.parameter("file"), shard: shard, env)
        }
        // RFC 6960 Appendix A.1: POST with the DER request as the body.
        router.post("/ocsp") { request, context in
            if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/ocsp-request") {
                return ocspResponse(OCSP.errorResponse(.malformedRequest), nil, nil, env)
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: 64 * 1024)
            } catch {
                return ocspResponse(OCSP.errorResponse(.malformedRequest), nil, nil, env)
            }
            let (der, thisUpdate, nextUpdate) = await env.ocsp.respond(to: Array(body.readableBytesView))
            return ocspResponse(der, thisUpdate, nextUpdate, env)
        }
        // RFC 6960 Appendix A.1 / RFC 5019 §5: GET with the URL-encoded base64 request in the path.
        router.get("/ocsp/**") { request, _ in
            guard let der = OCSPResponder.requestFromGETPath(request.uri.path) else {
                return ocspResponse(OCSP.errorResponse(.malformedRequest), nil, nil, env)
            }
            let (response, thisUpdate, nextUpdate) = await env.ocsp.respond(to: der)
            return ocspResponse(response, thisUpdate, nextUpdate, env)
        }
        router.get("/ca/{file}") { _, context in
            let file = try context.parameter("file")
            guard file.hasSuffix(".crt") else { throw Problem(.notFound, "no such file") }
            let name = String(file.dropLast(4))
            guard let record = try await env.authority.store.read({ try await $0.issuer(named: name) }), !record.certificatePEM.isEmpty else {
                throw Problem(.notFound, "no CA named \(name)")
            }
            let der = try X509Certificate(pemOrDER: Array(record.certificatePEM.utf8)).derBytes
            // RFC 5280 §4.2.2.1: caIssuers over HTTP is a DER certificate, application/pkix-cert.
            return Response(status: .ok, headers: [.contentType: "application/pkix-cert", .cacheControl: "max-age=3600"],
                            body: .init(byteBuffer: ByteBuffer(bytes: der)))
        }
        return router
    }

    /// Bearer token first; otherwise a TLS client certificate that Sigil issued under
    /// `tls-client`, still active in the inventory.
    static func authenticate(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment, mtlsRole: Role?) async throws -> Identity? {
        if let header = request.headers[.authorization] {
            guard header.count < 512, header.lowercased().hasPrefix("bearer ") else { return nil }
            let bearer = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            guard let token = try await env.tokens.authenticate(bearer), let role = Role(rawValue: token.role) else { return nil }
            return Identity(name: token.name, role: role, allowedNames: token.allowedNames.isEmpty ? nil : token.allowedNames, token: token)
        }
        guard let mtlsRole, let channel = context.channel,
              let peer = try? await channel.nioSSL_peerCertificate().get(),
              let der = try? peer.toDERBytes() else { return nil }
        let certificate = try X509Certificate(derEncoded: der)
        guard let record = try await env.authority.store.read({ try await $0.certificate(fingerprint: certificate.sha256Fingerprint) }),
              record.profile == "tls-client", record.status(at: env.clock.now()) == .active else { return nil }
        // A machine may ask for certificates for its own names only.
        let names = certificate.subjectAltNames.compactMap { name -> String? in
            switch name {
            case .dns(let host): return host
            case .ip(let bytes): return NameRules.formatIPAddress(bytes)
            case .email(let address): return address
            default: return nil
            }
        }
        return Identity(name: record.commonName ?? record.serial, role: mtlsRole, allowedNames: names, token: nil)
    }
}


/// The issuer's (or shard's) current CRL with validators for conditional requests.
func crlResponse(_ request: Request, name: String, shard: Int?, _ env: ServerEnvironment) async throws -> Response {
    guard let record = try await env.authority.store.read({ try await $0.issuer(named: name) }), record.status == .active else {
        throw Problem(.notFound, "no CA named \(name)")
    }
    env.metrics.recordRevocationRequest(kind: "crl")
    let crl = try await env.crls.crl(issuer: name, shard: shard)
    let maxAge = max(0, min(Int(crl.nextUpdate.timeIntervalSince(env.clock.now())), 3600))
    var headers: HTTPFields = [
        .contentType: "application/pkix-crl", .eTag: crl.etag, .lastModified: httpDate(crl.thisUpdate),
        .cacheControl: "public, max-age=\(maxAge), no-transform", .expires: httpDate(crl.nextUpdate),
    ]
    if request.headers[.ifNoneMatch] == crl.etag {
        headers[.contentType] = nil
        return Response(status: .notModified, headers: headers)
    }
    // RFC 5280 §4.2.1.13 / RFC 2585: DER over HTTP, application/pkix-crl.
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: crl.der)))
}

/// An OCSP answer over HTTP: always 200 with `application/ocsp-response` (the OCSP
/// status is in the body), cacheable until nextUpdate when the response is (RFC 5019 §6).
func ocspResponse(_ der: [UInt8], _ thisUpdate: Date?, _ nextUpdate: Date?, _ env: ServerEnvironment) -> Response {
    env.metrics.recordRevocationRequest(kind: "ocsp")
    var headers: HTTPFields = [.contentType: "application/ocsp-response"]
    if let thisUpdate, let nextUpdate {
        let maxAge = max(0, Int(nextUpdate.timeIntervalSince(env.clock.now())))
        headers[.cacheControl] = "public, max-age=\(maxAge), no-transform, must-revalidate"
        headers[.lastModified] = httpDate(thisUpdate)
        headers[.expires] = httpDate(nextUpdate)
        headers[.eTag] = "\"\(Hex.encode(SHA256.hash(data: der)).prefix(32))\""
    } else {
        headers[.cacheControl] = "no-store"
    }
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: der)))
}

/// RFC 9110 §5.6.7 IMF-fixdate.
func httpDate(_ date: Date) -> String {
    let (y, mo, d, h, mi, s) = civilParts(date)
    let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let days = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
    let weekday = weekdays[((days % 7) + 7) % 7]
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(weekday), \(two(d)) \(months[mo - 1]) \(y) \(two(h)):\(two(mi)):\(two(s)) GMT"
}

func civilParts(_ date: Date) -> (Int, Int, Int, Int, Int, Int) {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    return (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
}

/// Counts every response by route template, method and status.
struct MetricsRecorder<Context: RequestContext>: RouterMiddleware {
    let metrics: SigilMetrics
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.recordHTTP(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code)
            return response
        } catch {
            let problem = Problem.from(error)
            metrics.recordHTTP(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: problem.status.code)
            return try problem.response(from: request, context: context)
        }
    }
}

/// `openapi.yaml`, the description of exactly the routes above.
public enum OpenAPIDocument {
    public static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return "openapi: 3.1.0\n" }
        return text
    }()
}
