import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// CRLs held in memory, keyed by issuer, so a request costs one small database
/// read (the stored CRL's number and validity) and no signature. A revocation
/// (on any node or from the command line) marks the stored CRL stale; the next
/// request here notices and rebuilds it.
actor CRLCache {
    struct Entry {
        var number: Int64
        var der: [UInt8]
        var etag: String
        var thisUpdate: Date
        var nextUpdate: Date
    }

    private var entries: [String: Entry] = [:]
    private let authority: CertificateAuthority

    init(authority: CertificateAuthority) {
        self.authority = authority
    }

    func crl(issuer: String, shard: Int? = nil) async throws -> Entry {
        let key = CertificateAuthority.crlKey(issuer, shard)
        let status = try await authority.store.read { try await $0.crlStatus(issuer: key) }
        let now = authority.clock.now()
        if let status, let cached = entries[key], cached.number == status.number,
           CertificateAuthority.isFresh(thisUpdate: status.thisUpdate, nextUpdate: status.nextUpdate, now: now) {
            return cached
        }
        let record = try await authority.currentCRL(issuer: issuer, shard: shard, actor: "sigil-server")
        let entry = Entry(number: record.number, der: record.der, etag: "\"\(Hex.encode(SHA256.hash(data: record.der)).prefix(32))\"",
                          thisUpdate: record.thisUpdate, nextUpdate: record.nextUpdate)
        entries[key] = entry
        return entry
    }

    /// Rebuilds every active issuer's CRL that is due; run on a schedule.
    func refreshDue() async {
        guard let issuers = try? await authority.issuers() else { return }
        for issuer in issuers where issuer.status == .active && authority.isUnlocked(issuer.name) {
            _ = try? await crl(issuer: issuer.name)
            if authority.configuration.crlShards > 1 && !issuer.isRoot {
                for shard in 0..<authority.configuration.crlShards { _ = try? await crl(issuer: issuer.name, shard: shard) }
            }
        }
    }
}
