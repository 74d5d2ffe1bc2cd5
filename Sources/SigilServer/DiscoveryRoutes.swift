import Foundation
import Hummingbird
import SigilAuthority
import SigilCore
import SigilDiscovery
import SigilStore

/// Discovery over the REST API: run a scan or an import on the server and read
/// where a certificate was seen. Scans and imports answer 200 with the summary
/// once the run is done (synchronous), so they are bounded more tightly than the CLI.
enum DiscoveryRoutes {
    /// Endpoints one API scan may expand to: it runs inside one HTTP request.
    static let maximumEndpoints = 4096

    static let all: [APIRoute] = [
        APIRoute(method: .post, path: "/api/v1/discovery/scans", permission: .discoveryRun, handler: scan),
        APIRoute(method: .post, path: "/api/v1/discovery/imports", permission: .discoveryRun, handler: importFiles),
        APIRoute(method: .get, path: "/api/v1/certificates/{serial}/sightings", permission: .certificatesRead, handler: sightings),
    ]

    static func scan(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["targets", "ports", "timeout_ms", "sni", "concurrency"], required: ["targets"])
        guard let targets = try body.optionalStrings("targets"), !targets.isEmpty else { throw Problem(.malformedRequest, "targets must be a non-empty list of strings") }
        let ports = try body.ports("ports")
        let timeout = Duration.milliseconds(try body.optionalInt("timeout_ms") ?? 5000)
        let concurrency = try body.optionalInt("concurrency") ?? ScanLimits.defaultConcurrency
        let parsed = try Discovery.targets(targets, ports: ports, serverName: try body.optionalString("sni"), limit: maximumEndpoints)
        let summary = try await Discovery.scan(parsed, timeout: timeout, concurrency: concurrency, store: env.authority.store,
                                               actor: context.identity!.actor, clock: env.clock)
        return try encodable(.ok, summary)
    }

    static func importFiles(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let body = try await JSONBody.read(request, context: context, allowed: ["paths"], required: ["paths"])
        guard let paths = try body.optionalStrings("paths"), !paths.isEmpty else { throw Problem(.malformedRequest, "paths must be a non-empty list of strings") }
        // Paths name files on the server; relative ones would depend on its working directory.
        guard paths.allSatisfy({ $0.hasPrefix("/") }) else { throw Problem(.malformedRequest, "paths must be absolute") }
        let summary = try await Discovery.importFiles(paths, store: env.authority.store, actor: context.identity!.actor, clock: env.clock)
        return try encodable(.ok, summary)
    }

    static func sightings(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let record = try await env.authority.findCertificate(try context.parameter("serial"))
        let found = try await env.authority.store.read { try await $0.sightings(fingerprint: record.fingerprint) }
        return try encodable(.ok, SightingList(fingerprint: record.fingerprint, serial: record.serial, items: found.map(SightingReport.init)))
    }
}

extension JSONBody {
    /// A list of port numbers; nil when absent.
    func ports(_ key: String) throws -> [Int]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any], !list.isEmpty else { throw Problem(.malformedRequest, "\(key) must be a non-empty list of port numbers") }
        return try list.map { item in
            guard let number = item as? NSNumber, String(cString: number.objCType) != "c", let port = Int(exactly: number.doubleValue), (1...65535).contains(port) else {
                throw Problem(.malformedRequest, "\(key) must hold port numbers between 1 and 65535")
            }
            return port
        }
    }
}

/// `GET /api/v1/certificates/{serial}/sightings`.
struct SightingList: Encodable {
    var fingerprint: String
    var serial: String
    var items: [SightingReport]
}

/// One place a certificate was seen, as the API and the dashboard show it.
public struct SightingReport: Encodable, Sendable {
    public var kind: String
    public var location: String
    public var serverName: String
    public var address: String?
    public var path: String?
    public var tlsVersion: String?
    public var cipher: String?
    public var chainPosition: Int
    public var firstSeen: String
    public var lastSeen: String

    enum CodingKeys: String, CodingKey {
        case kind, location, address, path, cipher
        case serverName = "server_name", tlsVersion = "tls_version", chainPosition = "chain_position", firstSeen = "first_seen", lastSeen = "last_seen"
    }

    public init(_ sighting: CertificateSighting) {
        kind = sighting.kind.rawValue
        location = sighting.location
        serverName = sighting.serverName
        address = sighting.address
        path = sighting.path
        tlsVersion = sighting.tlsVersion
        cipher = sighting.cipher
        chainPosition = sighting.chainPosition
        firstSeen = iso(sighting.firstSeen)
        lastSeen = iso(sighting.lastSeen)
    }
}

extension Dashboard {
    /// The certificate page's "where seen" rows, most recent first.
    func sightingRows(_ fingerprint: String) async throws -> [[String: Any]] {
        let found = try await env.authority.store.read { try await $0.sightings(fingerprint: fingerprint) }
        return found.map { s -> [String: Any] in
            ["location": s.location, "serverName": s.serverName.isEmpty ? "-" : s.serverName, "address": s.address ?? "-",
             "tlsVersion": s.tlsVersion ?? "-", "cipher": s.cipher ?? "-", "position": s.chainPosition == 0 ? "leaf" : "chain #\(s.chainPosition)",
             "firstSeen": RFC3339.string(s.firstSeen), "lastSeen": RFC3339.string(s.lastSeen)]
        }
    }
}
