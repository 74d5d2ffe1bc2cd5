import Foundation
import SigilAgent
import SigilCore
import SigilTesting
import X509

/// A throwaway CA and leaf certificates for deployment tests, built with SigilCore.
struct MiniCA {
    let key: PrivateKey
    let certificate: X509Certificate

    init(name: String = "Agent Test Root") throws {
        key = try PrivateKey.generate(.ecP256)
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        certificate = try CertificateBuilder(
            serialNumber: SerialNumber.random(), issuer: subject, subject: subject, notBefore: now.addingTimeInterval(-60),
            notAfter: now.addingTimeInterval(86_400), publicKey: key.publicKey,
            extensions: [try Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true)]
        ).sign(with: key)
    }

    func issue(_ names: [String], lifetime: TimeInterval = 600, key leafKey: PrivateKey? = nil) throws -> CertificateBundle {
        let leafKey = try leafKey ?? PrivateKey.generate(.ecP256)
        let now = Date()
        let san = try Certificate.Extension(SubjectAlternativeNames(names.map { GeneralName.dnsName($0) }), critical: false)
        let leaf = try CertificateBuilder(
            serialNumber: SerialNumber.random(), issuer: certificate.subject, subject: try DistinguishedName { CommonName(names[0]) },
            notBefore: now.addingTimeInterval(-10), notAfter: now.addingTimeInterval(lifetime), publicKey: leafKey.publicKey, extensions: [san]
        ).sign(with: key)
        return CertificateBundle(keyPEM: leafKey.pkcs8PEM(), certificate: leaf, chain: [certificate])
    }
}

/// Deterministic randomness for schedule tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func managed(_ name: String, in directory: TemporaryDirectory, chain: Bool = true, fullchain: Bool = true) -> ManagedCertificate {
    ManagedCertificate(
        name: name, names: ["www.example.com"],
        key: DeployTarget(path: directory.file("\(name).key"), mode: 0o600),
        certificate: DeployTarget(path: directory.file("\(name).crt"), mode: 0o644),
        chain: chain ? DeployTarget(path: directory.file("\(name).chain.pem"), mode: 0o644) : nil,
        fullchain: fullchain ? DeployTarget(path: directory.file("\(name).fullchain.pem"), mode: 0o644) : nil,
        authority: .sigil(SigilAuthorityEndpoint(url: "https://127.0.0.1:1", tokenEnv: "T")))
}
