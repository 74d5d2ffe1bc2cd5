import Crypto
import Foundation
import SwiftASN1
import X509

/// One revoked certificate as it goes into a CRL.
public struct CRLEntry: Sendable, Equatable {
    /// Serial number content octets, big-endian, as in the certificate.
    public var serial: [UInt8]
    public var revocationDate: Date
    public var reason: RevocationReason?
    public var invalidityDate: Date?

    public init(serial: [UInt8], revocationDate: Date, reason: RevocationReason?, invalidityDate: Date? = nil) {
        self.serial = serial
        self.revocationDate = revocationDate
        self.reason = reason
        self.invalidityDate = invalidityDate
    }
}

/// Builds a v2 CRL (RFC 5280 §5) in one pass, in memory proportional to the
/// output: entries are appended as DER as they arrive, so a million entries
/// never exist as a million Swift values at once.
///
/// ```
/// CertificateList  ::=  SEQUENCE  {
///      tbsCertList          TBSCertList,
///      signatureAlgorithm   AlgorithmIdentifier,
///      signatureValue       BIT STRING  }
/// TBSCertList  ::=  SEQUENCE  {
///      version                 Version OPTIONAL,   -- v2
///      signature               AlgorithmIdentifier,
///      issuer                  Name,
///      thisUpdate              Time,
///      nextUpdate              Time OPTIONAL,
///      revokedCertificates     SEQUENCE OF SEQUENCE  {
///           userCertificate         CertificateSerialNumber,
///           revocationDate          Time,
///           crlEntryExtensions      Extensions OPTIONAL } OPTIONAL,
///      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL }
/// ```
public struct CRLBuilder: Sendable {
    public static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    public static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]
    public static let invalidityDateOID: ASN1ObjectIdentifier = [2, 5, 29, 24]
    public static let issuingDistributionPointOID: ASN1ObjectIdentifier = [2, 5, 29, 28]

    public var issuer: DistinguishedName
    public var thisUpdate: Date
    public var nextUpdate: Date
    public var crlNumber: Int64
    public var authorityKeyIdentifier: [UInt8]
    /// The URL certificates carry in their CRL distribution point; written into
    /// the issuing distribution point so the CRL's scope matches (RFC 5280 §5.2.5).
    public var distributionPoint: String?

    private var entries: [UInt8] = []
    public private(set) var count = 0

    public init(issuer: DistinguishedName, thisUpdate: Date, nextUpdate: Date, crlNumber: Int64, authorityKeyIdentifier: [UInt8],
                distributionPoint: String?) {
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.crlNumber = crlNumber
        self.authorityKeyIdentifier = authorityKeyIdentifier
        self.distributionPoint = distributionPoint
    }

    public mutating func reserve(entries expected: Int) {
        entries.reserveCapacity(expected * 40)
    }

    /// Appends one entry. Reason `unspecified` is left out, as RFC 5280 §5.3.1 asks;
    /// `removeFromCRL` belongs only in delta CRLs and is refused.
    public mutating func append(_ entry: CRLEntry) throws {
        guard entry.reason != .removeFromCRL else { throw SigilError.badInput("removeFromCRL appears only in delta CRLs") }
        var body: [UInt8] = []
        body.reserveCapacity(64)
        DERWriter.integer(entry.serial, into: &body)
        DERWriter.time(entry.revocationDate, into: &body)
        var extensions: [UInt8] = []
        if let reason = entry.reason, reason != .unspecified {
            // Extension { reasonCode, OCTET STRING { ENUMERATED } }
            DERWriter.extensionHeader(oid: CRLBuilder.reasonCodeOIDBytes, critical: false, value: [0x0a, 0x01, UInt8(reason.rawValue)], into: &extensions)
        }
        if let invalidity = entry.invalidityDate {
            var value: [UInt8] = []
            DERWriter.generalizedTime(invalidity, into: &value)
            DERWriter.extensionHeader(oid: CRLBuilder.invalidityDateOIDBytes, critical: false, value: value, into: &extensions)
        }
        if !extensions.isEmpty { DERWriter.tlv(0x30, extensions, into: &body) }
        DERWriter.tlv(0x30, body, into: &entries)
        count += 1
    }

    static let reasonCodeOIDBytes = DERWriter.oidBytes(reasonCodeOID)
    static let invalidityDateOIDBytes = DERWriter.oidBytes(invalidityDateOID)

    /// The DER TBSCertList for `algorithm`.
    public func tbsDER(signatureAlgorithm algorithm: SignatureAlgorithm) throws -> [UInt8] {
        var head = DER.Serializer()
        try head.serialize(1)
        try head.serialize(algorithm.algorithmIdentifier)
        try head.serialize(issuer)
        try ASN1Time.serialize(thisUpdate, into: &head)
        try ASN1Time.serialize(nextUpdate, into: &head)
        var tail = DER.Serializer()
        try tail.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try X509Certificate.serializeExtension(
                    try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: authorityKeyIdentifier[...]), critical: false), into: &coder)
                var number = DER.Serializer()
                try number.serialize(crlNumber)
                try X509Certificate.serializeExtension(Certificate.Extension(oid: CRLBuilder.crlNumberOID, critical: false, value: number.serializedBytes[...]), into: &coder)
                if let distributionPoint {
                    // IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
                    var idp = DER.Serializer()
                    try idp.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                                try coder.serialize(GeneralName.uniformResourceIdentifier(distributionPoint))
                            }
                        }
                    }
                    // RFC 5280 §5.2.5: the extension is critical.
                    try X509Certificate.serializeExtension(Certificate.Extension(oid: CRLBuilder.issuingDistributionPointOID, critical: true, value: idp.serializedBytes[...]), into: &coder)
                }
            }
        }
        var body = head.serializedBytes
        body.reserveCapacity(body.count + entries.count + tail.serializedBytes.count + 8)
        if count > 0 { DERWriter.tlv(0x30, entries, into: &body) }
        body += tail.serializedBytes
        var tbs: [UInt8] = []
        tbs.reserveCapacity(body.count + 6)
        DERWriter.tlv(0x30, body, into: &tbs)
        return tbs
    }

    /// Signs and returns the DER CRL.
    public func sign(algorithm: SignatureAlgorithm, using sign: ([UInt8]) throws -> [UInt8]) throws -> [UInt8] {
        let tbs = try tbsDER(signatureAlgorithm: algorithm)
        let signature = try sign(tbs)
        var tail = DER.Serializer()
        try tail.serialize(algorithm.algorithmIdentifier)
        try tail.serialize(ASN1BitString(bytes: signature[...]))
        var body = tbs
        body += tail.serializedBytes
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 6)
        DERWriter.tlv(0x30, body, into: &out)
        return out
    }
}

/// Hand-written DER for the hot paths (CRL entries, OCSP single responses),
/// where building swift-asn1 nodes per element would dominate the cost.
enum DERWriter {
    static func length(_ count: Int, into out: inout [UInt8]) {
        if count < 0x80 {
            out.append(UInt8(count))
        } else {
            var bytes: [UInt8] = []
            var n = count
            while n > 0 { bytes.insert(UInt8(n & 0xff), at: 0); n >>= 8 }
            out.append(0x80 | UInt8(bytes.count))
            out += bytes
        }
    }

    static func tlv(_ tag: UInt8, _ content: [UInt8], into out: inout [UInt8]) {
        out.append(tag)
        length(content.count, into: &out)
        out += content
    }

    /// A positive INTEGER from big-endian magnitude bytes (minimal encoding).
    static func integer(_ magnitude: [UInt8], into out: inout [UInt8]) {
        var bytes = ArraySlice(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        out.append(0x02)
        if bytes.first! & 0x80 != 0 {
            length(bytes.count + 1, into: &out)
            out.append(0)
        } else {
            length(bytes.count, into: &out)
        }
        out += bytes
    }

    static func time(_ date: Date, into out: inout [UInt8]) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let (y, mo, d, h, mi, s) = civil(seconds)
        if y >= 1950 && y <= 2049 {
            out.append(0x17)
            out.append(13)
            digits(y % 100, 2, &out)
        } else {
            out.append(0x18)
            out.append(15)
            digits(y, 4, &out)
        }
        digits(mo, 2, &out); digits(d, 2, &out); digits(h, 2, &out); digits(mi, 2, &out); digits(s, 2, &out)
        out.append(UInt8(ascii: "Z"))
    }

    static func generalizedTime(_ date: Date, into out: inout [UInt8]) {
        let (y, mo, d, h, mi, s) = civil(Int64(date.timeIntervalSince1970.rounded(.down)))
        out.append(0x18)
        out.append(15)
        digits(y, 4, &out); digits(mo, 2, &out); digits(d, 2, &out); digits(h, 2, &out); digits(mi, 2, &out); digits(s, 2, &out)
        out.append(UInt8(ascii: "Z"))
    }

    private static func digits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var v = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8((v / divisor) % 10))
            v %= divisor
            divisor /= 10
        }
    }

    /// Days-from-civil inverse (Howard Hinnant's algorithm), UTC.
    static func civil(_ seconds: Int64) -> (Int, Int, Int, Int, Int, Int) {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let secondsOfDay = Int(seconds - Int64(days) * 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secondsOfDay / 3600, (secondsOfDay % 3600) / 60, secondsOfDay % 60)
    }

    static func oidBytes(_ oid: ASN1ObjectIdentifier) -> [UInt8] {
        var coder = DER.Serializer()
        try! coder.serialize(oid)
        return coder.serializedBytes
    }

    /// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    static func extensionHeader(oid: [UInt8], critical: Bool, value: [UInt8], into out: inout [UInt8]) {
        var body = oid
        if critical { body += [0x01, 0x01, 0xff] }
        tlv(0x04, value, into: &body)
        tlv(0x30, body, into: &out)
    }
}
