import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// An endpoint that answered, as the scan summary lists it.
public struct ScannedEndpoint: Sendable, Codable, Equatable {
    public var location: String
    public var serverName: String
    public var address: String?
    public var tlsVersion: String?
    public var cipher: String?
    /// SHA-256 fingerprints, leaf first.
    public var chain: [String]

    enum CodingKeys: String, CodingKey {
        case location, address, cipher, chain
        case serverName = "server_name", tlsVersion = "tls_version"
    }
}

/// An endpoint that gave no certificate.
public struct UnreachableEndpoint: Sendable, Codable, Equatable {
    public var location: String
    public var serverName: String
    public var reason: String
    public var detail: String

    enum CodingKeys: String, CodingKey {
        case location, reason, detail
        case serverName = "server_name"
    }
}

/// The inventory side of a discovery run: how many certificates, how many new.
public struct InventoryCounts: Sendable, Codable, Equatable {
    /// Distinct certificates (by fingerprint) found in this run.
    public var certificatesFound = 0
    /// Of those, added to the inventory by this run.
    public var newCertificates = 0
    /// Of those, already in the inventory (issued by Sigil or found before).
    public var knownCertificates = 0
    /// Of those, past their notAfter: for a scan, expired certificates still served.
    public var expired = 0

    enum CodingKeys: String, CodingKey {
        case certificatesFound = "certificates_found", newCertificates = "new_certificates"
        case knownCertificates = "known_certificates", expired
    }
}

/// `sigil scan`'s summary; its JSON shape is stable.
public struct ScanSummary: Sendable, Codable, Equatable {
    public var endpointsScanned = 0
    public var endpointsReached = 0
    public var endpointsUnreachable = 0
    public var inventory = InventoryCounts()
    public var endpoints: [ScannedEndpoint] = []
    public var unreachable: [UnreachableEndpoint] = []

    enum CodingKeys: String, CodingKey {
        case endpointsScanned = "endpoints_scanned", endpointsReached = "endpoints_reached", endpointsUnreachable = "endpoints_unreachable"
        case inventory, endpoints, unreachable
    }
}

/// One file that held certificates.
public struct ImportedFileSummary: Sendable, Codable, Equatable {
    public var path: String
    public var certificates: [String]
    public var notes: [String]
}

/// `sigil import`'s summary; its JSON shape is stable.
public struct ImportSummary: Sendable, Codable, Equatable {
    public var filesRead = 0
    public var filesWithCertificates = 0
    public var privateKeysSkipped = 0
    public var inventory = InventoryCounts()
    public var files: [ImportedFileSummary] = []
    /// Files read that held no certificate (junk): reported, not fatal.
    public var junk: [SkippedPath] = []
    /// Paths not read at all (unreadable, not regular files, too large).
    public var skipped: [SkippedPath] = []

    enum CodingKeys: String, CodingKey {
        case filesRead = "files_read", filesWithCertificates = "files_with_certificates", privateKeysSkipped = "private_keys_skipped"
        case inventory, files, junk, skipped
    }
}

/// Writes what discovery found into the store: each certificate once (by SHA-256
/// fingerprint), a sighting for each place it was seen, and one audit entry for
/// the run — all in one transaction, so an interrupted run leaves nothing half-written.
public struct DiscoveryInventory: Sendable {
    public let store: any Store
    public let actor: String

    public init(store: any Store, actor: String) {
        self.store = store
        self.actor = actor
    }

    /// Records a scan's results.
    public func record(scan results: [ProbeResult], now: Date) async throws -> ScanSummary {
        var summary = ScanSummary()
        summary.endpointsScanned = results.count
        var sightings: [(X509Certificate, CertificateSighting)] = []
        for result in results {
            switch result.outcome {
            case .failure(let failure):
                summary.unreachable.append(UnreachableEndpoint(location: result.endpoint.location, serverName: result.endpoint.serverName,
                                                               reason: failure.reason.rawValue, detail: failure.detail))
            case .success(let seen):
                let chain = seen.chain.compactMap { try? X509Certificate(derEncoded: $0) }
                summary.endpoints.append(ScannedEndpoint(location: seen.endpoint.location, serverName: seen.endpoint.serverName, address: seen.address,
                                                         tlsVersion: seen.tlsVersion, cipher: seen.cipher, chain: chain.map(\.sha256Fingerprint)))
                for (position, certificate) in chain.enumerated() {
                    sightings.append((certificate, CertificateSighting(
                        fingerprint: certificate.sha256Fingerprint, location: seen.endpoint.location, serverName: seen.endpoint.serverName, kind: .tls,
                        host: seen.endpoint.host, port: seen.endpoint.port, address: seen.address, tlsVersion: seen.tlsVersion, cipher: seen.cipher,
                        chainPosition: position, firstSeen: seen.time, lastSeen: seen.time)))
                }
            }
        }
        summary.endpointsReached = summary.endpoints.count
        summary.endpointsUnreachable = summary.unreachable.count
        let reached = summary.endpointsReached
        let unreachable = summary.endpointsUnreachable
        summary.inventory = try await write(sightings, source: .discovered, now: now) { counts in
            AuditDraft(time: now, actor: actor, action: "discovery.scan", object: "discovery:scan", details: [
                "endpoints": "\(results.count)", "reached": "\(reached)", "unreachable": "\(unreachable)",
                "certificates": "\(counts.certificatesFound)", "new": "\(counts.newCertificates)", "expired": "\(counts.expired)",
            ])
        }
        return summary
    }

    /// Records an import's files.
    public func record(import collection: FileCollection, now: Date) async throws -> ImportSummary {
        var summary = ImportSummary()
        summary.filesRead = collection.files.count
        summary.skipped = collection.skipped
        var sightings: [(X509Certificate, CertificateSighting)] = []
        for file in collection.files {
            summary.privateKeysSkipped += file.contents.privateKeys
            if file.contents.isJunk {
                summary.junk.append(SkippedPath(path: file.path, reason: file.contents.notes.first ?? "no certificate"))
                continue
            }
            summary.files.append(ImportedFileSummary(path: file.path, certificates: file.contents.certificates.map(\.sha256Fingerprint), notes: file.contents.notes))
            for (position, certificate) in file.contents.certificates.enumerated() {
                sightings.append((certificate, CertificateSighting(fingerprint: certificate.sha256Fingerprint, location: file.path, kind: .file, path: file.path,
                                                                   chainPosition: position, firstSeen: now, lastSeen: now)))
            }
        }
        summary.filesWithCertificates = summary.files.count
        let junk = summary.junk.count
        let skipped = summary.skipped.count
        summary.inventory = try await write(sightings, source: .imported, now: now) { counts in
            AuditDraft(time: now, actor: actor, action: "discovery.import", object: "discovery:import", details: [
                "files": "\(collection.files.count)", "junk": "\(junk)", "skipped": "\(skipped)",
                "certificates": "\(counts.certificatesFound)", "new": "\(counts.newCertificates)", "expired": "\(counts.expired)",
            ])
        }
        return summary
    }

    private func write(_ sightings: [(X509Certificate, CertificateSighting)], source: CertificateSource, now: Date,
                       audit: @escaping @Sendable (InventoryCounts) -> AuditDraft) async throws -> InventoryCounts {
        let found = sightings
        return try await store.write { session in
            var counts = InventoryCounts()
            var seen: Set<String> = []
            for (certificate, sighting) in found {
                if seen.insert(sighting.fingerprint).inserted {
                    counts.certificatesFound += 1
                    if certificate.notAfter < now { counts.expired += 1 }
                    if try await session.certificate(fingerprint: sighting.fingerprint) == nil {
                        // An outside certificate: its issuer is named by DN (RFC 4514 form), as `sigil ca import` does.
                        try await session.insertCertificate(try CertificateRecord(certificate, issuer: certificate.issuer.openSSLString, source: source,
                                                                                   profile: nil, now: now))
                        counts.newCertificates += 1
                    } else {
                        counts.knownCertificates += 1
                    }
                }
                try await session.recordSighting(sighting)
            }
            _ = try await session.appendAudit(audit(counts))
            return counts
        }
    }
}
