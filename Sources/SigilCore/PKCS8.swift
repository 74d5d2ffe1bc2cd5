import SwiftASN1

/// A PKCS #8 / RFC 5958 private key container.
///
/// ```
/// OneAsymmetricKey ::= SEQUENCE {
///   version                   Version,            -- v1(0) or v2(1)
///   privateKeyAlgorithm       PrivateKeyAlgorithmIdentifier,
///   privateKey                PrivateKey,         -- OCTET STRING
///   attributes            [0] Attributes OPTIONAL,
///   ...,
///   [[2: publicKey        [1] PublicKey OPTIONAL ]],
///   ...
/// }
/// ```
/// Attributes and the optional public key are accepted when read and never written.
public struct PKCS8PrivateKeyInfo: DERImplicitlyTaggable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    public var algorithm: AlgorithmIdentifier
    /// The contents of the privateKey OCTET STRING, whose format the algorithm defines.
    public var privateKey: [UInt8]

    public init(algorithm: AlgorithmIdentifier, privateKey: [UInt8]) {
        self.algorithm = algorithm
        self.privateKey = privateKey
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let version = try Int(derEncoded: &nodes)
            guard version == 0 || version == 1 else {
                throw SigilError.badInput("unsupported PKCS#8 version \(version)")
            }
            let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
            let key = try ASN1OctetString(derEncoded: &nodes)
            // Attributes [0] and publicKey [1] may follow; they carry nothing Sigil needs.
            while nodes.next() != nil {}
            return PKCS8PrivateKeyInfo(algorithm: algorithm, privateKey: Array(key.bytes))
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(0)
            try coder.serialize(algorithm)
            try coder.serialize(ASN1OctetString(contentBytes: privateKey[...]))
        }
    }
}
