import Foundation
import SwiftASN1
import X509

/// A PKCS #10 certificate signing request of any key type, ML-DSA included.
///
/// ```
/// CertificationRequest ::= SEQUENCE {
///      certificationRequestInfo CertificationRequestInfo,
///      signatureAlgorithm       AlgorithmIdentifier,
///      signature                BIT STRING }
/// CertificationRequestInfo ::= SEQUENCE {
///      version       INTEGER { v1(0) },
///      subject       Name,
///      subjectPKInfo SubjectPublicKeyInfo,
///      attributes    [0] IMPLICIT SET OF Attribute }
/// ```
/// (RFC 2986 §4). swift-certificates' `CertificateSigningRequest` cannot carry
/// ML-DSA keys or signatures (1.21.1), so Sigil codes the outer structure itself
/// and reuses swift-certificates' name, attribute and extension types inside.
/// The value keeps the exact bytes it was parsed from: the signature is checked
/// over `infoBytes` as received, never over a re-encoding.
public struct CertificationRequest: Sendable {
    public let version: Int
    public let subject: DistinguishedName
    /// The DER SubjectPublicKeyInfo as received.
    public let subjectPublicKeyInfo: [UInt8]
    /// The public key, or nil when its algorithm is not one Sigil supports
    /// (`publicKeyProblem` then says why).
    public let publicKey: PublicKey?
    public let publicKeyProblem: String?
    public let attributes: [CertificateSigningRequest.Attribute]
    public let signatureAlgorithmIdentifier: AlgorithmIdentifier
    public let signature: [UInt8]
    /// The DER CertificationRequestInfo: what the signature covers.
    public let infoBytes: [UInt8]
    /// The whole request, DER.
    public let derBytes: [UInt8]

    public var signatureAlgorithm: SignatureAlgorithm { SignatureAlgorithm(signatureAlgorithmIdentifier) }

    /// Parses DER. Throws `.badInput` naming what is malformed.
    public init(derEncoded bytes: [UInt8]) throws {
        do {
            let root = try DER.parse(bytes)
            guard root.encodedBytes.count == bytes.count else {
                throw SigilError.badInput("trailing bytes after the certificate request")
            }
            var parsed: (Int, DistinguishedName, [UInt8], [CertificateSigningRequest.Attribute], [UInt8], AlgorithmIdentifier, [UInt8])!
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let infoNode = nodes.next() else { throw SigilError.badInput("empty certificate request") }
                let (version, subject, spki, attributes) = try DER.sequence(infoNode, identifier: .sequence) { info in
                    let version = try Int(derEncoded: &info)
                    guard let subjectNode = info.next() else { throw SigilError.badInput("certificate request has no subject") }
                    let subject = try DistinguishedName(derEncoded: subjectNode)
                    guard let spkiNode = info.next(), spkiNode.identifier == .sequence else {
                        throw SigilError.badInput("certificate request has no SubjectPublicKeyInfo")
                    }
                    let attributes: [CertificateSigningRequest.Attribute]
                    // RFC 2986 makes the attributes field mandatory; some encoders omit it when empty.
                    if let attributesNode = info.next() {
                        attributes = try DER.set(
                            attributesNode, identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                        ) { items in
                            var out: [CertificateSigningRequest.Attribute] = []
                            while let item = items.next() { out.append(try CertificateSigningRequest.Attribute(derEncoded: item)) }
                            return out
                        }
                    } else {
                        attributes = []
                    }
                    guard info.next() == nil else { throw SigilError.badInput("unexpected fields after the request attributes") }
                    return (version, subject, Array(spkiNode.encodedBytes), attributes)
                }
                let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                let signature = try ASN1BitString(derEncoded: &nodes)
                guard signature.paddingBits == 0 else { throw SigilError.badInput("signature BIT STRING has padding bits") }
                guard nodes.next() == nil else { throw SigilError.badInput("unexpected fields after the signature") }
                parsed = (version, subject, spki, attributes, Array(infoNode.encodedBytes), algorithm, Array(signature.bytes))
            }
            (version, subject, subjectPublicKeyInfo, attributes, infoBytes, signatureAlgorithmIdentifier, signature) = parsed
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed certificate request: \(ASN1ErrorText.describe(error))")
        }
        guard version == 0 else { throw SigilError.badInput("unsupported certificate request version \(version + 1) (only v1 exists)") }
        do {
            publicKey = try PublicKey(spkiDER: subjectPublicKeyInfo)
            publicKeyProblem = nil
        } catch let error as SigilError {
            publicKey = nil
            publicKeyProblem = error.message
        }
        derBytes = bytes
    }

    /// Parses PEM (`CERTIFICATE REQUEST` or the older `NEW CERTIFICATE REQUEST`) or DER.
    public init(pemOrDER bytes: [UInt8], source: String = "input") throws {
        do {
            if PEM.looksLikePEM(bytes) {
                guard let text = String(bytes: bytes, encoding: .utf8) else { throw SigilError.badInput("not valid UTF-8 text") }
                let blocks = try PEM.parse(text, source: source)
                guard let block = blocks.first(where: { $0.label == "CERTIFICATE REQUEST" || $0.label == "NEW CERTIFICATE REQUEST" }) else {
                    throw SigilError.badInput("\(source): holds \(blocks.map(\.label).joined(separator: ", ")), not a CERTIFICATE REQUEST")
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

    public var pemString: String { PEM.encode(label: "CERTIFICATE REQUEST", der: derBytes) }

    /// Proof of possession: the request is signed by the key it names.
    public var isSignatureValid: Bool {
        guard let publicKey else { return false }
        return publicKey.isValidSignature(signature, for: infoBytes, algorithm: signatureAlgorithm)
    }

    /// The extensions asked for in a PKCS #9 extensionRequest attribute (RFC 2985 §5.4.2).
    public func requestedExtensions() throws -> Certificate.Extensions {
        guard let attribute = attributes.first(where: { $0.oid == OID.extensionRequest }) else { return Certificate.Extensions() }
        do {
            return try ExtensionRequest(attribute).extensions
        } catch {
            throw SigilError.badInput("malformed extensionRequest attribute: \(ASN1ErrorText.describe(error))")
        }
    }

    /// Subject alternative names from the requested extensions.
    public func subjectAltNames() throws -> [SubjectAltName] {
        guard let sans = try requestedExtensions().subjectAlternativeNames else { return [] }
        return sans.map(SubjectAltName.init)
    }

    /// The PKCS #9 challengePassword (RFC 2985 §5.4.1), if present.
    public var challengePassword: String? {
        guard let attribute = attributes.first(where: { $0.oid == OID.challengePassword }), let value = attribute.values.first else {
            return nil
        }
        return DirectoryStringText.decode(value)
    }
}

/// Text from a DirectoryString-like value of any string type.
enum DirectoryStringText {
    static func decode(_ value: ASN1Any) -> String? {
        if let s = try? ASN1UTF8String(asn1Any: value) { return String(s) }
        if let s = try? ASN1PrintableString(asn1Any: value) { return String(s) }
        if let s = try? ASN1IA5String(asn1Any: value) { return String(s) }
        if let s = try? ASN1TeletexString(asn1Any: value) { return String(decoding: s.bytes, as: UTF8.self) }
        if let s = try? ASN1BMPString(asn1Any: value) {
            let bytes = Array(s.bytes)
            var units: [UInt16] = []
            var i = 0
            while i + 1 < bytes.count { units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])); i += 2 }
            return String(decoding: units, as: UTF16.self)
        }
        return nil
    }
}
