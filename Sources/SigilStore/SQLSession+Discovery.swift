import Foundation
import SQLKit

/// Sightings: where discovery (`sigil scan`, `sigil import`) found each certificate.
extension SQLSession {
    public func recordSighting(_ s: CertificateSighting) async throws {
        // ON CONFLICT … DO UPDATE is the same in SQLite (3.24+) and PostgreSQL: one statement, no read-then-write race.
        try await db.raw("""
            INSERT INTO certificate_sightings (fingerprint, location, server_name, kind, host, port, address, path, tls_version, cipher,
                                               chain_position, first_seen, last_seen)
            VALUES (\(bind: s.fingerprint), \(bind: s.location), \(bind: s.serverName), \(bind: s.kind.rawValue), \(bind: s.host),
                    \(bind: s.port), \(bind: s.address), \(bind: s.path), \(bind: s.tlsVersion), \(bind: s.cipher), \(bind: s.chainPosition),
                    \(bind: seconds(s.firstSeen)), \(bind: seconds(s.lastSeen)))
            ON CONFLICT (fingerprint, location, server_name) DO UPDATE SET
                last_seen = CASE WHEN excluded.last_seen > certificate_sightings.last_seen THEN excluded.last_seen ELSE certificate_sightings.last_seen END,
                first_seen = CASE WHEN excluded.first_seen < certificate_sightings.first_seen THEN excluded.first_seen ELSE certificate_sightings.first_seen END,
                address = CASE WHEN excluded.last_seen >= certificate_sightings.last_seen
                               THEN COALESCE(excluded.address, certificate_sightings.address) ELSE certificate_sightings.address END,
                tls_version = CASE WHEN excluded.last_seen >= certificate_sightings.last_seen
                                   THEN COALESCE(excluded.tls_version, certificate_sightings.tls_version) ELSE certificate_sightings.tls_version END,
                cipher = CASE WHEN excluded.last_seen >= certificate_sightings.last_seen
                              THEN COALESCE(excluded.cipher, certificate_sightings.cipher) ELSE certificate_sightings.cipher END,
                chain_position = CASE WHEN excluded.last_seen >= certificate_sightings.last_seen
                                      THEN excluded.chain_position ELSE certificate_sightings.chain_position END
            """).run()
    }

    public func sightings(fingerprint: String) async throws -> [CertificateSighting] {
        try await db.raw("""
            SELECT * FROM certificate_sightings WHERE fingerprint = \(bind: fingerprint) ORDER BY last_seen DESC, location, server_name
            """).all().map(sighting)
    }

    public func sightings(seenSince since: Date, limit: Int) async throws -> [CertificateSighting] {
        try await db.raw("""
            SELECT * FROM certificate_sightings WHERE last_seen >= \(bind: seconds(since))
            ORDER BY last_seen DESC, fingerprint, location, server_name LIMIT \(bind: max(0, limit))
            """).all().map(sighting)
    }

    func sighting(_ row: any SQLRow) throws -> CertificateSighting {
        CertificateSighting(
            fingerprint: try row.decode(column: "fingerprint", as: String.self),
            location: try row.decode(column: "location", as: String.self),
            serverName: try row.decode(column: "server_name", as: String.self),
            kind: CertificateSighting.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .tls,
            host: try row.decode(column: "host", as: String?.self),
            port: try row.decode(column: "port", as: Int?.self),
            address: try row.decode(column: "address", as: String?.self),
            path: try row.decode(column: "path", as: String?.self),
            tlsVersion: try row.decode(column: "tls_version", as: String?.self),
            cipher: try row.decode(column: "cipher", as: String?.self),
            chainPosition: try row.decode(column: "chain_position", as: Int.self),
            firstSeen: date(try row.decode(column: "first_seen", as: Int64.self)),
            lastSeen: date(try row.decode(column: "last_seen", as: Int64.self)))
    }
}
