import Foundation
import SigilCore
import SigilStore

extension CertificateAuthority {
    /// Finds a certificate by SHA-256 fingerprint or serial (hex, colons allowed).
    public func findCertificate(_ id: String) async throws -> CertificateRecord {
        let cleaned = id.filter { $0 != ":" }.lowercased()
        guard !cleaned.isEmpty, cleaned.allSatisfy(\.isHexDigit) else {
            throw SigilError.badInput("'\(id)' is not a serial or fingerprint (hexadecimal)")
        }
        if cleaned.count == 64, let record = try await store.read({ try await $0.certificate(fingerprint: cleaned) }) { return record }
        // Serials are numbers: match with or without leading zero digits (stored as whole bytes).
        let trimmed = String(cleaned.drop { $0 == "0" })
        let candidates = Set([cleaned, trimmed, trimmed.count % 2 == 1 ? "0" + trimmed : trimmed].filter { !$0.isEmpty })
        let matches = try await store.read { session in
            var found: [CertificateRecord] = []
            for candidate in candidates { found += try await session.certificates(serial: candidate) }
            return found
        }
        if matches.count > 1 {
            throw SigilError.badInput("serial \(id) is used by \(matches.count) issuers; give the SHA-256 fingerprint instead")
        }
        guard let record = matches.first else { throw SigilError(.notFound, "no certificate with serial or fingerprint \(id)") }
        return record
    }

    /// Revokes a certificate (RFC 5280 §5.3.1 reasons). A certificate on hold
    /// (`certificateHold`) may be revoked again with a final reason, or released
    /// with `removeFromCRL`; anything else already revoked is an error.
    public func revoke(_ id: String, reason: RevocationReason, invalidityDate: Date? = nil, actor: String) async throws -> CertificateRecord {
        let record = try await recordRevocation(id, reason: reason, invalidityDate: invalidityDate, actor: actor)
        // Rebuild the CRL now when this process holds the issuer's key; otherwise the
        // stored CRL is already marked stale and the next reader rebuilds it.
        if isUnlocked(record.issuer) {
            _ = try? await generateCRL(issuer: record.issuer, actor: actor)
            if let shard = record.crlShard { _ = try? await generateCRL(issuer: record.issuer, shard: shard, actor: actor) }
        }
        return record
    }

    func recordRevocation(_ id: String, reason: RevocationReason, invalidityDate: Date?, actor: String) async throws -> CertificateRecord {
        let found = try await findCertificate(id)
        let now = clock.now()
        if let invalidityDate, invalidityDate > now {
            throw SigilError.badInput("the invalidity date is in the future")
        }
        return try await store.write { session in
            guard var record = try await session.certificate(fingerprint: found.fingerprint) else {
                throw SigilError(.notFound, "no certificate \(id)")
            }
            let onHold = record.storedStatus == .revoked && record.revocationReason == RevocationReason.certificateHold.rawValue
            if reason == .removeFromCRL {
                guard onHold else { throw SigilError(.conflict, "certificate \(record.serial) is not on hold; only certificateHold can be released") }
                record.storedStatus = .active
                record.revokedAt = nil
                record.revocationReason = nil
                record.invalidityDate = nil
                try await session.updateCertificateRevocation(fingerprint: record.fingerprint, status: .active, revokedAt: nil, reason: nil, invalidityDate: nil)
                try await session.invalidateCRL(issuer: record.issuer)
                try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "certificate.released", object: "certificate:\(record.serial)",
                                                         details: ["fingerprint": record.fingerprint]))
                return record
            }
            if record.storedStatus == .revoked && !onHold {
                throw SigilError(.conflict, "certificate \(record.serial) is already revoked (\(RevocationReason(rawValue: record.revocationReason ?? 0)?.name ?? "unspecified"))")
            }
            record.storedStatus = .revoked
            // A hold turned final keeps its original revocation time (RFC 5280 §5.3.1 note on certificateHold).
            record.revokedAt = onHold ? record.revokedAt : now
            record.revocationReason = reason.rawValue
            record.invalidityDate = invalidityDate
            try await session.updateCertificateRevocation(fingerprint: record.fingerprint, status: .revoked, revokedAt: record.revokedAt,
                                                          reason: reason.rawValue, invalidityDate: invalidityDate)
            try await session.invalidateCRL(issuer: record.issuer)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "certificate.revoked", object: "certificate:\(record.serial)",
                                                     details: ["fingerprint": record.fingerprint, "reason": reason.name, "issuer": record.issuer,
                                                               "invalidity_date": invalidityDate.map { RFC3339.string($0) } ?? ""]))
            return record
        }
    }
}

extension CertificateAuthority {
    /// The CA's signer, for OCSP responses signed directly by the issuing CA.
    public func signerForResponses(_ issuer: String) throws -> any Signer {
        try signer(issuer)
    }

    /// Sets who owns a certificate and its tags (what notifications and reports are routed by).
    public func setOwnership(fingerprint: String, owner: String?, tags: [String], actor: String) async throws {
        let now = clock.now()
        try await store.write { session in
            guard let record = try await session.certificate(fingerprint: fingerprint) else {
                throw SigilError(.notFound, "no certificate with fingerprint \(fingerprint)")
            }
            try await session.updateCertificateOwnership(fingerprint: fingerprint, owner: owner, tags: tags)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "certificate.updated", object: "certificate:\(record.serial)",
                                                     details: ["owner": owner ?? "", "tags": tags.joined(separator: ","),
                                                               "previous_owner": record.owner ?? "", "previous_tags": record.tags.joined(separator: ",")]))
        }
    }
}
