import SwiftASN1

/// An X.509 AlgorithmIdentifier.
///
/// ```
/// AlgorithmIdentifier  ::=  SEQUENCE  {
///      algorithm               OBJECT IDENTIFIER,
///      parameters              ANY DEFINED BY algorithm OPTIONAL  }
/// ```
/// (RFC 5280 §4.1.1.2). swift-certificates keeps its own type internal, so Sigil
/// carries this one for the structures it codes itself (PKCS#8, PBES2, SPKI,
/// ML-DSA requests). `parameters` keeps the original bytes so re-encoding is exact.
public struct AlgorithmIdentifier: DERImplicitlyTaggable, Hashable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    public var algorithm: ASN1ObjectIdentifier
    public var parameters: ASN1Any?

    public init(algorithm: ASN1ObjectIdentifier, parameters: ASN1Any? = nil) {
        self.algorithm = algorithm
        self.parameters = parameters
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let algorithm = try ASN1ObjectIdentifier(derEncoded: &nodes)
            let parameters = nodes.next().map { ASN1Any(derEncoded: $0) }
            return AlgorithmIdentifier(algorithm: algorithm, parameters: parameters)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(algorithm)
            if let parameters { try coder.serialize(parameters) }
        }
    }

    /// True when parameters are absent or an explicit NULL.
    public var hasNoParameters: Bool {
        guard let parameters else { return true }
        return (try? ASN1Null(asn1Any: parameters)) != nil
    }

    /// A NULL parameters value, as RSA algorithm identifiers carry (RFC 4055 §5).
    public static var nullParameters: ASN1Any { try! ASN1Any(erasing: ASN1Null()) }
}

/// Object identifiers Sigil names. Each is defined where the comment says.
public enum OID {
    // RFC 5480 §2.1.1: id-ecPublicKey and the named curves.
    public static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    public static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    public static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    public static let secp521r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 35]
    // RFC 8017 Appendix A.
    public static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    public static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    public static let md5WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 4]
    public static let sha1WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 5]
    public static let sha256WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 11]
    public static let sha384WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 12]
    public static let sha512WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 13]
    // RFC 5758 §3.2 and RFC 3279 §2.2.3.
    public static let ecdsaWithSHA1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 1]
    public static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    public static let ecdsaWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 3]
    public static let ecdsaWithSHA512: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 4]
    // RFC 8410 §3.
    public static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
    public static let ed448: ASN1ObjectIdentifier = [1, 3, 101, 113]
    // RFC 9881 §2 (FIPS 204 ML-DSA); the same OID names the key and the signature.
    public static let mldsa44: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 17]
    public static let mldsa65: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 18]
    public static let mldsa87: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 19]
    // RFC 8018 (PKCS #5 v2.1) Appendix A and B.
    public static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 5, 13]
    public static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 5, 12]
    public static let hmacWithSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 7]
    public static let hmacWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 9]
    public static let hmacWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 10]
    public static let hmacWithSHA512: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 11]
    public static let aes128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
    public static let aes192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
    public static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    // RFC 7914 §7.
    public static let scrypt: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 11591, 4, 11]
    // PKCS #9 (RFC 2985) attributes.
    public static let challengePassword: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 7]
    public static let extensionRequest: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 14]
    public static let unstructuredName: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 2]
}

extension DER {
    /// The elements of a SEQUENCE (or another constructed type) as nodes.
    static func elements(of node: ASN1Node, identifier: ASN1Identifier = .sequence) throws -> [ASN1Node] {
        try DER.sequence(node, identifier: identifier) { nodes in
            var out: [ASN1Node] = []
            while let next = nodes.next() { out.append(next) }
            return out
        }
    }
}
