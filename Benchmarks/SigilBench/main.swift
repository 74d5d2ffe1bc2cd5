// sigil-bench: in-process measurements that a whole-process timer cannot make.
//
//   sigil-bench issue --count N --concurrency C [--home DIR] [--csr-dir DIR]
//
// Creates a P-256 root and intermediate in a fresh SQLite home, makes N P-256
// CSRs (or reads *.csr from --csr-dir, so peers can sign the same ones), then
// issues them through CertificateAuthority.submit with C concurrent tasks: CSR
// parse and verification, policy, signing, and a durable SQLite commit with the
// audit entries for every certificate. Prints RESULT lines.
import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import X509

func argument(_ name: String, default value: String) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    return value
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
if mode == "crl-setup" {
    do {
        try await crlSetup()
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("sigil-bench crl-setup: \(error)\nusage: sigil-bench crl-setup --entries N --home DIR\n".utf8))
        exit(2)
    }
}
guard mode == "issue" else {
    FileHandle.standardError.write(Data("""
        usage: sigil-bench issue --count N --concurrency C [--home DIR] [--csr-dir DIR]
               sigil-bench crl-setup --entries N --home DIR   (a SIGIL_HOME whose intermediate has N revoked certificates;
                                                               then time `SIGIL_HOME=DIR sigil crl generate --passphrase-env ...`)

        """.utf8))
    exit(2)
}
let count = Int(argument("--count", default: "2000")) ?? 2000
let concurrency = max(1, Int(argument("--concurrency", default: "8")) ?? 8)
let home = argument("--home", default: NSTemporaryDirectory() + "sigil-bench-\(getpid())")
let csrDir = argument("--csr-dir", default: "")
try? FileManager.default.removeItem(atPath: home)
try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)

let store = try await SQLiteStore.open(path: home + "/sigil.db")
try await store.migrate()
let authority = CertificateAuthority(store: store, configuration: AuthorityConfiguration(httpPublicURL: "http://pki.example.com"))
let passphrase = Array("benchmark passphrase".utf8)
_ = try await authority.createRoot(NewCAOptions(name: "root", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Bench/CN=Bench Root"),
                                                keyType: .ecP256, days: 3650), passphrase: passphrase, actor: "bench")
_ = try await authority.createIntermediate(NewCAOptions(name: "intermediate", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Bench/CN=Bench Intermediate"),
                                                        keyType: .ecP256, days: 1825, pathLength: 0), parent: "root", passphrase: passphrase, actor: "bench")

var csrs: [CertificationRequest] = []
if !csrDir.isEmpty {
    let files = try FileManager.default.contentsOfDirectory(atPath: csrDir).filter { $0.hasSuffix(".csr") }.sorted()
    for file in files.prefix(count) {
        csrs.append(try CertificationRequest(pemOrDER: Array(try Data(contentsOf: URL(fileURLWithPath: csrDir + "/" + file))), source: file))
    }
} else {
    for i in 0..<count {
        var request = CSRRequest(subject: try DistinguishedName.parseOpenSSL("/CN=host\(i).example.com"))
        request.addCommonNameToSubjectAltNames()
        csrs.append(try request.signed(with: try PrivateKey.generate(.ecP256)))
    }
}

let work = csrs
let start = ContinuousClock.now
let cpuStart = clock()
try await withThrowingTaskGroup(of: Void.self) { group in
    var next = 0
    func add() {
        let csr = work[next]
        next += 1
        group.addTask {
            _ = try await authority.submit(IssuanceRequest(csr: csr, profile: "tls-server", requester: "bench"))
        }
    }
    for _ in 0..<min(concurrency, work.count) { add() }
    while try await group.next() != nil {
        if next < work.count { add() }
    }
}
let elapsed = ContinuousClock.now - start
let cpu = Double(clock() - cpuStart) / Double(CLOCKS_PER_SEC)
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let recorded = try await store.read { try await $0.countCertificates() }
let audit = try await authority.verifyAudit()
try await store.close()
try? FileManager.default.removeItem(atPath: home)
print("RESULT issued=\(csrs.count) certificates")
print("RESULT recorded=\(recorded - 2) certificates (plus 2 CA certificates)")
print("RESULT audit_chain_ok=\(audit.ok) entries=\(audit.entries)")
print("RESULT cpu_ms_per_cert=\(String(format: "%.3f", cpu * 1000 / Double(csrs.count))) ms")
print("RESULT wall_s=\(String(format: "%.3f", seconds)) s")
print("RESULT issue_per_s=\(String(format: "%.0f", Double(csrs.count) / seconds)) certs/s")

/// Makes SIGIL_HOME=DIR with a root and an intermediate (passphrase "benchmark passphrase")
/// and N revoked certificate records under the intermediate, written in large
/// transactions. The records carry the fields a CRL reads; their PEM is a stub.
func crlSetup() async throws {
    let entries = Int(argument("--entries", default: "1000000")) ?? 1_000_000
    let dir = argument("--home", default: "")
    guard !dir.isEmpty else { throw SigilError.badInput("--home DIR is required") }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let store = try await SQLiteStore.open(path: dir + "/sigil.db")
    try await store.migrate()
    let authority = CertificateAuthority(store: store, configuration: AuthorityConfiguration(httpPublicURL: "http://pki.example.com"))
    let passphrase = Array("benchmark passphrase".utf8)
    _ = try await authority.createRoot(NewCAOptions(name: "root", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Bench/CN=Bench Root"),
                                                    keyType: .ecP256, days: 3650), passphrase: passphrase, actor: "bench")
    _ = try await authority.createIntermediate(NewCAOptions(name: "intermediate", subject: try DistinguishedName.parseOpenSSL("/C=US/O=Bench/CN=Bench Intermediate"),
                                                            keyType: .ecP256, days: 1825, pathLength: 0), parent: "root", passphrase: passphrase, actor: "bench")
    let now = Date()
    let batch = 20_000
    var done = 0
    var rng = SystemRandomNumberGenerator()
    while done < entries {
        let count = min(batch, entries - done)
        let records: [CertificateRecord] = (0..<count).map { _ in
            let serial = Hex.encode(SerialNumber.random(using: &rng))
            return CertificateRecord(
                serial: serial, issuer: "intermediate", subject: "/CN=bench", commonName: "bench", sans: [], notBefore: now,
                notAfter: now.addingTimeInterval(90 * 86_400), keyType: "ec:P-256", keyAlgorithm: "ECDSA", keySize: 256,
                signatureAlgorithm: "ecdsa-with-SHA256", fingerprint: Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }),
                storedStatus: .revoked, source: .issued, profile: "tls-server", pem: "-", revokedAt: now.addingTimeInterval(-Double(done)),
                revocationReason: done % 3 == 0 ? 1 : nil, createdAt: now)
        }
        try await store.write { session in
            for record in records { try await session.insertCertificate(record) }
        }
        done += count
    }
    try await store.close()
    print("RESULT revoked_entries=\(entries)")
}
