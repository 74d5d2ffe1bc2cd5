import Foundation
import SigilCore
import SigilStore
import X509

extension CertificateAuthority {
    /// How long a CRL is valid; rebuilt at half of it and on every revocation
    /// (BR §4.9.7 allows at most ten days for subscriber CRLs).
    public static let crlValidity: TimeInterval = 7 * 86_400

    /// Builds, signs and stores a new CRL for `issuerName` with the next CRL number.
    /// Entries are read in pages and encoded as they arrive (bounded memory).
    @discardableResult
    public func generateCRL(issuer issuerName: String, shard: Int? = nil, actor: String) async throws -> CRLRecord {
        let record = try await issuer(issuerName)
        guard record.status == .active else { throw SigilError.badInput("CA '\(issuerName)' cannot sign CRLs (status \(record.status.rawValue))") }
        let signer = try signer(issuerName)
        let certificate = try X509Certificate(pemOrDER: Array(record.certificatePEM.utf8))
        let now = clock.now()
        // The number is taken in its own transaction so that it never repeats, even
        // when two nodes or processes build CRLs at once (RFC 5280 §5.2.3: monotonic).
        let number = try await store.write { try await $0.nextCRLNumber(issuer: issuerName) }
        let thisUpdate = ASN1Time.truncate(now)
        var builder = CRLBuilder(
            issuer: certificate.subject, thisUpdate: thisUpdate, nextUpdate: thisUpdate.addingTimeInterval(Self.crlValidity), crlNumber: number,
            authorityKeyIdentifier: certificate.subjectKeyIdentifier ?? SerialNumber.keyIdentifier(for: signer.publicKey),
            // The root's own certificate carries no distribution point, so an IDP on the
            // root's CRL would put the root out of its scope ("different CRL scope" in
            // OpenSSL); intermediates' CRLs name the URL their certificates carry.
            distributionPoint: record.isRoot ? nil : configuration.crlURL(issuer: issuerName, shard: shard))
        var after: String?
        let pageSize = 20_000
        while true {
            let from = after
            let page = try await store.read { try await $0.revokedEntries(issuer: issuerName, shard: shard, afterFingerprint: from, limit: pageSize) }
            if after == nil { builder.reserve(entries: page.count) }
            for entry in page {
                try builder.append(CRLEntry(
                    serial: Hex.decode(entry.serial) ?? [], revocationDate: entry.revokedAt,
                    reason: entry.reason.flatMap(RevocationReason.init(rawValue:)), invalidityDate: entry.invalidityDate))
            }
            guard let last = page.last, page.count == pageSize else { break }
            after = last.fingerprint
        }
        let der = try builder.sign(algorithm: signer.signatureAlgorithm, using: signer.sign)
        let crl = CRLRecord(issuer: Self.crlKey(issuerName, shard), number: number, thisUpdate: builder.thisUpdate, nextUpdate: builder.nextUpdate, entries: builder.count, der: der)
        try await store.write { session in
            try await session.saveCRL(crl)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "crl.generated", object: "crl:\(issuerName)",
                                                     details: ["number": String(number), "entries": String(crl.entries), "shard": shard.map(String.init) ?? ""]))
        }
        return crl
    }

    /// A CRL is served until half its lifetime has passed; an invalidated one
    /// (nextUpdate == thisUpdate, after a revocation) is never fresh.
    public static func isFresh(thisUpdate: Date, nextUpdate: Date, now: Date) -> Bool {
        let lifetime = nextUpdate.timeIntervalSince(thisUpdate)
        return lifetime > 0 && now.timeIntervalSince(thisUpdate) < lifetime / 2
    }

    /// The issuer's current CRL: the stored one while it is fresh (less than half
    /// its lifetime old), otherwise a new one.
    public func currentCRL(issuer issuerName: String, shard: Int? = nil, actor: String) async throws -> CRLRecord {
        let key = Self.crlKey(issuerName, shard)
        if let stored = try await store.read({ try await $0.latestCRL(issuer: key) }) {
            if Self.isFresh(thisUpdate: stored.thisUpdate, nextUpdate: stored.nextUpdate, now: clock.now()) { return stored }
        }
        return try await generateCRL(issuer: issuerName, shard: shard, actor: actor)
    }

    /// Where a CRL is kept: the issuer's name, or `name/shard`.
    public static func crlKey(_ issuer: String, _ shard: Int?) -> String {
        shard.map { "\(issuer)/\($0)" } ?? issuer
    }
}
