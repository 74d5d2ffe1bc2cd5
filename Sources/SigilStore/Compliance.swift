import Foundation

/// How much a compliance finding matters. Ordered: a CI gate (`--fail-on high`) fails on
/// every finding at or above its level.
public enum ComplianceSeverity: String, Sendable, CaseIterable, Comparable, Codable {
    case info, low, medium, high, critical

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// A requirement of a standard that a finding bears on: its id in that standard and a short
/// title in our own words (not the standard's text).
public struct ComplianceControl: Sendable, Hashable, Codable {
    /// `PCI DSS v4.0 4.2.1`, `NIST SP 800-57 Part 1 Rev. 5 §5.6`, ...
    public var id: String
    public var title: String

    public init(id: String, title: String) {
        self.id = id
        self.title = title
    }

    public static let pci421 = ComplianceControl(
        id: "PCI DSS v4.0 4.2.1", title: "Strong cryptography with trusted, valid certificates protects cardholder data in transit")
    public static let pci4211 = ComplianceControl(
        id: "PCI DSS v4.0 4.2.1.1", title: "An inventory of trusted keys and certificates is kept")
    public static let sp80052 = ComplianceControl(
        id: "NIST SP 800-52 Rev. 2 §3", title: "TLS servers use certificates with approved algorithms and key sizes from a trusted CA")
    public static let sp80057Strength = ComplianceControl(
        id: "NIST SP 800-57 Part 1 Rev. 5 §5.6", title: "Key sizes and algorithms give the required security strength for as long as they are used")
    public static let sp80057Period = ComplianceControl(
        id: "NIST SP 800-57 Part 1 Rev. 5 §5.3", title: "Keys have limited cryptoperiods")
    public static let sp80057Usage = ComplianceControl(
        id: "NIST SP 800-57 Part 1 Rev. 5 §5.2", title: "A key serves one purpose; reuse widens the damage of a compromise")
    public static let iso824 = ComplianceControl(
        id: "ISO/IEC 27001:2022 A.8.24", title: "Rules for the use of cryptography and key management are defined and applied")
}

/// One kind of compliance problem. Each has a fixed severity, title and set of controls,
/// so a report, the dashboard and a CI gate always agree on what a finding means.
public enum ComplianceCheck: String, Sendable, CaseIterable, Codable {
    case weakKey = "weak-key"
    case md5Signature = "md5-signature"
    case sha1Signature = "sha1-signature"
    case expiredInUse = "expired-in-use"
    case expiringSoonInUse = "expiring-soon-in-use"
    case selfSignedInUse = "self-signed-in-use"
    case longValidity = "long-validity"
    case expiringInUse = "expiring-in-use"
    case unknownIssuerInUse = "unknown-issuer-in-use"
    case sharedKey = "shared-key"
    case rsa2048AfterSunset = "rsa-2048-after-2030"
    case wildcard

    public var severity: ComplianceSeverity {
        switch self {
        case .weakKey, .md5Signature, .expiredInUse: return .critical
        case .sha1Signature, .expiringSoonInUse, .selfSignedInUse: return .high
        case .longValidity, .expiringInUse, .unknownIssuerInUse, .sharedKey: return .medium
        case .rsa2048AfterSunset, .wildcard: return .low
        }
    }

    public var title: String {
        switch self {
        case .weakKey: return "Weak keys (RSA under 2048 bits, elliptic curves under P-256)"
        case .md5Signature: return "MD5 signatures"
        case .sha1Signature: return "SHA-1 signatures"
        case .expiredInUse: return "Expired certificates still in use"
        case .expiringSoonInUse: return "Certificates in use expiring within 7 days"
        case .selfSignedInUse: return "Self-signed certificates in use"
        case .longValidity: return "Validity longer than policy"
        case .expiringInUse: return "Certificates in use expiring soon"
        case .unknownIssuerInUse: return "Certificates in use from an unknown issuer"
        case .sharedKey: return "One key in several certificates"
        case .rsa2048AfterSunset: return "RSA 2048 keys in use after 2030"
        case .wildcard: return "Wildcard names"
        }
    }

    public var controls: [ComplianceControl] {
        switch self {
        case .weakKey: return [.pci421, .sp80052, .sp80057Strength, .iso824]
        case .md5Signature, .sha1Signature: return [.pci421, .sp80052, .sp80057Strength, .iso824]
        case .expiredInUse, .expiringSoonInUse, .expiringInUse: return [.pci421, .pci4211, .iso824]
        case .selfSignedInUse, .unknownIssuerInUse: return [.pci421, .pci4211, .sp80052, .iso824]
        case .longValidity: return [.sp80057Period, .iso824]
        case .sharedKey: return [.pci4211, .sp80057Usage, .iso824]
        case .rsa2048AfterSunset: return [.sp80057Strength, .iso824]
        case .wildcard: return [.sp80057Usage, .iso824]
        }
    }
}

/// What the checks measure against. Durations are seconds.
public struct CompliancePolicy: Sendable, Equatable {
    /// A certificate seen on a TLS endpoint within this window is "in use".
    public var seenWithin: TimeInterval
    /// In-use certificates expiring within this window are findings.
    public var expiringWithin: TimeInterval
    /// The longest validity allowed for TLS certificates, in days; nil: the CA/B Forum Baseline
    /// Requirements maximum in force at each certificate's notBefore (BR §6.3.2).
    public var maxValidityDays: Int?

    /// In-use certificates closer than this to expiry are `high`, not `medium`.
    public static let urgentWindow: TimeInterval = 7 * 86_400
    /// NIST SP 800-57 Part 1 Rev. 5 §5.6.3: 112-bit security (RSA 2048) is acceptable through
    /// 2030; from 2031-01-01 128 bits (RSA 3072) are required.
    public static let rsa2048Sunset = Date(timeIntervalSince1970: 1_924_992_000)

    public init(seenWithin: TimeInterval = 30 * 86_400, expiringWithin: TimeInterval = 30 * 86_400, maxValidityDays: Int? = nil) {
        self.seenWithin = seenWithin
        self.expiringWithin = expiringWithin
        self.maxValidityDays = maxValidityDays
    }
}

/// One certificate a check found, with why and where it lives.
public struct ComplianceFinding: Sendable {
    public var check: ComplianceCheck
    public var certificate: CertificateRecord
    /// What exactly is wrong with this certificate, in a sentence.
    public var detail: String
    /// Where it was seen (TLS endpoints, files), most recent first.
    public var sightings: [CertificateSighting]
    /// For a shared key: the other certificates with the same key (fingerprints, at most 20).
    public var related: [String]

    public var severity: ComplianceSeverity { check.severity }

    public init(check: ComplianceCheck, certificate: CertificateRecord, detail: String, sightings: [CertificateSighting] = [], related: [String] = []) {
        self.check = check
        self.certificate = certificate
        self.detail = detail
        self.sightings = sightings
        self.related = related
    }
}

/// One check's outcome: how many certificates it found, and the findings (all of them, or the
/// first few when the report was asked for examples only).
public struct ComplianceCheckResult: Sendable {
    public var check: ComplianceCheck
    public var count: Int
    public var findings: [ComplianceFinding]

    public init(check: ComplianceCheck, count: Int, findings: [ComplianceFinding]) {
        self.check = check
        self.count = count
        self.findings = findings
    }
}

/// The crypto-agility picture: what the certificates in scope use, and how many of them a
/// quantum computer would break (RSA, ECDSA, EdDSA) against those already on ML-DSA (FIPS 204).
public struct CryptoAgility: Sendable, Equatable {
    public struct Count: Sendable, Equatable {
        public var name: String
        public var count: Int
        public var quantumVulnerable: Bool
        public init(name: String, count: Int, quantumVulnerable: Bool) {
            self.name = name
            self.count = count
            self.quantumVulnerable = quantumVulnerable
        }
    }

    /// By key algorithm and size (`RSA 2048`, `ECDSA 256`, `ML-DSA 65`), most used first.
    public var keys: [Count]
    /// By signature algorithm (`sha256WithRSAEncryption`, `ML-DSA-65`), most used first.
    public var signatures: [Count]
    public var total: Int { keys.map(\.count).reduce(0, +) }
    public var quantumVulnerable: Int { keys.filter(\.quantumVulnerable).map(\.count).reduce(0, +) }
    public var postQuantum: Int { keys.filter { $0.name.hasPrefix("ML-DSA") }.map(\.count).reduce(0, +) }
    /// The quantum-vulnerable share, 0...1.
    public var quantumVulnerableShare: Double { total == 0 ? 0 : Double(quantumVulnerable) / Double(total) }

    public init(keys: [Count], signatures: [Count]) {
        self.keys = keys
        self.signatures = signatures
    }

    /// Key algorithms broken by Shor's algorithm; ML-DSA (and anything unrecognised) is not counted as such.
    public static func isQuantumVulnerable(keyAlgorithm: String) -> Bool {
        ["RSA", "ECDSA", "Ed25519", "Ed448", "EC", "DSA"].contains(keyAlgorithm)
    }
}

/// The compliance report over the inventory: every check's result (clean checks included),
/// the crypto-agility section, and what was in scope.
///
/// In scope: certificates not revoked that are still valid, or expired but still seen in use.
/// "In use": seen on a TLS endpoint within `policy.seenWithin`.
public struct ComplianceReport: Sendable {
    public var generatedAt: Date
    public var policy: CompliancePolicy
    /// Certificates in the inventory, all statuses.
    public var inventory: Int
    /// Certificates in scope.
    public var inScope: Int
    /// Certificates seen in use.
    public var inUse: Int
    /// Every check, in the order of `ComplianceCheck.allCases` (most severe first).
    public var results: [ComplianceCheckResult]
    public var agility: CryptoAgility

    public init(generatedAt: Date, policy: CompliancePolicy, inventory: Int, inScope: Int, inUse: Int, results: [ComplianceCheckResult], agility: CryptoAgility) {
        self.generatedAt = generatedAt
        self.policy = policy
        self.inventory = inventory
        self.inScope = inScope
        self.inUse = inUse
        self.results = results
        self.agility = agility
    }

    public var findings: [ComplianceFinding] { results.flatMap(\.findings) }

    /// Findings per severity (counts, not only the examples held).
    public var countsBySeverity: [ComplianceSeverity: Int] {
        var counts: [ComplianceSeverity: Int] = [:]
        for result in results { counts[result.check.severity, default: 0] += result.count }
        return counts
    }

    /// The most severe level with a finding, or nil when the inventory is clean.
    public var highestSeverity: ComplianceSeverity? {
        results.filter { $0.count > 0 }.map(\.check.severity).max()
    }
}
