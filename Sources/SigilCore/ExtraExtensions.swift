import SwiftASN1
import X509

/// Extensions swift-certificates 1.21.1 does not model, coded by Sigil.
public enum ExtraExtensions {
    public static let crlDistributionPointsOID: ASN1ObjectIdentifier = [2, 5, 29, 31]
    public static let certificatePoliciesOID: ASN1ObjectIdentifier = [2, 5, 29, 32]
    public static let ocspNoCheckOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5]
    /// CA/Browser Forum reserved policy identifiers (BR §7.1.6.1).
    public static let domainValidatedPolicy: ASN1ObjectIdentifier = [2, 23, 140, 1, 2, 1]
    public static let organizationValidatedPolicy: ASN1ObjectIdentifier = [2, 23, 140, 1, 2, 2]
    public static let anyPolicy: ASN1ObjectIdentifier = [2, 5, 29, 32, 0]

    /// ```
    /// CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
    /// DistributionPoint ::= SEQUENCE {
    ///      distributionPoint       [0]     DistributionPointName OPTIONAL, ... }
    /// DistributionPointName ::= CHOICE {
    ///      fullName                [0]     GeneralNames, ... }
    /// ```
    /// (RFC 5280 §4.2.1.13): one distribution point per URL, each a fullName URI.
    public static func crlDistributionPoints(_ urls: [String]) throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            for url in urls {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                        try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                            try coder.serialize(GeneralName.uniformResourceIdentifier(url))
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: crlDistributionPointsOID, critical: false, value: coder.serializedBytes[...])
    }

    /// The fullName URIs of every distribution point.
    public static func crlDistributionPointURLs(_ ext: Certificate.Extension) throws -> [String] {
        let root = try DER.parse(ext.value)
        return try DER.elements(of: root).flatMap { point -> [String] in
            try DER.sequence(point, identifier: .sequence) { nodes in
                var urls: [String] = []
                while let node = nodes.next() {
                    guard node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific),
                          case .constructed(let names) = node.content else { continue }
                    for name in names where name.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                        guard case .constructed(let generalNames) = name.content else { continue }
                        for generalName in generalNames {
                            if case .uniformResourceIdentifier(let url) = try GeneralName(derEncoded: generalName) { urls.append(url) }
                        }
                    }
                }
                return urls
            }
        }
    }

    /// ```
    /// certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
    /// PolicyInformation ::= SEQUENCE {
    ///      policyIdentifier   CertPolicyId,
    ///      policyQualifiers   SEQUENCE SIZE (1..MAX) OF PolicyQualifierInfo OPTIONAL }
    /// ```
    /// (RFC 5280 §4.2.1.4); Sigil writes identifiers without qualifiers.
    public static func certificatePolicies(_ policies: [ASN1ObjectIdentifier]) throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            for policy in policies {
                try coder.appendConstructedNode(identifier: .sequence) { coder in try coder.serialize(policy) }
            }
        }
        return Certificate.Extension(oid: certificatePoliciesOID, critical: false, value: coder.serializedBytes[...])
    }

    public static func certificatePolicyIdentifiers(_ ext: Certificate.Extension) throws -> [ASN1ObjectIdentifier] {
        let root = try DER.parse(ext.value)
        return try DER.elements(of: root).map { info in
            try DER.sequence(info, identifier: .sequence) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                while nodes.next() != nil {}
                return oid
            }
        }
    }

    /// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): the extension value is NULL.
    public static func ocspNoCheck() -> Certificate.Extension {
        Certificate.Extension(oid: ocspNoCheckOID, critical: false, value: [0x05, 0x00])
    }
}
