import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// Orders: identifiers, policy, rate limits, status derived from authorizations, finalize (RFC 8555 §7.4).
extension ACMEServer {
    // MARK: Orders (RFC 8555 §7.4)

    func newOrder(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "newOrder must be signed by an account") }
        let payload = try v.jws.payloadObject()
        guard let list = payload["identifiers"] as? [Any], !list.isEmpty else {
            throw ACMEProblem(.malformed, "\"identifiers\" must be a non-empty array")
        }
        guard list.count <= 100 else { throw ACMEProblem(.rejectedIdentifier, "an order may name at most 100 identifiers") }
        if payload["notBefore"] != nil || payload["notAfter"] != nil {
            throw ACMEProblem(.malformed, "notBefore and notAfter are not supported; choose a profile (see the directory's meta.profiles)")
        }
        let profileName = (payload["profile"] as? String) ?? p.defaultProfile
        guard p.profiles[profileName] != nil else {
            throw ACMEProblem(.invalidProfile, "profile '\(profileName.prefix(64))' is not offered; this directory offers \(p.profiles.keys.sorted().joined(separator: ", "))")
        }
        var eabPatterns: [NamePattern] = []
        if let eabID = account.eabKeyID, let key = try await store.read({ try await $0.eabKey(id: eabID) }) {
            eabPatterns = key.allowedNames.compactMap { try? NamePattern($0) }
        }
        var identifiers: [ACMEIdentifier] = []
        var rejected: [ACMEStoredSubproblem] = []
        for item in list {
            guard let object = item as? [String: Any], let type = object["type"] as? String, let value = object["value"] as? String else {
                throw ACMEProblem(.malformed, "each identifier needs a \"type\" and a \"value\" string")
            }
            let identifier: ACMEIdentifier
            switch type {
            case "dns":
                identifier = ACMEIdentifier(type: "dns", value: value.lowercased())
                if let problem = NameRules.dnsNameProblem(identifier.value) {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type, detail: problem, identifier: identifier))
                    continue
                }
                if identifier.value.hasPrefix("*.") && !p.challengeTypes.contains("dns-01") {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                         detail: "wildcards need dns-01, which this directory does not offer", identifier: identifier))
                    continue
                }
            case "ip":
                // RFC 8738 §3: the textual form; stored in its canonical form.
                guard let bytes = NameRules.parseIPAddress(value) else {
                    rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.malformed, "").type, detail: "'\(value.prefix(64))' is not an IP address",
                                                         identifier: ACMEIdentifier(type: type, value: value)))
                    continue
                }
                identifier = ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress(bytes))
            default:
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.unsupportedIdentifier, "").type,
                                                     detail: "identifier type '\(type.prefix(32))' is not supported (dns and ip are)", identifier: ACMEIdentifier(type: type, value: value)))
                continue
            }
            let name: SubjectAltName = identifier.type == "ip" ? .ip(NameRules.parseIPAddress(identifier.value) ?? []) : .dns(identifier.value)
            if !p.allowedNames.isEmpty && !p.allowedNames.contains(where: { $0.matches(name) }) {
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                     detail: "\(identifier.value) is not allowed by ACME directory '\(p.name)'", identifier: identifier))
                continue
            }
            if !eabPatterns.isEmpty && !eabPatterns.contains(where: { $0.matches(name) }) {
                rejected.append(ACMEStoredSubproblem(type: ACMEProblem(.rejectedIdentifier, "").type,
                                                     detail: "\(identifier.value) is not allowed for this account's external binding", identifier: identifier))
                continue
            }
            if !identifiers.contains(identifier) { identifiers.append(identifier) }
        }
        if !rejected.isEmpty {
            let kind: ACMEProblem.Kind = rejected.count == 1 ? (ACMEProblem.Kind(rawValue: String(rejected[0].type.split(separator: ":").last ?? "")) ?? .rejectedIdentifier) : .rejectedIdentifier
            throw ACMEProblem(kind, rejected.count == 1 ? rejected[0].detail : "\(rejected.count) identifiers cannot be certified", subproblems: rejected)
        }
        let now = clock.now()
        // Rate limits, counted in the database so every node sees them.
        let hourAgo = now.addingTimeInterval(-3600)
        let limits = configuration.rateLimits
        let perAccount = try await store.read { try await $0.countACMEOrders(account: account.id, since: hourAgo) }
        if perAccount >= limits.ordersPerAccountPerHour {
            throw ACMEProblem(.rateLimited, "too many new orders for this account: \(limits.ordersPerAccountPerHour) per hour", retryAfter: 3600)
        }
        for identifier in identifiers {
            let count = try await store.read { try await $0.countACMEOrders(name: identifier.value, since: hourAgo) }
            if count >= limits.ordersPerNamePerHour {
                throw ACMEProblem(.rateLimited, "too many new orders for \(identifier.value): \(limits.ordersPerNamePerHour) per hour",
                                  subproblems: [ACMEStoredSubproblem(type: ACMEProblem(.rateLimited, "").type, detail: "limit reached", identifier: identifier)],
                                  retryAfter: 3600)
            }
        }
        let replaces = try await checkReplaces(payload["replaces"], account: account, identifiers: identifiers)
        // Authorizations: a valid one of the same account is reused (RFC 8555 §7.1.4), otherwise a new pending one.
        var authorizations: [ACMEAuthorizationRecord] = []
        var fresh: [ACMEAuthorizationRecord] = []
        for identifier in identifiers {
            let wildcard = identifier.type == "dns" && identifier.value.hasPrefix("*.")
            let base = ACMEIdentifier(type: identifier.type, value: wildcard ? String(identifier.value.dropFirst(2)) : identifier.value)
            let lookup = "\(identifier.type):\(identifier.value)"
            if let reused = try await store.read({ try await $0.validACMEAuthorization(account: account.id, lookup: lookup, now: now) }) {
                authorizations.append(reused)
                continue
            }
            let types = wildcard ? ["dns-01"] : p.challengeTypes.filter { identifier.type == "dns" || $0 != "dns-01" }
            let authz = ACMEAuthorizationRecord(
                id: randomID(), accountID: account.id, provisioner: p.name, identifier: base, wildcard: wildcard, status: .pending,
                expires: now.addingTimeInterval(configuration.orderLifetime),
                challenges: types.map { ACMEChallengeRecord(id: randomID(8), type: $0, token: randomID(32), status: .pending) }, createdAt: now)
            authorizations.append(authz)
            fresh.append(authz)
        }
        let expires = authorizations.map(\.expires).reduce(now.addingTimeInterval(configuration.orderLifetime), min)
        let order = ACMEOrderRecord(
            id: randomID(), accountID: account.id, provisioner: p.name, status: authorizations.allSatisfy { $0.status == .valid } ? .ready : .pending,
            identifiers: identifiers, profile: profileName, expires: expires, authorizationIDs: authorizations.map(\.id), replaces: replaces, createdAt: now)
        let newAuthorizations = fresh, named = identifiers
        try await store.write { session in
            for authz in newAuthorizations { try await session.insertACMEAuthorization(authz) }
            try await session.insertACMEOrder(order)
            try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, account.id), action: "acme.order.created", object: "acme-order:\(order.id)",
                                                     details: ["identifiers": named.map(\.description).joined(separator: ","), "profile": profileName,
                                                               "replaces": replaces ?? ""]))
        }
        return json(201, orderJSON(p, order), location: orderURL(p, order.id))
    }

    /// RFC 9773 §5: `replaces` names a certificate of the same account, sharing an identifier,
    /// not already replaced by another live order.
    func checkReplaces(_ value: Any?, account: ACMEAccountRecord, identifiers: [ACMEIdentifier]) async throws -> String? {
        guard let value else { return nil }
        guard let certID = value as? String else { throw ACMEProblem(.malformed, "\"replaces\" must be a string") }
        let record = try await certificate(ariID: certID)
        guard let orderID = record.requestID?.split(separator: ":").last.map(String.init), record.requestID?.hasPrefix("acme-order:") == true,
              let previous = try await store.read({ try await $0.acmeOrder(id: orderID) }), previous.accountID == account.id else {
            throw ACMEProblem(.unauthorized, "\"replaces\" names a certificate this account did not order")
        }
        guard Set(previous.identifiers).intersection(identifiers).isEmpty == false else {
            throw ACMEProblem(.malformed, "the replaced certificate shares no identifier with this order")
        }
        var live = false
        for other in try await store.read({ try await $0.acmeOrders(replacing: certID) }) where try await current(other).status != .invalid {
            live = true
        }
        if live {
            throw ACMEProblem(.alreadyReplaced, "the certificate \(certID) was already replaced by another order")
        }
        return certID
    }

    func orderJSON(_ p: ACMEProvisioner, _ o: ACMEOrderRecord) -> [String: Any] {
        var object: [String: Any] = [
            "status": o.status.rawValue, "expires": RFC3339.string(o.expires),
            "identifiers": o.identifiers.map { ["type": $0.type, "value": $0.value] },
            "authorizations": o.authorizationIDs.map { authzURL(p, $0) },
            "finalize": url(p, "order/\(o.id)/finalize"), "profile": o.profile,
        ]
        if let fingerprint = o.certificateFingerprint { object["certificate"] = certificateURL(p, fingerprint) }
        if let error = o.error { object["error"] = error.json }
        if let replaces = o.replaces { object["replaces"] = replaces }
        return object
    }

    /// An order's status follows its authorizations (RFC 8555 §7.1.6): derived on every read.
    func current(_ order: ACMEOrderRecord) async throws -> ACMEOrderRecord {
        guard order.status == .pending || order.status == .ready else { return order }
        let now = clock.now()
        var order = order
        let authorizationIDs = order.authorizationIDs
        if order.expires <= now {
            order.status = .invalid
            order.error = ACMEProblem(.malformed, "the order expired before it was finalized").stored
            return order
        }
        let authorizations = try await store.read { session in
            var found: [ACMEAuthorizationRecord] = []
            for id in authorizationIDs { if let a = try await session.acmeAuthorization(id: id) { found.append(a) } }
            return found
        }
        var allValid = authorizations.count == order.authorizationIDs.count
        for authz in authorizations {
            let status = effectiveStatus(authz, now: now)
            switch status {
            case .valid: continue
            case .pending: allValid = false
            default:
                order.status = .invalid
                let failure = authz.challenges.compactMap(\.error).first
                order.error = ACMEStoredProblem(type: ACMEProblem(.unauthorized, "").type,
                                                detail: "authorization for \(authz.identifier.value) is \(status.rawValue)", status: 403,
                                                subproblems: failure.map { [ACMEStoredSubproblem(type: $0.type, detail: $0.detail, identifier: authz.identifier)] } ?? [])
                return order
            }
        }
        order.status = allValid ? .ready : .pending
        return order
    }

    func effectiveStatus(_ authz: ACMEAuthorizationRecord, now: Date) -> ACMEStatus {
        if (authz.status == .pending || authz.status == .valid) && authz.expires <= now { return .expired }
        return authz.status
    }

    func ownedOrder(_ id: String, _ v: Verified) async throws -> ACMEOrderRecord {
        guard let order = try await store.read({ try await $0.acmeOrder(id: id) }) else {
            throw ACMEProblem(.malformed, "no such order", status: 404)
        }
        guard order.accountID == v.account?.id else { throw ACMEProblem(.unauthorized, "the order belongs to another account") }
        return order
    }

    func order(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard v.jws.isPostAsGet else { throw ACMEProblem(.malformed, "read an order with POST-as-GET (an empty payload)") }
        let order = try await current(try await ownedOrder(id, v))
        var response = json(200, orderJSON(p, order), location: orderURL(p, id))
        if order.status == .processing { response.headers.append(("Retry-After", "1")) }
        return response
    }

    /// RFC 8555 §7.4: the CSR must name exactly the order's identifiers and pass the profile's policy.
    func finalize(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "finalize must be signed by an account") }
        let order = try await current(try await ownedOrder(id, v))
        guard order.status == .ready else {
            throw ACMEProblem(.orderNotReady, "the order is \(order.status.rawValue), not ready: \(order.status == .pending ? "complete its authorizations first" : "it cannot be finalized again")")
        }
        let payload = try v.jws.payloadObject()
        guard let csrText = payload["csr"] as? String, let der = Base64URL.decode(csrText) else {
            throw ACMEProblem(.malformed, "\"csr\" must be the base64url DER of a PKCS#10 request")
        }
        let csr: CertificationRequest
        do {
            csr = try CertificationRequest(derEncoded: der)
        } catch {
            throw ACMEProblem(.badCSR, "the CSR cannot be parsed: \(error)")
        }
        guard csr.isSignatureValid else { throw ACMEProblem(.badCSR, "the CSR signature does not verify") }
        var names = Set<ACMEIdentifier>()
        for name in (try? csr.subjectAltNames()) ?? [] {
            switch name {
            case .dns(let d): names.insert(ACMEIdentifier(type: "dns", value: d.lowercased()))
            case .ip(let bytes): names.insert(ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress(bytes)))
            default: throw ACMEProblem(.badCSR, "the CSR asks for \(name.description), which an ACME order cannot authorize")
            }
        }
        for cn in csr.subject.values(of: .commonName) {
            let lowered = cn.lowercased()
            let asIP = NameRules.parseIPAddress(lowered).map { ACMEIdentifier(type: "ip", value: NameRules.formatIPAddress($0)) }
            names.insert(asIP ?? ACMEIdentifier(type: "dns", value: lowered))
        }
        let wanted = Set(order.identifiers)
        guard names == wanted else {
            let extra = names.subtracting(wanted).map(\.value).sorted()
            let missing = wanted.subtracting(names).map(\.value).sorted()
            var parts: [String] = []
            if !extra.isEmpty { parts.append("names \(extra.joined(separator: ", ")) that the order does not") }
            if !missing.isEmpty { parts.append("lacks \(missing.joined(separator: ", ")) that the order names") }
            throw ACMEProblem(.badCSR, "the CSR must name exactly the order's identifiers; it \(parts.joined(separator: " and "))")
        }
        // RFC 8555 §11.1: the certificate key must not be the account key.
        if let csrKey = try? PublicKey(spkiDER: csr.subjectPublicKeyInfo), let accountKey = try? v.key.publicKey(), csrKey == accountKey {
            throw ACMEProblem(.badCSR, "the certificate key must differ from the account key")
        }
        guard let mapping = p.profiles[order.profile] else { throw ACMEProblem(.invalidProfile, "profile '\(order.profile)' is no longer offered") }
        var request = IssuanceRequest(csr: csr, profile: mapping.profile, issuer: p.issuer, days: mapping.days, requester: actor(p, account.id),
                                      tags: p.name == "acme" ? ["acme"] : ["acme", p.name])
        request.requestID = "acme-order:\(order.id)"
        request.refuseApproval = true
        request.inTransaction = { session, record in
            // Two finalize requests may race: only the first may mark the order valid.
            guard var stored = try await session.acmeOrder(id: id), stored.certificateFingerprint == nil,
                  stored.status == .pending || stored.status == .ready else {
                throw ACMEProblem(.orderNotReady, "the order was finalized by another request")
            }
            stored.status = .valid
            stored.certificateFingerprint = record.fingerprint
            try await session.updateACMEOrder(stored)
        }
        do {
            _ = try await authority.submit(request)
        } catch let error as SigilError where error.kind == .policyViolation || error.kind == .badInput || error.kind == .unsupported {
            let reasons = error.reasons.isEmpty ? [error.message] : error.reasons
            let problem = ACMEProblem(.badCSR, "\(error.message) \(reasons.joined(separator: "; "))")
            var failed = order
            failed.status = .invalid
            failed.error = problem.stored
            let stored = failed
            try await store.write { try await $0.updateACMEOrder(stored) }
            throw problem
        }
        guard let done = try await store.read({ try await $0.acmeOrder(id: id) }) else { throw ACMEProblem(.serverInternal, "the order vanished") }
        return json(200, orderJSON(p, done), location: orderURL(p, id))
    }
}
