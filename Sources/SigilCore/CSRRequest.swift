import Foundation
import SwiftASN1
import X509

/// What an applicant asks for: the subject, names and usages to put in a request.
///
/// `signed(with:)` turns it into a `CertificationRequest`; the value itself holds
/// no key, so a template can check it before anything is generated or written.
public struct CSRRequest: Sendable {
    public var subject: DistinguishedName
    public var subjectAltNames: [SubjectAltName]
    public var keyUsage: KeyUsage?
    public var extendedKeyUsage: [ExtendedKeyUsage.Usage]
    public var challengePassword: String?

    public init(
        subject: DistinguishedName = DistinguishedName(), subjectAltNames: [SubjectAltName] = [],
        keyUsage: KeyUsage? = nil, extendedKeyUsage: [ExtendedKeyUsage.Usage] = [], challengePassword: String? = nil
    ) {
        self.subject = subject
        self.subjectAltNames = subjectAltNames
        self.keyUsage = keyUsage
        self.extendedKeyUsage = extendedKeyUsage
        self.challengePassword = challengePassword
    }

    /// Adds a host-name or IP common name to the SANs when it is not there yet:
    /// RFC 6125 §6.4.4 and the Baseline Requirements make the SAN authoritative,
    /// so a CN that is not also a SAN is ignored by clients and refused by CAs.
    public mutating func addCommonNameToSubjectAltNames() {
        guard let cn = subject.values(of: .commonName).first else { return }
        let entry: SubjectAltName
        if let ip = NameRules.parseIPAddress(cn) {
            entry = .ip(ip)
        } else if NameRules.looksLikeDNSName(cn) {
            entry = .dns(cn.lowercased())
        } else {
            return
        }
        if !subjectAltNames.contains(entry) { subjectAltNames.insert(entry, at: 0) }
    }

    /// The extensions this request asks for: SAN (critical when the subject is
    /// empty, RFC 5280 §4.2.1.6), key usage (critical, §4.2.1.3), extended key usage.
    public func requestedExtensions() throws -> Certificate.Extensions {
        var extensions = Certificate.Extensions()
        let names = subjectAltNames.compactMap(\.generalName)
        if !names.isEmpty {
            try extensions.append(Certificate.Extension(SubjectAlternativeNames(names), critical: subject.isEmpty))
        }
        if let keyUsage {
            try extensions.append(Certificate.Extension(keyUsage, critical: true))
        }
        if !extendedKeyUsage.isEmpty {
            try extensions.append(Certificate.Extension(ExtendedKeyUsage(extendedKeyUsage), critical: false))
        }
        return extensions
    }

    /// The DER CertificationRequestInfo for `publicKey`.
    public func infoDER(publicKey: PublicKey) throws -> [UInt8] {
        var attributes: [CertificateSigningRequest.Attribute] = []
        if let challengePassword {
            let value = try ASN1Any(erasing: ASN1UTF8String(challengePassword))
            attributes.append(CertificateSigningRequest.Attribute(oid: OID.challengePassword, values: [value]))
        }
        let extensions = try requestedExtensions()
        if !extensions.isEmpty {
            attributes.append(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
        }
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(0)
            try coder.serialize(subject)
            coder.serializeRawBytes(publicKey.derBytes)
            try coder.serializeSetOf(attributes, identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
        }
        return coder.serializedBytes
    }

    /// Signs the request with `key` (proof of possession, RFC 2986 §3).
    public func signed(with key: PrivateKey) throws -> CertificationRequest {
        if case .rsa(let bits) = key.keyType, bits < KeyType.minimumRSABits {
            try KeyType.checkRSABits(bits)
        }
        let info = try infoDER(publicKey: key.publicKey)
        let algorithm = key.signatureAlgorithm
        let signature = try key.sign(info)
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(info)
            try coder.serialize(algorithm.algorithmIdentifier)
            try coder.serialize(ASN1BitString(bytes: signature[...]))
        }
        return try CertificationRequest(derEncoded: coder.serializedBytes)
    }
}
