import Crypto
import Foundation
import SwiftASN1
import X509

/// A parsed CRL (RFC 5280 §5), for `sigil crl show` and for tests. Keeps the
/// exact TBS bytes so the signature is checked over what was received.
public struct CertificateRevocationList: Sendable {
    public let version: Int
    public let issuer: DistinguishedName
    public let thisUpdate: Date
    public let nextUpdate: Date?
    public let entries: [CRLEntry]
    public let extensions: Certificate.Extensions
    public let signatureAlgorithm: SignatureAlgorithm
    public let signature: [UInt8]
    public let tbsBytes: [UInt8]
    public let derBytes: [UInt8]

    public init(derEncoded bytes: [UInt8]) throws {
        do {
            let root = try DER.parse(bytes)
            let outer = try DER.elements(of: root)
            guard outer.count == 3 else { throw SigilError.badInput("a CRL has three fields") }
            let tbs = outer[0]
            var fields = try DER.elements(of: tbs)
            var version = 0
            if fields.first?.identifier == .integer {
                version = try Int(derEncoded: fields.removeFirst())
            }
            guard fields.count >= 4 else { throw SigilError.badInput("the CRL is missing fields") }
            _ = try AlgorithmIdentifier(derEncoded: fields.removeFirst())
            issuer = try DistinguishedName(derEncoded: fields.removeFirst())
            thisUpdate = try ASN1Time.parse(fields.removeFirst())
            if let next = fields.first, next.identifier == UTCTime.defaultIdentifier || next.identifier == GeneralizedTime.defaultIdentifier {
                nextUpdate = try ASN1Time.parse(fields.removeFirst())
            } else {
                nextUpdate = nil
            }
            var parsedEntries: [CRLEntry] = []
            if let list = fields.first, list.identifier == .sequence {
                fields.removeFirst()
                for entryNode in try DER.elements(of: list) {
                    var parts = try DER.elements(of: entryNode)
                    guard parts.count >= 2 else { throw SigilError.badInput("a CRL entry is missing fields") }
                    let serial = try ArraySlice<UInt8>(derEncoded: parts.removeFirst())
                    let date = try ASN1Time.parse(parts.removeFirst())
                    var reason: RevocationReason?
                    var invalidity: Date?
                    if let extensionList = parts.first {
                        for ext in try DER.elements(of: extensionList).map(X509Certificate.parseExtension) {
                            let value = try DER.parse(ext.value)
                            if ext.oid == CRLBuilder.reasonCodeOID, case .primitive(let content) = value.content, let byte = content.first {
                                reason = RevocationReason(rawValue: Int(byte))
                            } else if ext.oid == CRLBuilder.invalidityDateOID {
                                invalidity = try ASN1Time.parse(value)
                            }
                        }
                    }
                    parsedEntries.append(CRLEntry(serial: Array(serial.drop { $0 == 0 }), revocationDate: date, reason: reason, invalidityDate: invalidity))
                }
            }
            var parsedExtensions: [Certificate.Extension] = []
            if let tagged = fields.first, tagged.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                parsedExtensions = try DER.explicitlyTagged(tagged, tagNumber: 0, tagClass: .contextSpecific) { inner in
                    try DER.elements(of: inner).map(X509Certificate.parseExtension)
                }
            }
            self.version = version
            entries = parsedEntries
            extensions = try Certificate.Extensions(parsedExtensions)
            signatureAlgorithm = SignatureAlgorithm(try AlgorithmIdentifier(derEncoded: outer[1]))
            signature = Array(try ASN1BitString(derEncoded: outer[2]).bytes)
            tbsBytes = Array(tbs.encodedBytes)
            derBytes = bytes
        } catch let error as SigilError {
            throw error
        } catch {
            throw SigilError.badInput("malformed CRL: \(ASN1ErrorText.describe(error))")
        }
    }

    public init(pemOrDER bytes: [UInt8], source: String = "input") throws {
        if PEM.looksLikePEM(bytes) {
            guard let block = try PEM.parse(String(decoding: bytes, as: UTF8.self), source: source).first(where: { $0.label == "X509 CRL" }) else {
                throw SigilError.badInput("\(source): no X509 CRL block")
            }
            try self.init(derEncoded: block.derBytes)
        } else {
            try self.init(derEncoded: bytes)
        }
    }

    public var crlNumber: Int64? {
        guard let ext = extensions[oid: CRLBuilder.crlNumberOID] else { return nil }
        return try? Int64(derEncoded: Array(ext.value))
    }

    public var authorityKeyIdentifier: [UInt8]? {
        ((try? extensions.authorityKeyIdentifier) ?? nil)?.keyIdentifier.map(Array.init)
    }

    /// The fullName URI of the issuing distribution point, if any.
    public var issuingDistributionPoint: String? {
        guard let ext = extensions[oid: CRLBuilder.issuingDistributionPointOID] else { return nil }
        guard let node = try? DER.parse(ext.value), let outer = try? DER.elements(of: node), let point = outer.first,
              case .constructed(let names) = point.content else { return nil }
        for name in names {
            guard case .constructed(let generalNames) = name.content else { continue }
            for generalName in generalNames {
                if case .uniformResourceIdentifier(let url) = try? GeneralName(derEncoded: generalName) { return url }
            }
        }
        return nil
    }

    public func isSigned(by key: PublicKey) -> Bool {
        key.isValidSignature(signature, for: tbsBytes, algorithm: signatureAlgorithm)
    }

    public var pemString: String { PEM.encode(label: "X509 CRL", der: derBytes) }
}
