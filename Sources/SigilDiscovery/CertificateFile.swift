import Foundation
import SigilCore
import SwiftASN1

/// The certificates one file holds, and what else was in it.
///
/// Reads PEM (any number of blocks), DER certificates and PKCS#7 / CMS
/// certs-only bundles (PEM `PKCS7` / `CMS` blocks, or DER). Private-key blocks
/// are counted and skipped without being decoded.
public struct CertificateFile: Sendable {
    public var certificates: [X509Certificate] = []
    /// PEM blocks whose label names a private key.
    public var privateKeys = 0
    /// Why parts of the file were not certificates (for the summary).
    public var notes: [String] = []

    /// PEM labels that carry certificates (RFC 7468 §5, §8 and §9; OpenSSL's `X509 CERTIFICATE`).
    static let certificateLabels: Set<String> = ["CERTIFICATE", "X509 CERTIFICATE"]
    static let bundleLabels: Set<String> = ["PKCS7", "PKCS #7 SIGNED DATA", "CMS"]

    public init(bytes: [UInt8], source: String) {
        if bytes.isEmpty {
            notes.append("empty file")
        } else if PEM.looksLikePEM(bytes) {
            readPEM(String(decoding: bytes, as: UTF8.self), source: source)
        } else if bytes.first == 0x30 {
            readDER(bytes)
        } else {
            notes.append("not PEM or DER")
        }
    }

    /// True when nothing in the file was a certificate.
    public var isJunk: Bool { certificates.isEmpty }

    private mutating func readDER(_ bytes: [UInt8]) {
        if let certificate = try? X509Certificate(derEncoded: bytes) {
            certificates.append(certificate)
        } else if let bundle = try? PKCS7Certificates.parse(bytes) {
            append(bundle, what: "PKCS#7 bundle")
        } else {
            notes.append("DER data that is neither a certificate nor a PKCS#7 bundle")
        }
    }

    private mutating func readPEM(_ text: String, source: String) {
        // Keep only the blocks worth decoding, so a private key's base64 is never even decoded.
        var kept: [Substring] = []
        var skipping = false
        var sawBlock = false
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----") {
                sawBlock = true
                let label = String(trimmed.dropFirst(11).dropLast(5))
                skipping = !(Self.certificateLabels.contains(label) || Self.bundleLabels.contains(label))
                if label.hasSuffix("PRIVATE KEY") { privateKeys += 1 }
                if skipping { continue }
            }
            if skipping {
                if trimmed.hasPrefix("-----END ") { skipping = false }
                continue
            }
            kept.append(line)
        }
        guard sawBlock else {
            notes.append("no PEM block")
            return
        }
        guard kept.contains(where: { $0.contains("-----BEGIN ") }) else {
            notes.append(privateKeys > 0 ? "private key only (skipped, not read)" : "PEM without certificates")
            return
        }
        let blocks: [PEMBlock]
        do {
            blocks = try PEM.parse(kept.joined(separator: "\n"), source: source)
        } catch let error as SigilError {
            notes.append(error.message)
            return
        } catch {
            notes.append("\(error)")
            return
        }
        for block in blocks {
            if Self.certificateLabels.contains(block.label) {
                do {
                    certificates.append(try X509Certificate(derEncoded: block.derBytes))
                } catch {
                    notes.append("the CERTIFICATE block at line \(block.line) is not a valid certificate")
                }
            } else {
                do {
                    append(try PKCS7Certificates.parse(block.derBytes), what: "the \(block.label) block at line \(block.line)")
                } catch {
                    notes.append("the \(block.label) block at line \(block.line) is not a PKCS#7 certificate bundle")
                }
            }
        }
    }

    private mutating func append(_ bundle: [[UInt8]], what: String) {
        for (index, der) in bundle.enumerated() {
            if let certificate = try? X509Certificate(derEncoded: der) {
                certificates.append(certificate)
            } else {
                notes.append("certificate \(index + 1) of \(what) is not valid")
            }
        }
        if bundle.isEmpty { notes.append("\(what) holds no certificates") }
    }
}

/// The certificates of a PKCS#7 / CMS SignedData, as used by "certs-only" bundles (.p7b, .p7c).
///
/// ```
/// ContentInfo ::= SEQUENCE {                       -- RFC 5652 §3
///   contentType ContentType,                        -- id-signedData 1.2.840.113549.1.7.2
///   content [0] EXPLICIT ANY DEFINED BY contentType }
/// SignedData ::= SEQUENCE {                         -- RFC 5652 §5.1
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// CertificateChoices ::= CHOICE { certificate Certificate, -- only this one is kept
///   extendedCertificate [0] IMPLICIT ..., v1AttrCert [1] IMPLICIT ..., v2AttrCert [2] IMPLICIT ..., other [3] IMPLICIT ... }
/// ```
/// Parsed as BER: bundles made by Windows use indefinite lengths.
public enum PKCS7Certificates {
    static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]

    /// The DER of each certificate in the bundle, in order.
    public static func parse(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let root = try BER.parse(bytes)
        guard case .constructed(let info) = root.content, root.identifier == .sequence else { throw SigilError.badInput("not a ContentInfo") }
        var parts = info.makeIterator()
        guard let typeNode = parts.next(), let explicit = parts.next() else { throw SigilError.badInput("ContentInfo is incomplete") }
        guard try ASN1ObjectIdentifier(berEncoded: typeNode) == signedData else { throw SigilError.badInput("not a PKCS#7 SignedData") }
        guard explicit.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific),
              case .constructed(let wrapped) = explicit.content, let signed = wrapped.first(where: { _ in true }),
              case .constructed(let fields) = signed.content
        else { throw SigilError.badInput("SignedData is malformed") }
        let certificateSet = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        guard let set = fields.first(where: { $0.identifier == certificateSet }) else { return [] }
        guard case .constructed(let choices) = set.content else { throw SigilError.badInput("the certificate set is malformed") }
        return choices.filter { $0.identifier == .sequence }.map { Array($0.encodedBytes) }
    }
}
