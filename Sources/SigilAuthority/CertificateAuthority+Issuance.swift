import Foundation
import SigilCore
import SigilStore
import X509

/// The result of a request: a certificate, or a request waiting for a person.
public enum IssuanceOutcome: Sendable {
    case issued(IssuedCertificate)
    case pending(RequestRecord)
}

public struct IssuedCertificate: Sendable {
    public var record: CertificateRecord
    public var certificate: X509Certificate
    /// The issuer's certificate and its parents, up to (and including) the root.
    public var chain: [X509Certificate]
    /// What policy changed, said out loud.
    public var modifications: [String]
}

extension CertificateAuthority {
    /// Verifies the request (proof of possession, profile, policy), then either
    /// issues and records the certificate or records a pending request. A rejection
    /// is recorded in the audit trail and thrown with every reason.
    public func submit(_ request: IssuanceRequest) async throws -> IssuanceOutcome {
        let profile = try configuration.profile(request.profile)
        let issuerRecord = try await resolveIssuer(request.issuer)
        guard issuerRecord.status == .active else { throw SigilError.badInput("CA '\(issuerRecord.name)' cannot issue (status \(issuerRecord.status.rawValue))") }
        let now = clock.now()
        let verdict = try policy.evaluate(request.csr, context: try policyContext(
            profile: profile, days: request.days, now: now, allowedNames: request.allowedNames, issuer: issuerRecord))
        let subject = request.csr.subject.openSSLString
        let names = verdict.plan.subjectAltNames.map(\.description)
        if verdict.isRejected {
            let reasons = verdict.violations
            try await store.write { session in
                try await session.appendAudit(AuditDraft(time: now, actor: request.requester, action: "request.rejected", object: "csr:\(subject)",
                                                         details: ["profile": profile.name, "names": names.joined(separator: ","), "reasons": reasons.joined(separator: "; ")]))
            }
            throw SigilError(.policyViolation, "the request breaks \(reasons.count) rule\(reasons.count == 1 ? "" : "s") of profile '\(profile.name)':", reasons: reasons)
        }
        if verdict.needsApproval && request.refuseApproval {
            throw SigilError(.policyViolation, "profile '\(profile.name)' requires a person's approval, which this front end cannot wait for")
        }
        if verdict.needsApproval {
            let record = RequestRecord(
                id: UUID().uuidString.lowercased(), csrPEM: request.csr.pemString, profile: profile.name, issuer: issuerRecord.name,
                days: request.days, requester: request.requester, subject: subject, names: names, status: .pending,
                reasons: ["profile '\(profile.name)' requires approval"] + verdict.modifications, createdAt: now)
            let owner = request.owner ?? ""
            let tags = request.tags.joined(separator: ",")
            try await store.write { session in
                try await session.insertRequest(record)
                try await session.appendAudit(AuditDraft(time: now, actor: request.requester, action: "request.received", object: "request:\(record.id)",
                                                         details: ["profile": profile.name, "subject": subject, "names": names.joined(separator: ","),
                                                                   "owner": owner, "tags": tags]))
            }
            return .pending(record)
        }
        let issued = try await issue(plan: verdict.plan, profile: profile, issuerRecord: issuerRecord, requester: request.requester,
                                     owner: request.owner, tags: request.tags, requestID: request.requestID, approval: nil,
                                     inTransaction: request.inTransaction)
        return .issued(IssuedCertificate(record: issued.record, certificate: issued.certificate, chain: issued.chain, modifications: verdict.modifications))
    }

    /// Approves a pending request: policy runs again (rules may have changed since),
    /// then the certificate is issued and the request closed in one transaction.
    public func approve(requestID: String, actor: String, note: String? = nil) async throws -> IssuedCertificate {
        guard let request = try await store.read({ try await $0.request(id: requestID) }) else {
            throw SigilError.badInput("no request with id '\(requestID)'")
        }
        guard request.status == .pending else { throw SigilError(.conflict, "request \(requestID) is already \(request.status.rawValue)") }
        let profile = try configuration.profile(request.profile)
        let issuerRecord = try await resolveIssuer(request.issuer)
        let csr = try CertificationRequest(pemOrDER: Array(request.csrPEM.utf8), source: "request \(requestID)")
        let now = clock.now()
        let verdict = try policy.evaluate(csr, context: try policyContext(profile: profile, days: request.days, now: now, allowedNames: nil, issuer: issuerRecord))
        if verdict.isRejected {
            throw SigilError(.policyViolation, "request \(requestID) no longer meets profile '\(profile.name)':", reasons: verdict.violations)
        }
        let issued = try await issue(plan: verdict.plan, profile: profile, issuerRecord: issuerRecord, requester: request.requester, owner: nil,
                                     tags: [], requestID: requestID, approval: (actor, note))
        return IssuedCertificate(record: issued.record, certificate: issued.certificate, chain: issued.chain, modifications: verdict.modifications)
    }

    func policyContext(profile: CertificateProfile, days: Int?, now: Date, allowedNames: [NamePattern]?, issuer: IssuerRecord) throws -> PolicyContext {
        let certificate = try issuerCertificate(issuer)
        var pathLength: Int?
        if case .isCertificateAuthority(let limit) = (try? certificate.extensions.basicConstraints) ?? nil { pathLength = limit }
        let eku = ((try? certificate.extensions.extendedKeyUsage) ?? nil).map { Array($0) }
        return PolicyContext(profile: profile, requestedDays: days, now: now, requesterAllowedNames: allowedNames, issuerNotAfter: issuer.notAfter,
                             issuerExtendedKeyUsage: eku, issuerPathLength: pathLength, issuerName: issuer.name)
    }

    func resolveIssuer(_ name: String?) async throws -> IssuerRecord {
        if let name { return try await issuer(name) }
        return try await defaultIssuer()
    }

    /// Rejects a pending request with a reason a person gave.
    public func reject(requestID: String, reason: String, actor: String) async throws -> RequestRecord {
        let now = clock.now()
        return try await store.write { session in
            guard var request = try await session.request(id: requestID) else { throw SigilError.badInput("no request with id '\(requestID)'") }
            guard request.status == .pending else { throw SigilError(.conflict, "request \(requestID) is already \(request.status.rawValue)") }
            request.status = .rejected
            request.reasons = [reason]
            request.decidedAt = now
            request.decidedBy = actor
            try await session.updateRequest(request)
            try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "request.rejected", object: "request:\(requestID)",
                                                     details: ["reason": reason, "subject": request.subject]))
            return request
        }
    }

    /// Signs the plan and records the certificate (and, for an approval, closes
    /// the request) in one transaction. A serial collision is retried with a new serial.
    func issue(plan: IssuancePlan, profile: CertificateProfile, issuerRecord: IssuerRecord, requester: String, owner: String?,
               tags: [String], requestID: String?, approval: (actor: String, note: String?)?,
               inTransaction: (@Sendable (any StoreSession, CertificateRecord) async throws -> Void)? = nil) async throws -> (record: CertificateRecord, certificate: X509Certificate, chain: [X509Certificate]) {
        let issuerSigner = try signer(issuerRecord.name)
        let issuerCertificate = try self.issuerCertificate(issuerRecord)
        // The CRL shard is chosen once, at issuance, and written into the certificate.
        let shard: Int? = configuration.crlShards > 1 && !plan.isCA && plan.revocationURLs ? Int.random(in: 0..<configuration.crlShards) : nil
        let extensions = try self.extensions(for: plan, issuerName: issuerRecord.name, issuerKey: issuerSigner.publicKey,
                                             issuerKeyIdentifier: issuerCertificate.subjectKeyIdentifier, crlShard: shard)
        let chain = try await self.chain(issuer: issuerRecord.name)
        for attempt in 1...3 {
            let builder = CertificateBuilder(
                serialNumber: SerialNumber.random(), issuer: issuerCertificate.subject, subject: plan.subject,
                notBefore: plan.notBefore, notAfter: plan.notAfter, publicKey: plan.publicKey, extensions: extensions)
            let certificate = try builder.sign(with: issuerSigner)
            let now = clock.now()
            var record = try CertificateRecord(certificate, issuer: issuerRecord.name, source: .issued, profile: profile.name,
                                               owner: owner, tags: tags, requestID: requestID, now: now)
            record.crlShard = shard
            let recorded = record
            do {
                try await store.write { session in
                    if let requestID, let approval {
                        guard var request = try await session.request(id: requestID), request.status == .pending else {
                            throw SigilError(.conflict, "request \(requestID) was decided by someone else meanwhile")
                        }
                        request.status = .issued
                        request.decidedAt = now
                        request.decidedBy = approval.actor
                        request.certificateSerial = recorded.serial
                        try await session.updateRequest(request)
                        try await session.appendAudit(AuditDraft(time: now, actor: approval.actor, action: "request.approved", object: "request:\(requestID)",
                                                                 details: ["note": approval.note ?? "", "serial": recorded.serial]))
                    } else {
                        try await session.appendAudit(AuditDraft(time: now, actor: requester, action: "request.received", object: "csr:\(recorded.subject)",
                                                                 details: ["profile": profile.name, "names": recorded.sans.joined(separator: ",")]))
                    }
                    try await session.insertCertificate(recorded)
                    try await inTransaction?(session, recorded)
                    try await session.appendAudit(AuditDraft(
                        time: now, actor: approval?.actor ?? requester, action: "certificate.issued", object: "certificate:\(recorded.serial)",
                        details: ["issuer": issuerRecord.name, "profile": profile.name, "subject": recorded.subject, "sans": recorded.sans.joined(separator: ","),
                                  "fingerprint": recorded.fingerprint, "not_after": RFC3339.string(recorded.notAfter),
                                  "requester": requester]))
                }
                return (record, certificate, chain)
            } catch let error as StoreError where error.code == .duplicate && attempt < 3 {
                continue
            }
        }
        throw SigilError(.internalFailure, "could not assign a unique serial number")
    }

    /// The extensions a plan turns into (RFC 5280 §4.2; BR §7.1.2.7 for TLS servers).
    func extensions(for plan: IssuancePlan, issuerName: String, issuerKey: PublicKey, issuerKeyIdentifier: [UInt8]?, crlShard: Int? = nil) throws -> [Certificate.Extension] {
        var extensions: [Certificate.Extension] = []
        extensions.append(try Certificate.Extension(
            plan.isCA ? BasicConstraints.isCertificateAuthority(maxPathLength: plan.pathLength) : BasicConstraints.notCertificateAuthority,
            critical: true))
        extensions.append(try Certificate.Extension(plan.keyUsage, critical: true))
        if !plan.extendedKeyUsage.isEmpty {
            extensions.append(try Certificate.Extension(ExtendedKeyUsage(plan.extendedKeyUsage), critical: false))
        }
        extensions.append(try Certificate.Extension(SubjectKeyIdentifier(keyIdentifier: SerialNumber.keyIdentifier(for: plan.publicKey)[...]), critical: false))
        // RFC 5280 §4.2.1.1: the AKI repeats the issuer certificate's SKI, however that was computed.
        extensions.append(try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: (issuerKeyIdentifier ?? SerialNumber.keyIdentifier(for: issuerKey))[...]), critical: false))
        let names = plan.subjectAltNames.compactMap(\.generalName)
        if !names.isEmpty {
            // RFC 5280 §4.2.1.6: critical when the subject is empty.
            extensions.append(try Certificate.Extension(SubjectAlternativeNames(names), critical: plan.subject.isEmpty))
        }
        if !plan.policies.isEmpty { extensions.append(try ExtraExtensions.certificatePolicies(plan.policies)) }
        if plan.revocationURLs {
            extensions.append(try ExtraExtensions.crlDistributionPoints([configuration.crlURL(issuer: issuerName, shard: crlShard)]))
            extensions.append(try Certificate.Extension(AuthorityInformationAccess([
                .init(method: .ocspServer, location: .uniformResourceIdentifier(configuration.ocspURL)),
                .init(method: .issuingCA, location: .uniformResourceIdentifier(configuration.caIssuersURL(issuer: issuerName))),
            ]), critical: false))
        }
        if plan.ocspNoCheck { extensions.append(ExtraExtensions.ocspNoCheck()) }
        return extensions
    }
}
