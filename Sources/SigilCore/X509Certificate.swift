import Crypto
import Foundation
import SwiftASN1
import X509

/// An X.509 v3 certificate of any key and signature type, ML-DSA included.
///
/// ```
/// Certificate  ::=  SEQUENCE  {
///      tbsCertificate       TBSCertificate,
///      signatureAlgorithm   AlgorithmIdentifier,
///      signatureValue       BIT STRING  }
/// TBSCertificate  ::=  SEQUENCE  {
///      version         [0]  EXPLICIT Version DEFAULT v1,
///      serialNumber         CertificateSerialNumber,
///      signature            AlgorithmIdentifier,
///      issuer               Name,
///      validity             Validity,
///      subject              Name,
///      subjectPublicKeyInfo SubjectPublicKeyInfo,
///      issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
///      subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
///      extensions      [3]  EXPLICIT Extensions OPTIONAL }
/// ```
/// (RFC 5280 §4.1). swift-certificates' `Certificate` cannot hold ML-DSA keys or
/// signatures (1.21.1), so Sigil parses and builds certificates itself and uses
/// swift-certificates' names and extension types inside. The value keeps the
/// bytes it was parsed from; signatures are checked over `tbsBytes` as received.
public struct X509Certificate: Sendable {
    public let version: Int
    /// The serial number's content octets (big-endian, minimal, positive).
    public let serialNumber: [UInt8]
    public let innerSignatureAlgorithm: AlgorithmIdentifier
    public let issuer: DistinguishedName
    public let notBefore: Date
    public let notAfter: Date
    public let subject: DistinguishedName
    public let subjectPublicKeyInfo: [UInt8]
    public let publicKey: PublicKey?
    public let extensions: Certificate.Extensions
    public let signatureAlgorithmIdentifier: AlgorithmIdentifier
    public let signature: [UInt8]
    public let tbsBytes: [UInt8]
    public let derBytes: [UInt8]

    public var signatureAlgorithm: SignatureAlgorithm { SignatureAlgorithm(signatureAlgorithmIdentifier) }

    public init(derEncoded bytes: [UInt8]) throws {
        do {
            let root = try DER.parse(bytes)
            guard root.encodedBytes.count == bytes.count else { throw SigilError.badInput("trailing bytes after the certificate") }
            var fields: (Int, [UInt8], AlgorithmIdentifier, DistinguishedName, Date, Date, DistinguishedName, [UInt8], [Certificate.Extension])!
            var outer: (AlgorithmIdentifier, [UInt8], [UInt8])!
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbs = nodes.next() else { throw SigilError.badInput("empty certificate") }
                fields = try DER.sequence(tbs, identifier: .sequence) { nodes in
                    let version = try DER.decodeDefaultExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific, defaultValue: 0)
                    let serial = try ArraySlice<UInt8>(derEncoded: &nodes)
                    let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                    guard let issuerNode = nodes.next() else { throw SigilError.badInput("certificate has no issuer") }
                    let issuer = try DistinguishedName(derEncoded: issuerNode)
                    let (notBefore, notAfter) = try DER.sequence(try nodes.nextNode(), identifier: .sequence) { validity in
                        (try ASN1Time.parse(try validity.nextNode()), try ASN1Time.parse(try validity.nextNode()))
                    }
                    let subject = try DistinguishedName(derEncoded: try nodes.nextNode())
                    let spki = try nodes.nextNode()
                    guard spki.identifier == .sequence else { throw SigilError.badInput("certificate has no SubjectPublicKeyInfo") }
                    var extensions: [Certificate.Extension] = []
                    while let node = nodes.next() {
                        guard node.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) else { continue }
                        extensions = try DER.explicitlyTagged(node, tagNumber: 3, tagClass: .contextSpecific) { inner in
                            try DER.elements(of: inner).map(X509Certificate.parseExtension)
                        }
                    }
                    return (version, Array(serial), algorithm, issuer, notBefore, notAfter, subject, Array(spki.encodedBytes), extensions)
                }
                let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                let signature = try ASN1BitString(derEncoded: &nodes)
                guard nodes.next() == nil else { throw SigilError.badInput("unexpected fields after the signature") }
                outer = (algorithm, Array(signature.bytes), Array(tbs.encodedBytes))
            }
            (version, serialNumber, innerSignatureAlgorithm, issuer, notBefore, notAfter, subject, subjectPublicKeyInfo, _) = fields
            extensions = try Certificate.Extensions(fields.8)
            (signatureAlgorithmIdentifier, signature, tbsBytes) = outer
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed certificate: \(ASN1ErrorText.describe(error))")
        }
        publicKey = try? PublicKey(spkiDER: subjectPublicKeyInfo)
        derBytes = bytes
    }

    /// ```
    /// Extension  ::=  SEQUENCE  {
    ///      extnID      OBJECT IDENTIFIER,
    ///      critical    BOOLEAN DEFAULT FALSE,
    ///      extnValue   OCTET STRING }
    /// ```
    static func parseExtension(_ node: ASN1Node) throws -> Certificate.Extension {
        try DER.sequence(node, identifier: .sequence) { nodes in
            let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
            let critical = try DER.decodeDefault(&nodes, defaultValue: false)
            let value = try ASN1OctetString(derEncoded: &nodes)
            return Certificate.Extension(oid: oid, critical: critical, value: value.bytes)
        }
    }

    static func serializeExtension(_ ext: Certificate.Extension, into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(ext.oid)
            if ext.critical { try coder.serialize(true) }
            try coder.serialize(ASN1OctetString(contentBytes: ext.value))
        }
    }

    /// The first certificate in PEM text, or DER.
    public init(pemOrDER bytes: [UInt8], source: String = "input") throws {
        do {
            if PEM.looksLikePEM(bytes) {
                guard let block = try PEM.parse(String(decoding: bytes, as: UTF8.self), source: source).first(where: { $0.label == "CERTIFICATE" }) else {
                    throw SigilError.badInput("\(source): no CERTIFICATE block")
                }
                try self.init(derEncoded: block.derBytes)
            } else {
                try self.init(derEncoded: bytes)
            }
        } catch var error as SigilError {
            if !error.message.hasPrefix(source) { error.message = "\(source): " + error.message }
            throw error
        }
    }

    /// Every CERTIFICATE block in a PEM text, in order.
    public static func parseChain(pem text: String, source: String = "input") throws -> [X509Certificate] {
        try PEM.parse(text, source: source).filter { $0.label == "CERTIFICATE" }.map { try X509Certificate(derEncoded: $0.derBytes) }
    }

    public var pemString: String { PEM.encode(label: "CERTIFICATE", der: derBytes) }
    /// Lowercase hex of the serial number.
    public var serialHex: String { Hex.encode(serialNumber) }
    /// SHA-256 over the DER certificate, lowercase hex.
    public var sha256Fingerprint: String { Hex.encode(SHA256.hash(data: derBytes)) }

    /// True when `issuerKey` made this certificate's signature.
    public func isSigned(by issuerKey: PublicKey) -> Bool {
        issuerKey.isValidSignature(signature, for: tbsBytes, algorithm: signatureAlgorithm)
    }

    public var isSelfIssued: Bool { issuer == subject }

    public var isCertificateAuthority: Bool {
        if case .isCertificateAuthority = (try? extensions.basicConstraints) ?? nil { return true }
        return false
    }

    public var subjectAltNames: [SubjectAltName] {
        ((try? extensions.subjectAlternativeNames) ?? nil).map { $0.map(SubjectAltName.init) } ?? []
    }

    public var subjectKeyIdentifier: [UInt8]? {
        ((try? extensions.subjectKeyIdentifier) ?? nil).map { Array($0.keyIdentifier) }
    }

    public var authorityKeyIdentifier: [UInt8]? {
        ((try? extensions.authorityKeyIdentifier) ?? nil)?.keyIdentifier.map(Array.init)
    }

    /// The names the certificate vouches for: SANs, else a host-like CN.
    public var names: [String] {
        let sans = subjectAltNames.map(\.value)
        if !sans.isEmpty { return sans }
        return subject.values(of: .commonName)
    }
}

extension ASN1NodeCollection.Iterator {
    mutating func nextNode() throws -> ASN1Node {
        guard let node = next() else { throw SigilError.badInput("a required field is missing") }
        return node
    }
}

/// Builds and signs a certificate. The builder decides nothing: profiles and
/// policy choose every field; this only encodes them (RFC 5280 §4.1).
public struct CertificateBuilder: Sendable {
    public var serialNumber: [UInt8]
    public var issuer: DistinguishedName
    public var subject: DistinguishedName
    public var notBefore: Date
    public var notAfter: Date
    public var publicKey: PublicKey
    public var extensions: [Certificate.Extension]

    public init(serialNumber: [UInt8], issuer: DistinguishedName, subject: DistinguishedName, notBefore: Date, notAfter: Date,
                publicKey: PublicKey, extensions: [Certificate.Extension]) {
        self.serialNumber = serialNumber
        self.issuer = issuer
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.publicKey = publicKey
        self.extensions = extensions
    }

    public func tbsDER(signatureAlgorithm: SignatureAlgorithm) throws -> [UInt8] {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in try coder.serialize(2) }
            try coder.serialize(ArraySlice(serialNumber))
            try coder.serialize(signatureAlgorithm.algorithmIdentifier)
            try coder.serialize(issuer)
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try ASN1Time.serialize(notBefore, into: &coder)
                try ASN1Time.serialize(notAfter, into: &coder)
            }
            try coder.serialize(subject)
            coder.serializeRawBytes(publicKey.derBytes)
            if !extensions.isEmpty {
                try coder.serialize(explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        for ext in extensions { try X509Certificate.serializeExtension(ext, into: &coder) }
                    }
                }
            }
        }
        return coder.serializedBytes
    }

    /// Signs with `issuerKey` using its default algorithm and returns the parsed result.
    public func sign(with issuerKey: PrivateKey) throws -> X509Certificate {
        try sign(algorithm: issuerKey.signatureAlgorithm, using: issuerKey.sign)
    }

    /// Signs the TBS with `sign`, which must produce an `algorithm` signature.
    public func sign(algorithm: SignatureAlgorithm, using sign: ([UInt8]) throws -> [UInt8]) throws -> X509Certificate {
        let tbs = try tbsDER(signatureAlgorithm: algorithm)
        let signature = try sign(tbs)
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbs)
            try coder.serialize(algorithm.algorithmIdentifier)
            try coder.serialize(ASN1BitString(bytes: signature[...]))
        }
        return try X509Certificate(derEncoded: coder.serializedBytes)
    }
}

/// Certificate serial numbers (RFC 5280 §4.1.2.2, BR §7.1): positive, at most 20
/// octets, and here 128 bits from the system CSPRNG with the top bit cleared, so
/// 127 bits of entropy (the Baseline Requirements ask for 64).
public enum SerialNumber {
    public static func random<R: RandomNumberGenerator>(using rng: inout R) -> [UInt8] {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[0] &= 0x7f
        // Keep 16 octets so every serial has the same length; a zero first octet
        // would be stripped by DER's minimal-integer rule.
        if bytes[0] == 0 { bytes[0] = 0x01 }
        return bytes
    }

    public static func random() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return random(using: &rng)
    }

    /// Subject / authority key identifier: RFC 7093 §2 method 1, the leftmost
    /// 160 bits of the SHA-256 of the subjectPublicKey bits.
    public static func keyIdentifier(for key: PublicKey) -> [UInt8] {
        Array(SHA256.hash(data: key.subjectPublicKeyBytes).prefix(20))
    }
}
