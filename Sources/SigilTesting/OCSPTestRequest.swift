import Foundation
import SigilCore
import SwiftASN1
import X509

/// Builds OCSP requests the way clients do, for responder tests.
public enum OCSPTestRequest {
    public static func make(issuer: X509Certificate, serials: [[UInt8]], hash: OCSP.HashAlgorithm = .sha1, nonce: [UInt8]? = nil) throws -> [UInt8] {
        var subject = DER.Serializer()
        try subject.serialize(issuer.subject)
        var list = DER.Serializer()
        try list.appendConstructedNode(identifier: .sequence) { coder in
            for serial in serials {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(AlgorithmIdentifier(algorithm: hash == .sha1 ? [1, 3, 14, 3, 2, 26] : [2, 16, 840, 1, 101, 3, 4, 2, 1],
                                                                parameters: AlgorithmIdentifier.nullParameters))
                        try coder.serialize(ASN1OctetString(contentBytes: hash.hash(subject.serializedBytes)[...]))
                        try coder.serialize(ASN1OctetString(contentBytes: hash.hash(issuer.publicKey!.subjectPublicKeyBytes)[...]))
                        try coder.serialize(ArraySlice(serial))
                    }
                }
            }
        }
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(list.serializedBytes)
            if let nonce {
                try coder.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        var value = DER.Serializer()
                        try value.serialize(ASN1OctetString(contentBytes: nonce[...]))
                        try ExtensionWriter.write(oid: OCSP.nonceOID, value: value.serializedBytes, into: &coder)
                    }
                }
            }
        }
        var outer = DER.Serializer()
        try outer.appendConstructedNode(identifier: .sequence) { coder in coder.serializeRawBytes(tbs.serializedBytes) }
        return outer.serializedBytes
    }

}

/// Writes one Extension into an open SEQUENCE (test helper for hand-built requests).
enum ExtensionWriter {
    static func write(oid: ASN1ObjectIdentifier, value: [UInt8], into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
            try coder.serialize(ASN1OctetString(contentBytes: value[...]))
        }
    }
}
