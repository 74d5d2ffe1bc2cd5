import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import Synchronization
import X509

/// A clock that says what the test tells it.
public final class FixedClock: SigilClock, Sendable {
    private let current: Mutex<Date>
    public init(_ date: Date) { current = Mutex(date) }
    public func now() -> Date { current.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A throwaway CA hierarchy on a real SQLite store in a temporary directory.
public struct TestAuthority: Sendable {
    public let directory: TemporaryDirectory
    public let store: SQLiteStore
    public let authority: CertificateAuthority
    public let clock: FixedClock
    public static let passphrase = Array("test passphrase".utf8)
    /// 2026-11-30T12:00:00Z, the day these tests were written.
    public static let defaultNow = Date(timeIntervalSince1970: 1_795_003_200)

    /// `intermediateEKU` empty means an intermediate for every purpose.
    public static func make(root: KeyType = .ecP384, intermediate: KeyType? = .ecP256, now: Date = defaultNow,
                            profiles: [String: CertificateProfile] = CertificateProfile.builtIn,
                            intermediateEKU: [String] = [], crlShards: Int = 1) async throws -> TestAuthority {
        let directory = try TemporaryDirectory("sigil-ca")
        let store = try await SQLiteStore.open(path: directory.file("sigil.db"))
        try await store.migrate()
        let clock = FixedClock(now)
        let authority = CertificateAuthority(
            store: store, configuration: AuthorityConfiguration(httpPublicURL: "http://pki.example.com", profiles: profiles, crlShards: crlShards), clock: clock)
        _ = try await authority.createRoot(
            NewCAOptions(name: "root", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Test/CN=Test Root"), keyType: root, days: 3650),
            passphrase: passphrase, actor: "test")
        if let intermediate {
            _ = try await authority.createIntermediate(
                NewCAOptions(name: "intermediate", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Test/CN=Test Intermediate"),
                             keyType: intermediate, days: 1825, pathLength: 0, extendedKeyUsage: intermediateEKU),
                parent: "root", passphrase: passphrase, actor: "test")
        }
        return TestAuthority(directory: directory, store: store, authority: authority, clock: clock)
    }

    public func close() async {
        try? await store.close()
        directory.remove()
    }

    /// A CSR for `names` (the first is the CN) with a new key of `type`.
    public static func csr(_ names: [String], keyType: KeyType = .ecP256, subject: String? = nil) throws -> (CertificationRequest, PrivateKey) {
        let key = try PrivateKey.generate(keyType)
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL(subject ?? "/CN=\(names[0])"))
        request.subjectAltNames = try names.map { try SubjectAltName(parsing: $0.contains("@") ? "email:\($0)" : "DNS:\($0)") }
        return (try request.signed(with: key), key)
    }
}
