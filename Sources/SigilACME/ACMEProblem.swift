import Foundation
import SigilStore

/// An ACME error (RFC 8555 §6.7): a problem document of type
/// `urn:ietf:params:acme:error:<type>` with an HTTP status, and per-identifier subproblems (§6.7.1).
public struct ACMEProblem: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case accountDoesNotExist, alreadyRevoked, badCSR, badNonce, badPublicKey, badRevocationReason, badSignatureAlgorithm,
             caa, compound, connection, dns, externalAccountRequired, incorrectResponse, invalidContact, malformed,
             orderNotReady, rateLimited, rejectedIdentifier, serverInternal, tls, unauthorized, unsupportedContact,
             unsupportedIdentifier, userActionRequired
        /// RFC 9773 §7.4 (ACME Renewal Information): the certificate was already replaced.
        case alreadyReplaced
        /// draft-ietf-acme-profiles: the requested profile is not offered.
        case invalidProfile

        /// The HTTP status each type is answered with.
        public var status: Int {
            switch self {
            case .accountDoesNotExist, .alreadyRevoked, .badCSR, .badPublicKey, .badRevocationReason, .badSignatureAlgorithm,
                 .invalidContact, .malformed, .rejectedIdentifier, .unsupportedContact, .unsupportedIdentifier, .badNonce,
                 .invalidProfile, .compound, .caa, .connection, .dns, .incorrectResponse, .tls:
                return 400
            case .unauthorized, .externalAccountRequired, .userActionRequired: return 403
            case .orderNotReady: return 403
            case .alreadyReplaced: return 409
            case .rateLimited: return 429
            case .serverInternal: return 500
            }
        }
    }

    public var kind: Kind
    public var detail: String
    public var status: Int
    public var subproblems: [ACMEStoredSubproblem]
    /// For `badSignatureAlgorithm`: the algorithms the server accepts (RFC 8555 §6.2).
    public var algorithms: [String]?
    /// For `rateLimited`: seconds until the client may try again.
    public var retryAfter: Int?
    /// For a key change onto a key another account holds (RFC 8555 §7.3.5): that account's URL.
    public var location: String?
    /// For 405: the methods the resource allows.
    public var allow: String?

    public init(_ kind: Kind, _ detail: String, status: Int? = nil, subproblems: [ACMEStoredSubproblem] = [], algorithms: [String]? = nil, retryAfter: Int? = nil) {
        self.kind = kind
        self.detail = detail
        self.status = status ?? kind.status
        self.subproblems = subproblems
        self.algorithms = algorithms
        self.retryAfter = retryAfter
    }

    public var type: String { "urn:ietf:params:acme:error:\(kind.rawValue)" }
    public var description: String { "\(kind.rawValue): \(detail)" }

    public var stored: ACMEStoredProblem { ACMEStoredProblem(type: type, detail: detail, status: status, subproblems: subproblems) }

    /// The problem document (RFC 7807 / RFC 9457) as a JSON object.
    public var json: [String: Any] {
        var object: [String: Any] = ["type": type, "detail": detail, "status": status]
        if !subproblems.isEmpty { object["subproblems"] = subproblems.map(\.json) }
        if let algorithms { object["algorithms"] = algorithms }
        return object
    }
}

extension ACMEStoredProblem {
    public var json: [String: Any] {
        var object: [String: Any] = ["type": type, "detail": detail, "status": status]
        if !subproblems.isEmpty { object["subproblems"] = subproblems.map(\.json) }
        return object
    }
}

extension ACMEStoredSubproblem {
    public var json: [String: Any] {
        var object: [String: Any] = ["type": type, "detail": detail]
        if let identifier { object["identifier"] = ["type": identifier.type, "value": identifier.value] }
        return object
    }
}
