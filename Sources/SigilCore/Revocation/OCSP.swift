import Crypto
import Foundation
import SwiftASN1
import X509

/// OCSP (RFC 6960) as the responder sees it: requests in, responses out.
public enum OCSP {
    /// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
    public static let basicResponseOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]
    /// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
    public static let nonceOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2]
    static let sha1OID: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let sha256OID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]

    /// OCSPResponseStatus (RFC 6960 §4.2.1).
    public enum ResponseStatus: UInt8, Sendable {
        case successful = 0, malformedRequest = 1, internalError = 2, tryLater = 3, sigRequired = 5, unauthorized = 6
    }

    public enum HashAlgorithm: Sendable, Hashable {
        case sha1, sha256

        var oid: ASN1ObjectIdentifier { self == .sha1 ? OCSP.sha1OID : OCSP.sha256OID }

        public func hash(_ bytes: [UInt8]) -> [UInt8] {
            self == .sha1 ? Array(Insecure.SHA1.hash(data: bytes)) : Array(SHA256.hash(data: bytes))
        }
    }

    /// ```
    /// CertID ::= SEQUENCE {
    ///     hashAlgorithm       AlgorithmIdentifier,
    ///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
    ///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
    ///     serialNumber        CertificateSerialNumber }
    /// ```
    /// `derBytes` are kept so the response repeats the CertID exactly as asked.
    public struct CertID: Sendable, Hashable {
        public var hashAlgorithm: HashAlgorithm
        public var issuerNameHash: [UInt8]
        public var issuerKeyHash: [UInt8]
        public var serialNumber: [UInt8]
        public var derBytes: [UInt8]
    }

    /// ```
    /// OCSPRequest ::= SEQUENCE {
    ///     tbsRequest              TBSRequest,
    ///     optionalSignature   [0] EXPLICIT Signature OPTIONAL }
    /// TBSRequest ::= SEQUENCE {
    ///     version             [0] EXPLICIT Version DEFAULT v1,
    ///     requestorName       [1] EXPLICIT GeneralName OPTIONAL,
    ///     requestList             SEQUENCE OF Request,
    ///     requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
    /// Request ::= SEQUENCE {
    ///     reqCert                     CertID,
    ///     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
    /// ```
    public struct Request: Sendable {
        public var certIDs: [CertID]
        /// The nonce extension's value (the OCTET STRING content), echoed back.
        public var nonce: [UInt8]?

        /// At most this many certificates per request; more is treated as abuse.
        public static let maximumCertificates = 64

        public init(derEncoded bytes: [UInt8]) throws {
            guard bytes.count <= 64 * 1024 else { throw SigilError.badInput("OCSP request too large") }
            do {
                let root = try DER.parse(bytes)
                guard root.encodedBytes.count == bytes.count else { throw SigilError.badInput("trailing bytes") }
                let outer = try DER.elements(of: root)
                guard let tbs = outer.first else { throw SigilError.badInput("empty OCSP request") }
                var fields = try DER.elements(of: tbs)
                if let first = fields.first, first.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    let version = try DER.explicitlyTagged(first, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    guard version == 0 else { throw SigilError.badInput("unsupported OCSP version") }
                    fields.removeFirst()
                }
                if let first = fields.first, first.identifier == ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) { fields.removeFirst() }
                guard let list = fields.first, list.identifier == .sequence else { throw SigilError.badInput("no request list") }
                fields.removeFirst()
                var ids: [CertID] = []
                for request in try DER.elements(of: list) {
                    let parts = try DER.elements(of: request)
                    guard let certID = parts.first else { throw SigilError.badInput("empty request") }
                    ids.append(try Request.parseCertID(certID))
                }
                guard !ids.isEmpty, ids.count <= Request.maximumCertificates else {
                    throw SigilError.badInput("an OCSP request must name 1 to \(Request.maximumCertificates) certificates")
                }
                certIDs = ids
                nonce = nil
                if let extensionsNode = fields.first, extensionsNode.identifier == ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific) {
                    let extensions = try DER.explicitlyTagged(extensionsNode, tagNumber: 2, tagClass: .contextSpecific) { inner in
                        try DER.elements(of: inner).map(X509Certificate.parseExtension)
                    }
                    if let nonceExtension = extensions.first(where: { $0.oid == OCSP.nonceOID }) {
                        // RFC 8954 §2.1: the nonce is an OCTET STRING of 1 to 32 octets.
                        let value = try ASN1OctetString(derEncoded: Array(nonceExtension.value))
                        guard (1...32).contains(value.bytes.count) else { throw SigilError.badInput("OCSP nonce must be 1 to 32 octets") }
                        nonce = Array(nonceExtension.value)
                    }
                }
            } catch let error as SigilError {
                throw error
            } catch {
                throw SigilError.badInput("malformed OCSP request: \(ASN1ErrorText.describe(error))")
            }
        }

        static func parseCertID(_ node: ASN1Node) throws -> CertID {
            let parts = try DER.elements(of: node)
            guard parts.count == 4 else { throw SigilError.badInput("CertID has four fields") }
            let algorithm = try AlgorithmIdentifier(derEncoded: parts[0])
            let hash: HashAlgorithm
            switch algorithm.algorithm {
            case OCSP.sha1OID: hash = .sha1
            case OCSP.sha256OID: hash = .sha256
            default: throw SigilError.badInput("unsupported CertID hash \(algorithm.algorithm)")
            }
            let nameHash = try ASN1OctetString(derEncoded: parts[1])
            let keyHash = try ASN1OctetString(derEncoded: parts[2])
            let serial = try ArraySlice<UInt8>(derEncoded: parts[3])
            return CertID(hashAlgorithm: hash, issuerNameHash: Array(nameHash.bytes), issuerKeyHash: Array(keyHash.bytes),
                          serialNumber: Array(serial.drop { $0 == 0 }), derBytes: Array(node.encodedBytes))
        }
    }

    /// CertStatus (RFC 6960 §4.2.1).
    public enum CertStatus: Sendable, Equatable {
        case good
        case revoked(at: Date, reason: RevocationReason?)
        case unknown
    }

    /// One SingleResponse, ready to sign.
    public struct SingleResponse: Sendable {
        public var certID: CertID
        public var status: CertStatus
        public var thisUpdate: Date
        public var nextUpdate: Date

        public init(certID: CertID, status: CertStatus, thisUpdate: Date, nextUpdate: Date) {
            self.certID = certID
            self.status = status
            self.thisUpdate = thisUpdate
            self.nextUpdate = nextUpdate
        }

        /// ```
        /// SingleResponse ::= SEQUENCE {
        ///    certID                       CertID,
        ///    certStatus                   CertStatus,
        ///    thisUpdate                   GeneralizedTime,
        ///    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
        ///    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
        /// CertStatus ::= CHOICE {
        ///     good        [0]     IMPLICIT NULL,
        ///     revoked     [1]     IMPLICIT RevokedInfo,
        ///     unknown     [2]     IMPLICIT UnknownInfo }
        /// RevokedInfo ::= SEQUENCE {
        ///     revocationTime              GeneralizedTime,
        ///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
        /// ```
        func der() -> [UInt8] {
            var body = certID.derBytes
            switch status {
            case .good: body += [0x80, 0x00]
            case .unknown: body += [0x82, 0x00]
            case .revoked(let at, let reason):
                var info: [UInt8] = []
                DERWriter.generalizedTime(at, into: &info)
                if let reason { DERWriter.tlv(0xa0, [0x0a, 0x01, UInt8(reason.rawValue)], into: &info) }
                DERWriter.tlv(0xa1, info, into: &body)
            }
            DERWriter.generalizedTime(thisUpdate, into: &body)
            var next: [UInt8] = []
            DERWriter.generalizedTime(nextUpdate, into: &next)
            DERWriter.tlv(0xa0, next, into: &body)
            var out: [UInt8] = []
            DERWriter.tlv(0x30, body, into: &out)
            return out
        }
    }

    /// A response with only a status (no responseBytes), for errors.
    public static func errorResponse(_ status: ResponseStatus) -> [UInt8] {
        [0x30, 0x03, 0x0a, 0x01, status.rawValue]
    }

    /// Builds and signs a successful response.
    ///
    /// ```
    /// BasicOCSPResponse ::= SEQUENCE {
    ///    tbsResponseData      ResponseData,
    ///    signatureAlgorithm   AlgorithmIdentifier,
    ///    signature            BIT STRING,
    ///    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    /// ResponseData ::= SEQUENCE {
    ///    version              [0] EXPLICIT Version DEFAULT v1,
    ///    responderID              ResponderID,          -- byKey [2] KeyHash (SHA-1 of the key bits)
    ///    producedAt               GeneralizedTime,
    ///    responses                SEQUENCE OF SingleResponse,
    ///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
    /// ```
    public static func signedResponse(
        responses: [SingleResponse], producedAt: Date, responderKey: PublicKey, nonce: [UInt8]?, responderCertificates: [X509Certificate],
        algorithm: SignatureAlgorithm, sign: ([UInt8]) throws -> [UInt8]
    ) throws -> [UInt8] {
        var data: [UInt8] = []
        // ResponderID byKey: SHA-1 of the subjectPublicKey bits (RFC 6960 §4.2.1).
        var keyHash: [UInt8] = []
        DERWriter.tlv(0x04, Array(Insecure.SHA1.hash(data: responderKey.subjectPublicKeyBytes)), into: &keyHash)
        DERWriter.tlv(0xa2, keyHash, into: &data)
        DERWriter.generalizedTime(producedAt, into: &data)
        var list: [UInt8] = []
        for response in responses { list += response.der() }
        DERWriter.tlv(0x30, list, into: &data)
        if let nonce {
            var extensions: [UInt8] = []
            DERWriter.extensionHeader(oid: DERWriter.oidBytes(OCSP.nonceOID), critical: false, value: nonce, into: &extensions)
            var wrapped: [UInt8] = []
            DERWriter.tlv(0x30, extensions, into: &wrapped)
            DERWriter.tlv(0xa1, wrapped, into: &data)
        }
        var tbs: [UInt8] = []
        DERWriter.tlv(0x30, data, into: &tbs)
        let signature = try sign(tbs)
        var tail = DER.Serializer()
        try tail.serialize(algorithm.algorithmIdentifier)
        try tail.serialize(ASN1BitString(bytes: signature[...]))
        var basic = tbs + tail.serializedBytes
        if !responderCertificates.isEmpty {
            var certs: [UInt8] = []
            for certificate in responderCertificates { certs += certificate.derBytes }
            var sequence: [UInt8] = []
            DERWriter.tlv(0x30, certs, into: &sequence)
            DERWriter.tlv(0xa0, sequence, into: &basic)
        }
        var basicDER: [UInt8] = []
        DERWriter.tlv(0x30, basic, into: &basicDER)
        // ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
        var responseBytes = DERWriter.oidBytes(OCSP.basicResponseOID)
        DERWriter.tlv(0x04, basicDER, into: &responseBytes)
        var wrappedBytes: [UInt8] = []
        DERWriter.tlv(0x30, responseBytes, into: &wrappedBytes)
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
        var body: [UInt8] = [0x0a, 0x01, ResponseStatus.successful.rawValue]
        DERWriter.tlv(0xa0, wrappedBytes, into: &body)
        var out: [UInt8] = []
        DERWriter.tlv(0x30, body, into: &out)
        return out
    }
}
