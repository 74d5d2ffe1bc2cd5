import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import SwiftASN1
import Synchronization
import X509

/// The OCSP responder (RFC 6960, RFC 5019 profile).
///
/// Responses are signed by the issuing CA, or by a delegated responder
/// certificate from the `ocsp-signing` profile (with id-pkix-ocsp-nocheck) that
/// the server issues for itself and renews. Single-certificate requests without
/// a nonce (the RFC 5019 case, and nearly all real traffic) are answered from a
/// cache of signed responses: a request costs one indexed read to confirm the
/// status, never a signature; a response is re-signed once it is half-way to
/// its nextUpdate.
public actor OCSPResponder {
    public enum SignerMode: String, Sendable {
        case ca, delegated
    }

    struct IssuerKey: Hashable {
        var algorithm: OCSP.HashAlgorithm
        var nameHash: [UInt8]
        var keyHash: [UInt8]
    }

    struct Signing {
        var key: PublicKey
        var algorithm: SignatureAlgorithm
        var sign: @Sendable ([UInt8]) throws -> [UInt8]
        var certificates: [X509Certificate]
        var notAfter: Date?
    }

    struct Cached {
        var der: [UInt8]
        var status: OCSP.CertStatus
        var thisUpdate: Date
        var nextUpdate: Date
    }

    /// How long a response is valid (BR §4.9.10: at least 8 hours, at most 10 days).
    public static let validity: TimeInterval = 3 * 86_400

    private let authority: CertificateAuthority
    private let mode: SignerMode
    private var issuersByHash: [IssuerKey: String] = [:]
    private var issuerCount = -1
    private var delegated: [String: Signing] = [:]
    private var cache: [String: Cached] = [:]
    private let maximumCacheEntries = 500_000

    public init(authority: CertificateAuthority, mode: SignerMode = .ca) {
        self.authority = authority
        self.mode = mode
    }

    /// The DER OCSPResponse for a DER OCSPRequest, and how long it may be cached
    /// (nil: not cacheable, e.g. an error or a nonce). Never throws: every failure
    /// is an OCSP status.
    public func respond(to requestDER: [UInt8]) async -> (der: [UInt8], thisUpdate: Date?, nextUpdate: Date?) {
        let request: OCSP.Request
        do {
            request = try OCSP.Request(derEncoded: requestDER)
        } catch {
            return (OCSP.errorResponse(.malformedRequest), nil, nil)
        }
        do {
            try await refreshIssuers()
            var issuerNames = Set<String>()
            for id in request.certIDs {
                guard let name = issuersByHash[IssuerKey(algorithm: id.hashAlgorithm, nameHash: id.issuerNameHash, keyHash: id.issuerKeyHash)] else {
                    // RFC 6960 §2.3: a responder that cannot answer for this CA says unauthorized.
                    return (OCSP.errorResponse(.unauthorized), nil, nil)
                }
                issuerNames.insert(name)
            }
            // One response has one signer, so every certificate must share an issuer.
            guard issuerNames.count == 1, let issuerName = issuerNames.first else { return (OCSP.errorResponse(.unauthorized), nil, nil) }
            let now = authority.clock.now()
            var statuses: [OCSP.CertStatus] = []
            for id in request.certIDs { statuses.append(try await status(of: id, issuer: issuerName)) }
            if request.certIDs.count == 1, request.nonce == nil {
                let key = cacheKey(issuerName, request.certIDs[0])
                if let cached = cache[key], cached.status == statuses[0],
                   now.timeIntervalSince(cached.thisUpdate) < cached.nextUpdate.timeIntervalSince(cached.thisUpdate) / 2 {
                    return (cached.der, cached.thisUpdate, cached.nextUpdate)
                }
            }
            let thisUpdate = ASN1Time.truncate(now)
            let nextUpdate = thisUpdate.addingTimeInterval(Self.validity)
            let signing = try await signer(for: issuerName)
            let responses = zip(request.certIDs, statuses).map { OCSP.SingleResponse(certID: $0, status: $1, thisUpdate: thisUpdate, nextUpdate: nextUpdate) }
            let der = try OCSP.signedResponse(
                responses: responses, producedAt: thisUpdate, responderKey: signing.key, nonce: request.nonce,
                responderCertificates: signing.certificates, algorithm: signing.algorithm, sign: signing.sign)
            if request.certIDs.count == 1, request.nonce == nil {
                if cache.count >= maximumCacheEntries { cache.removeAll(keepingCapacity: true) }
                cache[cacheKey(issuerName, request.certIDs[0])] = Cached(der: der, status: statuses[0], thisUpdate: thisUpdate, nextUpdate: nextUpdate)
                return (der, thisUpdate, nextUpdate)
            }
            return (der, nil, nil)
        } catch let error as StoreError where error.code == .unavailable {
            return (OCSP.errorResponse(.tryLater), nil, nil)
        } catch {
            return (OCSP.errorResponse(.internalError), nil, nil)
        }
    }

    private func cacheKey(_ issuer: String, _ id: OCSP.CertID) -> String {
        issuer + ":" + Hex.encode(id.serialNumber)
    }

    private func status(of id: OCSP.CertID, issuer: String) async throws -> OCSP.CertStatus {
        let serial = Hex.encode(id.serialNumber)
        let records = try await authority.store.read { try await $0.certificates(serial: serial) }
        guard let record = records.first(where: { $0.issuer == issuer }) else { return .unknown }
        if record.storedStatus == .revoked {
            return .revoked(at: record.revokedAt ?? record.createdAt, reason: record.revocationReason.flatMap(RevocationReason.init(rawValue:)))
        }
        return .good
    }

    /// Rebuilds the CertID lookup table when the set of issuers changes.
    private func refreshIssuers() async throws {
        let issuers = try await authority.issuers().filter { $0.status == .active }
        guard issuers.count != issuerCount else { return }
        var table: [IssuerKey: String] = [:]
        for issuer in issuers {
            let certificate = try X509Certificate(pemOrDER: Array(issuer.certificatePEM.utf8))
            guard let key = certificate.publicKey else { continue }
            var subject = DER.Serializer()
            try subject.serialize(certificate.subject)
            for algorithm in [OCSP.HashAlgorithm.sha1, .sha256] {
                table[IssuerKey(algorithm: algorithm, nameHash: algorithm.hash(subject.serializedBytes), keyHash: algorithm.hash(key.subjectPublicKeyBytes))] = issuer.name
            }
        }
        issuersByHash = table
        issuerCount = issuers.count
    }

    private func signer(for issuerName: String) async throws -> Signing {
        switch mode {
        case .ca:
            let signer = try authority.signerForResponses(issuerName)
            return Signing(key: signer.publicKey, algorithm: signer.signatureAlgorithm, sign: { try signer.sign($0) }, certificates: [], notAfter: nil)
        case .delegated:
            let now = authority.clock.now()
            if let existing = delegated[issuerName], let notAfter = existing.notAfter, notAfter.timeIntervalSince(now) > OCSPResponder.validity * 2 {
                return existing
            }
            let fresh = try await issueDelegatedResponder(issuerName)
            delegated[issuerName] = fresh
            // New signer: cached responses of the old one stay valid; nothing to drop.
            return fresh
        }
    }

    /// An ocsp-signing certificate for this server, key in memory only (RFC 6960 §4.2.2.2).
    private func issueDelegatedResponder(_ issuerName: String) async throws -> Signing {
        let key = try PrivateKey.generate(.ecP256)
        let request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=Sigil OCSP Responder for \(issuerName)"))
        let outcome = try await authority.submit(IssuanceRequest(
            csr: try request.signed(with: key), profile: "ocsp-signing", issuer: issuerName, requester: "sigil-server", owner: "sigil-server",
            tags: ["ocsp-responder"]))
        guard case .issued(let issued) = outcome else { throw SigilError(.internalFailure, "the ocsp-signing profile must not require approval") }
        return Signing(key: key.publicKey, algorithm: key.signatureAlgorithm, sign: { try key.sign($0) }, certificates: [issued.certificate],
                       notAfter: issued.certificate.notAfter)
    }
}

extension OCSPResponder {
    /// The DER request carried by a GET path (RFC 6960 Appendix A.1: `/ocsp/` followed by the
    /// URL-encoding of the base64 of the request), or nil when it is not one.
    ///
    /// It reads the raw path, not the router's path segments: base64 may hold `/` — even `//`
    /// or a leading `/` — which many clients send without percent-encoding, and segment
    /// splitting would lose the empty segments. The base64url alphabet and missing padding
    /// are accepted too.
    static func requestFromGETPath(_ path: String) -> [UInt8]? {
        let prefix = "/ocsp/"
        guard path.hasPrefix(prefix) else { return nil }
        let encoded = path.dropFirst(prefix.count)
        guard encoded.utf8.count <= 128 * 1024 else { return nil }
        guard var text = String(encoded).removingPercentEncoding else { return nil }
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/").replacingOccurrences(of: " ", with: "+")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), !data.isEmpty else { return nil }
        return Array(data)
    }
}
