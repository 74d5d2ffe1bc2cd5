import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// Certificate download, revocation (RFC 8555 §7.4.2, §7.6) and renewal information (RFC 9773).
extension ACMEServer {
    // MARK: Certificates (RFC 8555 §7.4.2, §7.6)

    func certificate(_ p: ACMEProvisioner, _ fingerprint: String, alternate: Int?, _ v: Verified) async throws -> ACMEResponse {
        guard v.jws.isPostAsGet else { throw ACMEProblem(.malformed, "download a certificate with POST-as-GET") }
        guard let record = try await store.read({ try await $0.certificate(fingerprint: fingerprint.lowercased()) }) else {
            throw ACMEProblem(.malformed, "no such certificate", status: 404)
        }
        guard try await orderAccount(of: record) == v.account?.id else { throw ACMEProblem(.unauthorized, "the certificate belongs to another account") }
        let chain = try await authority.chain(issuer: record.issuer)
        let withoutRoot = chain.filter { !$0.isSelfIssued }
        var pem = record.pem.hasSuffix("\n") ? record.pem : record.pem + "\n"
        var headers: [(String, String)] = [("Content-Type", "application/pem-certificate-chain")]
        switch alternate {
        case nil:
            for c in withoutRoot { pem += c.pemString }
            // RFC 8555 §7.4.2: other chains are offered as rel="alternate".
            if withoutRoot.count != chain.count { headers.append(("Link", "<\(certificateURL(p, record.fingerprint))/1>;rel=\"alternate\"")) }
        case 1 where withoutRoot.count != chain.count:
            for c in chain { pem += c.pemString }
            headers.append(("Link", "<\(certificateURL(p, record.fingerprint))>;rel=\"alternate\""))
        default:
            throw ACMEProblem(.malformed, "no such certificate chain", status: 404)
        }
        return ACMEResponse(status: 200, headers: headers, body: Array(pem.utf8))
    }

    /// The account whose order produced a certificate, if ACME issued it.
    func orderAccount(of record: CertificateRecord) async throws -> String? {
        guard let requestID = record.requestID, requestID.hasPrefix("acme-order:") else { return nil }
        let orderID = String(requestID.dropFirst("acme-order:".count))
        return try await store.read { try await $0.acmeOrder(id: orderID) }?.accountID
    }

    /// RFC 8555 §7.6: by the account that ordered it, an account authorized for all its names,
    /// or a request signed by the certificate's own key.
    func revokeCertificate(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        let payload = try v.jws.payloadObject()
        guard let text = payload["certificate"] as? String, let der = Base64URL.decode(text),
              let certificate = try? X509Certificate(derEncoded: der) else {
            throw ACMEProblem(.malformed, "\"certificate\" must be the base64url DER of a certificate")
        }
        // RFC 8555 §7.6: "reason" is an integer; anything else is malformed, never a silent 0.
        struct RevocationPayload: Decodable { var reason: Int? }
        let reasonCode: Int
        do {
            reasonCode = try JSONDecoder().decode(RevocationPayload.self, from: Data(v.jws.payload)).reason ?? 0
        } catch {
            throw ACMEProblem(.malformed, "\"reason\" must be an integer revocation reason code")
        }
        // RFC 8555 §7.6 with RFC 5280 §5.3.1: the reasons a subscriber may give.
        guard [0, 1, 3, 4, 5, 9].contains(reasonCode), let reason = RevocationReason(rawValue: reasonCode) else {
            throw ACMEProblem(.badRevocationReason, "reason \(reasonCode) is not allowed; use 0, 1, 3, 4, 5 or 9")
        }
        guard let record = try await store.read({ try await $0.certificate(fingerprint: certificate.sha256Fingerprint) }) else {
            throw ACMEProblem(.malformed, "this CA did not issue that certificate", status: 404)
        }
        let actor: String
        if let account = v.account {
            var allowed = try await orderAccount(of: record) == account.id
            if !allowed {
                allowed = !record.sans.isEmpty
                for name in record.sans {
                    let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { allowed = false; break }
                    let lookup = "\(parts[0].lowercased() == "ip" ? "ip" : "dns"):\(parts[1].lowercased())"
                    if try await store.read({ try await $0.validACMEAuthorization(account: account.id, lookup: lookup, now: self.clock.now()) }) == nil {
                        allowed = false
                        break
                    }
                }
            }
            guard allowed else { throw ACMEProblem(.unauthorized, "this account neither ordered the certificate nor holds authorizations for all its names") }
            actor = self.actor(p, account.id)
        } else {
            guard try v.key.publicKey().derBytes == certificate.subjectPublicKeyInfo else {
                throw ACMEProblem(.unauthorized, "the request is signed by neither an account nor the certificate's key")
            }
            actor = "acme:\(p.name)/certificate-key"
        }
        if record.storedStatus == .revoked && record.revocationReason != RevocationReason.certificateHold.rawValue {
            throw ACMEProblem(.alreadyRevoked, "the certificate is already revoked")
        }
        do {
            _ = try await authority.revoke(record.fingerprint, reason: reason, actor: actor)
        } catch let error as SigilError where error.kind == .conflict {
            throw ACMEProblem(.alreadyRevoked, error.message)
        }
        return ACMEResponse(status: 200)
    }

    // MARK: Renewal information (RFC 9773)

    /// RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number DER content).
    func certificate(ariID: String) async throws -> CertificateRecord {
        let parts = ariID.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let aki = Base64URL.decode(String(parts[0])), let serial = Base64URL.decode(String(parts[1])), !aki.isEmpty, !serial.isEmpty else {
            throw ACMEProblem(.malformed, "a certificate identifier is base64url(AKI).base64url(serial)")
        }
        let records = try await store.read { try await $0.certificates(serial: Hex.encode(serial)) }
        for record in records {
            if let certificate = try? X509Certificate(pemOrDER: Array(record.pem.utf8)), certificate.authorityKeyIdentifier == aki { return record }
        }
        throw ACMEProblem(.malformed, "no certificate with that identifier", status: 404)
    }

    func renewalInfo(_ p: ACMEProvisioner, _ id: String) async throws -> ACMEResponse {
        let record = try await certificate(ariID: id)
        let now = clock.now()
        let start: Date, end: Date
        if record.storedStatus == .revoked {
            // RFC 9773 §4.2: a window in the past tells the client to renew at once.
            start = now.addingTimeInterval(-7200)
            end = now.addingTimeInterval(-3600)
        } else {
            let lifetime = record.notAfter.timeIntervalSince(record.notBefore)
            start = record.notBefore.addingTimeInterval(lifetime * 2 / 3)
            end = record.notBefore.addingTimeInterval(lifetime * 5 / 6)
        }
        var response = json(200, ["suggestedWindow": ["start": RFC3339.string(start), "end": RFC3339.string(end)]])
        // RFC 9773 §4.3: poll again in about six hours (less for very short-lived certificates).
        let retry = max(60, min(21_600, Int(record.notAfter.timeIntervalSince(record.notBefore) / 12)))
        response.headers.append(("Retry-After", String(retry)))
        response.headers.removeAll { $0.0 == "Cache-Control" }
        response.headers.append(("Cache-Control", "public, max-age=\(retry)"))
        return response
    }
}
