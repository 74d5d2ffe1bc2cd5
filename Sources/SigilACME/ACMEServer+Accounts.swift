import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore

/// Accounts: creation, External Account Binding, update, deactivation, key change (RFC 8555 §7.3).
extension ACMEServer {
    // MARK: Accounts (RFC 8555 §7.3)

    func accountJSON(_ p: ACMEProvisioner, _ a: ACMEAccountRecord) -> [String: Any] {
        ["status": a.status.rawValue, "contact": a.contact, "termsOfServiceAgreed": a.termsAgreed, "orders": url(p, "acct/\(a.id)/orders"),
         "createdAt": RFC3339.string(a.createdAt)]
    }

    func newAccount(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        let payload = try v.jws.payloadObject()
        let thumbprint = v.key.thumbprint
        // RFC 8555 §7.3.1: the same key again finds the existing account (200, not 201).
        if let existing = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
            // RFC 8555 §7.3.6: a deactivated account's key authorizes nothing, not even a lookup.
            guard existing.status == .valid else { throw ACMEProblem(.unauthorized, "the account of this key is \(existing.status.rawValue)", status: 401) }
            return json(200, accountJSON(p, existing), location: accountURL(p, existing.id))
        }
        if payload["onlyReturnExisting"] as? Bool == true {
            throw ACMEProblem(.accountDoesNotExist, "no account exists for this key")
        }
        let contact = try contacts(payload["contact"])
        let agreed = payload["termsOfServiceAgreed"] as? Bool ?? false
        if configuration.termsOfService != nil && !agreed {
            throw ACMEProblem(.malformed, "agree to the terms of service (termsOfServiceAgreed: true) to create an account")
        }
        var eab: ACMEEABKeyRecord?
        if let binding = payload["externalAccountBinding"] {
            eab = try await verifyExternalAccountBinding(binding, accountKey: v.key, url: url(p, "new-account"))
        } else if p.eabRequired {
            throw ACMEProblem(.externalAccountRequired, "this ACME directory requires an External Account Binding (sigil acme eab create)")
        }
        let now = clock.now()
        let account = ACMEAccountRecord(id: randomID(), provisioner: p.name, thumbprint: thumbprint, jwk: v.key.canonicalJSON, status: .valid,
                                        contact: contact, termsAgreed: agreed, eabKeyID: eab?.id, createdAt: now)
        let actor = self.actor(p, account.id)
        let binding = eab
        do {
            try await store.write { session in
                if let binding {
                    // The key binds one account: checked again inside the transaction.
                    guard var key = try await session.eabKey(id: binding.id), key.accountID == nil, key.revokedAt == nil else {
                        throw ACMEProblem(.unauthorized, "the External Account Binding key is already bound to an account")
                    }
                    key.accountID = account.id
                    try await session.updateEABKey(key)
                }
                try await session.insertACMEAccount(account)
                try await session.appendAudit(AuditDraft(time: now, actor: actor, action: "acme.account.created", object: "acme-account:\(account.id)",
                                                         details: ["provisioner": p.name, "thumbprint": thumbprint, "eab": binding?.name ?? "",
                                                                   "contact": contact.joined(separator: ",")]))
            }
        } catch let error as StoreError where error.code == .duplicate {
            // Two requests with the same new key raced: the other one created it.
            if let existing = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
                return json(200, accountJSON(p, existing), location: accountURL(p, existing.id))
            }
            throw error
        }
        return json(201, accountJSON(p, account), location: accountURL(p, account.id))
    }

    /// RFC 8555 §7.3.2: only mailto: contacts, each a plain address.
    func contacts(_ value: Any?) throws -> [String] {
        guard let value else { return [] }
        guard let list = value as? [Any] else { throw ACMEProblem(.malformed, "\"contact\" must be an array of URLs") }
        guard list.count <= 10 else { throw ACMEProblem(.malformed, "at most 10 contacts") }
        return try list.map { item in
            guard let text = item as? String else { throw ACMEProblem(.malformed, "each contact must be a string") }
            guard text.lowercased().hasPrefix("mailto:") else {
                throw ACMEProblem(.unsupportedContact, "only mailto: contacts are supported (got \(text.prefix(100)))")
            }
            let address = String(text.dropFirst(7))
            if address.contains("?") || address.contains(",") || NameRules.emailProblem(address) != nil {
                throw ACMEProblem(.invalidContact, "\(text.prefix(100)) is not a valid email contact")
            }
            return "mailto:\(address)"
        }
    }

    /// RFC 8555 §7.3.4: a JWS over the account key, MACed with the EAB key, for the newAccount URL.
    func verifyExternalAccountBinding(_ binding: Any, accountKey: JWK, url: String) async throws -> ACMEEABKeyRecord {
        guard let object = binding as? [String: Any], let protectedB64 = object["protected"] as? String,
              let payloadB64 = object["payload"] as? String, let signatureB64 = object["signature"] as? String,
              let headerBytes = Base64URL.decode(protectedB64),
              let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any],
              let payload = Base64URL.decode(payloadB64), let signature = Base64URL.decode(signatureB64) else {
            throw ACMEProblem(.malformed, "externalAccountBinding must be a flattened JWS")
        }
        guard let alg = header["alg"] as? String, ["HS256", "HS384", "HS512"].contains(alg) else {
            throw ACMEProblem(.badSignatureAlgorithm, "externalAccountBinding must use HS256, HS384 or HS512", algorithms: ["HS256", "HS384", "HS512"])
        }
        guard header["nonce"] == nil else { throw ACMEProblem(.malformed, "externalAccountBinding must not carry a nonce") }
        guard header["url"] as? String == url else { throw ACMEProblem(.unauthorized, "externalAccountBinding \"url\" must be the newAccount URL") }
        guard let kid = header["kid"] as? String else { throw ACMEProblem(.malformed, "externalAccountBinding has no \"kid\"") }
        guard let bound = try? JWK(json: try JSONSerialization.jsonObject(with: Data(payload))), bound.thumbprint == accountKey.thumbprint else {
            throw ACMEProblem(.unauthorized, "externalAccountBinding does not bind this account's key")
        }
        guard let key = try await store.read({ try await $0.eabKey(id: kid) }), key.revokedAt == nil, let secret = Base64URL.decode(key.hmacKey) else {
            throw ACMEProblem(.unauthorized, "unknown or revoked External Account Binding key id")
        }
        let input = Array("\(protectedB64).\(payloadB64)".utf8)
        let symmetric = SymmetricKey(data: secret)
        // HMAC.isValidAuthenticationCode compares in constant time.
        let valid: Bool
        switch alg {
        case "HS256": valid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        case "HS384": valid = HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        default: valid = HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: symmetric)
        }
        guard valid else { throw ACMEProblem(.unauthorized, "the External Account Binding MAC does not verify") }
        guard key.accountID == nil else { throw ACMEProblem(.unauthorized, "the External Account Binding key is already bound to an account") }
        return key
    }

    func account(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard var account = v.account, account.id == id else { throw ACMEProblem(.unauthorized, "the request is signed by another account") }
        if v.jws.isPostAsGet { return json(200, accountJSON(p, account), location: accountURL(p, id)) }
        let payload = try v.jws.payloadObject()
        var changes: [String: String] = [:]
        if let contact = payload["contact"] {
            account.contact = try contacts(contact)
            changes["contact"] = account.contact.joined(separator: ",")
        }
        if let status = payload["status"] {
            // RFC 8555 §7.3.6: the client may only deactivate.
            guard status as? String == "deactivated" else { throw ACMEProblem(.malformed, "an account's status can only be set to \"deactivated\"") }
            account.status = .deactivated
            changes["status"] = "deactivated"
        }
        if !changes.isEmpty {
            let updated = account
            let changes = changes
            let now = clock.now()
            try await store.write { session in
                try await session.updateACMEAccount(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, id), action: updated.status == .deactivated ? "acme.account.deactivated" : "acme.account.updated",
                                                         object: "acme-account:\(id)", details: changes))
            }
        }
        return json(200, accountJSON(p, account), location: accountURL(p, id))
    }

    func accountOrders(_ p: ACMEProvisioner, _ id: String, _ v: Verified) async throws -> ACMEResponse {
        guard v.account?.id == id else { throw ACMEProblem(.unauthorized, "the request is signed by another account") }
        let ids = try await store.read { try await $0.acmeOrderIDs(account: id, limit: 1000) }
        return json(200, ["orders": ids.map { orderURL(p, $0) }])
    }

    /// RFC 8555 §7.3.5: the outer JWS is signed by the old key, the inner by the new one.
    func keyChange(_ p: ACMEProvisioner, _ v: Verified) async throws -> ACMEResponse {
        guard var account = v.account else { throw ACMEProblem(.unauthorized, "keyChange must be signed by the account") }
        let inner = try FlattenedJWS(object: try v.jws.payloadObject())
        guard let newKey = inner.jwk else { throw ACMEProblem(.malformed, "the inner JWS of a key change must carry the new key as \"jwk\"") }
        guard inner.url == v.jws.url else { throw ACMEProblem(.malformed, "the inner JWS \"url\" must equal the outer one") }
        guard try newKey.verify(algorithm: inner.algorithm, signature: inner.signature, message: inner.signingInput) else {
            throw ACMEProblem(.malformed, "the inner JWS signature does not verify with the new key")
        }
        let body = try inner.payloadObject()
        guard body["account"] as? String == accountURL(p, account.id) else {
            throw ACMEProblem(.malformed, "the key change names another account")
        }
        guard let old = body["oldKey"], (try? JWK(json: old))?.thumbprint == account.thumbprint else {
            throw ACMEProblem(.malformed, "\"oldKey\" is not the account's current key")
        }
        let thumbprint = newKey.thumbprint
        if let other = try await store.read({ try await $0.acmeAccount(provisioner: p.name, thumbprint: thumbprint) }) {
            var problem = ACMEProblem(.malformed, "another account already uses the new key", status: 409)
            problem.location = accountURL(p, other.id)
            throw problem
        }
        let previous = account.thumbprint
        account.thumbprint = thumbprint
        account.jwk = newKey.canonicalJSON
        let updated = account
        let now = clock.now()
        do {
            try await store.write { session in
                try await session.updateACMEAccount(updated)
                try await session.appendAudit(AuditDraft(time: now, actor: self.actor(p, updated.id), action: "acme.account.key_changed",
                                                         object: "acme-account:\(updated.id)", details: ["old_thumbprint": previous, "new_thumbprint": thumbprint]))
            }
        } catch let error as StoreError where error.code == .duplicate {
            throw ACMEProblem(.malformed, "another account already uses the new key", status: 409)
        }
        return json(200, accountJSON(p, account), location: accountURL(p, account.id))
    }
}
