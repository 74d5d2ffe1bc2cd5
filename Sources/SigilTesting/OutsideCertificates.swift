import _CryptoExtras
import Crypto
import Foundation
import SigilCore
import X509

/// Certificates as other CAs and tools make them, for inventories Sigil did not issue:
/// any key (RSA 1024 included) and SHA-1 signatures, which Sigil itself never produces.
public enum OutsideCertificates {
    /// Who signs: a Sigil-supported key (its default algorithm), or an RSA key over SHA-1.
    public enum Signer {
        case key(PrivateKey)
        case rsaSHA1(_RSA.Signing.PrivateKey)
    }

    /// An RSA public key of any size (`_RSA` refuses nothing below 2048 with `unsafeKeySize`).
    public static func rsaKey(bits: Int) throws -> (private: _RSA.Signing.PrivateKey, public: PublicKey) {
        let key = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits))
        return (key, try PublicKey(spkiDER: Array(key.publicKey.derRepresentation)))
    }

    public static func make(subject: String, issuer: String? = nil, publicKey: PublicKey, notBefore: Date, notAfter: Date,
                            names: [String] = [], isCA: Bool = false, signer: Signer) throws -> X509Certificate {
        var extensions: [Certificate.Extension] = []
        if isCA { extensions.append(try Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true)) }
        if !names.isEmpty {
            extensions.append(try Certificate.Extension(SubjectAlternativeNames(names.map { GeneralName.dnsName($0) }), critical: false))
        }
        let builder = CertificateBuilder(
            serialNumber: SerialNumber.random(), issuer: try DistinguishedName.parseOpenSSL(issuer ?? subject),
            subject: try DistinguishedName.parseOpenSSL(subject), notBefore: notBefore, notAfter: notAfter, publicKey: publicKey, extensions: extensions)
        switch signer {
        case .key(let key):
            return try builder.sign(with: key)
        case .rsaSHA1(let key):
            return try builder.sign(algorithm: .rsaPKCS1(.sha1)) { tbs in
                Array(try key.signature(for: Insecure.SHA1.hash(data: tbs), padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        }
    }
}
