import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// Authorizations and challenges (RFC 8555 §7.5, §8).
extension ACMEServer {
    // MARK: Authorizations and challenges (RFC 8555 §7.5)

    func ownedAuthorization(_ id: String, _ v: Verified) async throws -> ACMEAuthorizationRecord {
        guard let authz = try await store.read({ try await $0.acmeAuthorization(id: id) }) else {
            throw ACMEProblem(.malformed, "no such authorization", status: 404)
        }
        guard authz.accountID == v.account?.id else { throw ACMEProblem(.unauthorized, "the authorization belongs to another account") }
        return authz
    }

    func authorizationJSON(_ p: ACMEProvisioner, _ a: ACMEAuthorizationRecord) -> [String: Any] {
        var object: [String: Any] = [
            "identifier": ["type": a.identifier.type, "value": a.identifier.value],
            "status": effectiveStatus(a, now: clock.now()).rawValue, "expires": RFC3339.string(a.expires),
            "challenges": a.challenges.map { challengeJSON(p, a, $0) },
        ]
        if a.wildcard { object["wildcard"] = true }
        return object
    }

    func challengeJSON(_ p: ACMEProvisioner, _ a: ACMEAuthorizationRecord, _ c: ACMEChallengeRecord) -> [String: Any] {
        var object: [String: Any] = ["type": c.type, "url": challengeURL(p, a.id, c.id), "status": c.status.rawValue, "token": c.token]
        if let validated = c.validated { object["validated"] = RFC3339.string(validated) }
        if let error = c.error { object["error"] = error.json }
        return object
    }

    func authorization(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        var authz = try await ownedAuthorization(id, v)
        if !v.jws.isPostAsGet {
            // RFC 8555 §7.5.2: the client may deactivate a pending or valid authorization.
            let payload = try v.jws.payloadObject()
            guard payload["status"] as? String == "deactivated" else { throw ACMEProblem(.malformed, "an authorization's status can only be set to \"deactivated\"") }
            let status = effectiveStatus(authz, now: clock.now())
            guard status == .pending || status == .valid else { throw ACMEProblem(.malformed, "the authorization is \(status.rawValue) and cannot be deactivated") }
            authz.status = .deactivated
            let updated = authz
            let now = clock.now()
            try await store.write { session in
                try await session.updateACMEAuthorization(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, updated.accountID), action: "acme.authorization.deactivated",
                                                         object: "acme-authz:\(id)", details: ["identifier": updated.identifier.description]))
            }
        }
        var response = json(200, authorizationJSON(p, authz))
        if effectiveStatus(authz, now: clock.now()) == .pending && authz.challenges.contains(where: { $0.status == .processing }) {
            response.headers.append(("Retry-After", "1"))
        }
        return response
    }

    func challenge(_ p: ACMEProvisioner, _ authzID: String, _ challengeID: String, _ v: Verified) async throws -> ACMEResponse {
        guard let account = v.account else { throw ACMEProblem(.unauthorized, "challenges must be answered by an account") }
        let authz = try await ownedAuthorization(authzID, v)
        guard authz.challenges.contains(where: { $0.id == challengeID }) else { throw ACMEProblem(.malformed, "no such challenge", status: 404) }
        if !v.jws.isPostAsGet {
            // RFC 8555 §7.5.1: the client says it is ready with an empty JSON object.
            _ = try v.jws.payloadObject() as [String: Any]?
            let now = clock.now()
            let started = try await store.write { session -> Bool in
                guard var stored = try await session.acmeAuthorization(id: authzID), self.effectiveStatus(stored, now: now) == .pending,
                      let index = stored.challenges.firstIndex(where: { $0.id == challengeID }), stored.challenges[index].status == .pending,
                      !stored.challenges.contains(where: { $0.status == .processing }) else { return false }
                stored.challenges[index].status = .processing
                try await session.updateACMEAuthorization(stored)
                return true
            }
            if started {
                let task = Task { await self.runValidation(p, authzID: authzID, challengeID: challengeID, thumbprint: account.thumbprint) }
                // Answer with the result when validation is quick (it usually is), so clients need not poll.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await task.value }
                    group.addTask { try? await Task.sleep(nanoseconds: 3_000_000_000) }
                    await group.next()
                    group.cancelAll()
                }
            }
        }
        guard let latest = try await store.read({ try await $0.acmeAuthorization(id: authzID) }),
              let current = latest.challenges.first(where: { $0.id == challengeID }) else {
            throw ACMEProblem(.malformed, "no such challenge", status: 404)
        }
        var response = json(200, challengeJSON(p, latest, current))
        response.headers.append(("Link", "<\(authzURL(p, authzID))>;rel=\"up\""))
        if current.status == .processing { response.headers.append(("Retry-After", "1")) }
        return response
    }

    /// Validates one challenge and records the outcome on the challenge and its authorization.
    func runValidation(_ p: ACMEProvisioner, authzID: String, challengeID: String, thumbprint: String) async {
        do {
            guard let authz = try await store.read({ try await $0.acmeAuthorization(id: authzID) }),
                  let challenge = authz.challenges.first(where: { $0.id == challengeID }) else { return }
            // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)).
            let keyAuthorization = "\(challenge.token).\(thumbprint)"
            var failure: ACMEProblem?
            if !configuration.insecureSkipValidation {
                do {
                    try await validator.validate(type: challenge.type, identifier: authz.identifier, token: challenge.token, keyAuthorization: keyAuthorization)
                } catch {
                    failure = error
                }
            }
            let now = clock.now()
            let reuse = configuration.authorizationReuse
            let outcome = failure
            try await store.write { session in
                guard var stored = try await session.acmeAuthorization(id: authzID),
                      let index = stored.challenges.firstIndex(where: { $0.id == challengeID }) else { return }
                if let outcome {
                    stored.challenges[index].status = .invalid
                    stored.challenges[index].error = outcome.stored
                    stored.status = .invalid
                } else {
                    stored.challenges[index].status = .valid
                    stored.challenges[index].validated = now
                    stored.status = .valid
                    stored.expires = now.addingTimeInterval(reuse)
                }
                try await session.updateACMEAuthorization(stored)
                try await session.appendAudit(AuditDraft(
                    time: now, actor: self.actor(p, stored.accountID), action: outcome == nil ? "acme.challenge.valid" : "acme.challenge.invalid",
                    object: "acme-authz:\(authzID)",
                    details: ["identifier": stored.identifier.description, "type": stored.challenges[index].type, "error": outcome?.detail ?? ""]))
            }
        } catch {
            logger.error("recording a challenge result failed", metadata: ["authz": .string(authzID), "error": .string(String(describing: error))])
        }
    }
}
