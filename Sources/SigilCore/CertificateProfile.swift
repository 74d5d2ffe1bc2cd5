import Foundation
import SwiftASN1
import X509

/// What a kind of certificate may be: usages, lifetimes, keys, names, subject
/// handling and whether a person must approve. Built-in profiles are below;
/// `sigil.yaml` may override any field of them or add new ones.
public struct CertificateProfile: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public var keyUsage: [String]
    /// Added for RSA subject keys only (RSA key transport, RFC 5280 §4.2.1.3).
    public var rsaKeyEncipherment: Bool
    public var extendedKeyUsage: [String]
    public var isCA: Bool
    public var pathLength: Int?
    public var defaultDays: Int
    public var maxDays: Int
    /// A lifetime finer than whole days (`default_validity: 10m`); when set it replaces
    /// `defaultDays` for requests that name no number of days.
    public var defaultValidity: ValidityPeriod?
    /// A cap finer than whole days (`max_validity: 2h`); when set it replaces `maxDays`.
    public var maxValidity: ValidityPeriod?
    /// Key types allowed (`--key-type` names); empty means every type Sigil supports.
    public var allowedKeyTypes: [String]
    /// Name patterns (see `NamePattern`); empty means any syntactically valid name.
    public var allowedNames: [String]
    public var deniedNames: [String]
    /// SAN kinds allowed: DNS, IP, email, URI.
    public var allowedSANTypes: [String]
    public var requireSAN: Bool
    public var requiredSubject: [String]
    /// Keep the CN; when kept and host-like it must repeat a SAN (BR §7.1.4.3).
    public var keepCommonName: Bool
    /// Subject attributes copied from the request besides CN; empty keeps none.
    public var keepSubjectAttributes: [String]
    public var requireApproval: Bool
    /// certificatePolicies identifiers (dotted OIDs).
    public var policies: [String]
    /// Apply the CA/Browser Forum TLS Baseline Requirements (key types, SHA-1 ban,
    /// validity cap that moves with the date).
    public var cabForumBaselineRequirements: Bool
    public var ocspNoCheck: Bool
    /// Add CRL distribution point and AIA URLs.
    public var revocationURLs: Bool

    enum CodingKeys: String, CodingKey {
        case name, description, isCA = "is_ca", policies
        case keyUsage = "key_usage", rsaKeyEncipherment = "rsa_key_encipherment", extendedKeyUsage = "extended_key_usage"
        case pathLength = "path_length", defaultDays = "default_days", maxDays = "max_days", allowedKeyTypes = "allowed_key_types"
        case defaultValidity = "default_validity", maxValidity = "max_validity"
        case allowedNames = "allowed_names", deniedNames = "denied_names", allowedSANTypes = "allowed_san_types", requireSAN = "require_san"
        case requiredSubject = "required_subject", keepCommonName = "keep_common_name", keepSubjectAttributes = "keep_subject_attributes"
        case requireApproval = "require_approval", cabForumBaselineRequirements = "cabf_baseline_requirements"
        case ocspNoCheck = "ocsp_no_check", revocationURLs = "revocation_urls"
    }

    public init(name: String, description: String, keyUsage: [String], rsaKeyEncipherment: Bool = false, extendedKeyUsage: [String],
                isCA: Bool = false, pathLength: Int? = nil, defaultDays: Int, maxDays: Int, allowedKeyTypes: [String] = [],
                allowedNames: [String] = [], deniedNames: [String] = [], allowedSANTypes: [String] = ["DNS", "IP", "email", "URI"],
                requireSAN: Bool = false, requiredSubject: [String] = [], keepCommonName: Bool = true,
                keepSubjectAttributes: [String] = ["C", "ST", "L", "O", "OU", "emailAddress", "serialNumber", "DC", "UID"],
                requireApproval: Bool = false, policies: [String] = [], cabForumBaselineRequirements: Bool = false,
                ocspNoCheck: Bool = false, revocationURLs: Bool = true) {
        self.name = name
        self.description = description
        self.keyUsage = keyUsage
        self.rsaKeyEncipherment = rsaKeyEncipherment
        self.extendedKeyUsage = extendedKeyUsage
        self.isCA = isCA
        self.pathLength = pathLength
        self.defaultDays = defaultDays
        self.maxDays = maxDays
        self.allowedKeyTypes = allowedKeyTypes
        self.allowedNames = allowedNames
        self.deniedNames = deniedNames
        self.allowedSANTypes = allowedSANTypes
        self.requireSAN = requireSAN
        self.requiredSubject = requiredSubject
        self.keepCommonName = keepCommonName
        self.keepSubjectAttributes = keepSubjectAttributes
        self.requireApproval = requireApproval
        self.policies = policies
        self.cabForumBaselineRequirements = cabForumBaselineRequirements
        self.ocspNoCheck = ocspNoCheck
        self.revocationURLs = revocationURLs
    }

    /// The built-in profiles, by name.
    public static let builtIn: [String: CertificateProfile] = {
        let profiles: [CertificateProfile] = [
            CertificateProfile(
                name: "tls-server", description: "TLS server (CA/Browser Forum Baseline Requirements, domain validated)",
                keyUsage: ["digitalSignature"], rsaKeyEncipherment: true, extendedKeyUsage: ["serverAuth"],
                defaultDays: 90, maxDays: 200, allowedKeyTypes: ["rsa:2048", "rsa:3072", "rsa:4096", "ec:P-256", "ec:P-384", "ec:P-521"],
                allowedSANTypes: ["DNS", "IP"], requireSAN: true, keepSubjectAttributes: [],
                policies: [ExtraExtensions.domainValidatedPolicy.description], cabForumBaselineRequirements: true),
            CertificateProfile(
                name: "tls-client", description: "TLS client authentication (machines and people)",
                keyUsage: ["digitalSignature"], extendedKeyUsage: ["clientAuth"], defaultDays: 90, maxDays: 397),
            CertificateProfile(
                name: "email", description: "S/MIME signing and encryption",
                keyUsage: ["digitalSignature"], rsaKeyEncipherment: true, extendedKeyUsage: ["emailProtection"],
                defaultDays: 365, maxDays: 825, allowedSANTypes: ["email"], requireSAN: true),
            CertificateProfile(
                name: "code-signing", description: "Code signing (a person approves each request)",
                keyUsage: ["digitalSignature"], extendedKeyUsage: ["codeSigning"], defaultDays: 365, maxDays: 1095,
                allowedKeyTypes: ["rsa:3072", "rsa:4096", "ec:P-256", "ec:P-384", "ec:P-521", "mldsa:65", "mldsa:87"],
                allowedSANTypes: ["email", "URI"], requiredSubject: ["CN", "O"], requireApproval: true),
            CertificateProfile(
                name: "ocsp-signing", description: "Delegated OCSP responder (RFC 6960 §4.2.2.2)",
                keyUsage: ["digitalSignature"], extendedKeyUsage: ["OCSPSigning"], defaultDays: 30, maxDays: 90,
                ocspNoCheck: true, revocationURLs: false),
            CertificateProfile(
                name: "sub-ca", description: "Subordinate CA (a person approves each request)",
                keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"], extendedKeyUsage: [], isCA: true, pathLength: 0,
                defaultDays: 1825, maxDays: 3650, requiredSubject: ["CN", "O"], requireApproval: true),
        ]
        return Dictionary(uniqueKeysWithValues: profiles.map { ($0.name, $0) })
    }()
}

/// A partial profile from configuration: every field optional, applied over a base.
public struct ProfileOverride: Sendable, Equatable, Codable {
    public var base: String?
    public var description: String?
    public var keyUsage: [String]?
    public var extendedKeyUsage: [String]?
    public var defaultDays: Int?
    public var maxDays: Int?
    public var defaultValidity: ValidityPeriod?
    public var maxValidity: ValidityPeriod?
    public var allowedKeyTypes: [String]?
    public var allowedNames: [String]?
    public var deniedNames: [String]?
    public var allowedSANTypes: [String]?
    public var requireSAN: Bool?
    public var requiredSubject: [String]?
    public var keepCommonName: Bool?
    public var keepSubjectAttributes: [String]?
    public var requireApproval: Bool?
    public var policies: [String]?
    public var cabForumBaselineRequirements: Bool?

    enum CodingKeys: String, CodingKey {
        case base, description
        case keyUsage = "key_usage", extendedKeyUsage = "extended_key_usage", defaultDays = "default_days", maxDays = "max_days"
        case defaultValidity = "default_validity", maxValidity = "max_validity"
        case allowedKeyTypes = "allowed_key_types", allowedNames = "allowed_names", deniedNames = "denied_names"
        case allowedSANTypes = "allowed_san_types", requireSAN = "require_san", requiredSubject = "required_subject"
        case keepCommonName = "keep_common_name", keepSubjectAttributes = "keep_subject_attributes"
        case requireApproval = "require_approval", policies, cabForumBaselineRequirements = "cabf_baseline_requirements"
    }

    public init() {}

    /// The profile `name` with this override applied to its base: the built-in
    /// of the same name, else `base`, else `tls-client`.
    public func apply(name: String, profiles: [String: CertificateProfile]) throws -> CertificateProfile {
        let baseName = base ?? (profiles[name] != nil ? name : "tls-client")
        guard var p = profiles[baseName] else { throw SigilError.badInput("profile '\(name)': unknown base profile '\(baseName)'") }
        p.name = name
        if let v = description { p.description = v }
        if let v = keyUsage { p.keyUsage = v }
        if let v = extendedKeyUsage { p.extendedKeyUsage = v }
        // A whole-day setting here overrides a finer one inherited from the base, and vice versa.
        if let v = defaultDays { p.defaultDays = v; p.defaultValidity = nil }
        if let v = maxDays { p.maxDays = v; p.maxValidity = nil }
        if let v = defaultValidity { p.defaultValidity = v }
        if let v = maxValidity { p.maxValidity = v }
        if let v = allowedKeyTypes { p.allowedKeyTypes = v }
        if let v = allowedNames { p.allowedNames = v }
        if let v = deniedNames { p.deniedNames = v }
        if let v = allowedSANTypes { p.allowedSANTypes = v }
        if let v = requireSAN { p.requireSAN = v }
        if let v = requiredSubject { p.requiredSubject = v }
        if let v = keepCommonName { p.keepCommonName = v }
        if let v = keepSubjectAttributes { p.keepSubjectAttributes = v }
        if let v = requireApproval { p.requireApproval = v }
        if let v = policies { p.policies = v }
        if let v = cabForumBaselineRequirements { p.cabForumBaselineRequirements = v }
        try p.validate()
        return p
    }
}

extension CertificateProfile {
    /// Checks that every name in the profile means something.
    public func validate() throws {
        var problems: [String] = []
        if (try? UsageNames.parseKeyUsage(keyUsage)) == nil { problems.append("unknown key usage in \(keyUsage)") }
        if (try? UsageNames.parseExtendedKeyUsage(extendedKeyUsage)) == nil { problems.append("unknown extended key usage in \(extendedKeyUsage)") }
        for type in allowedKeyTypes where (try? KeyType(parsing: type)) == nil { problems.append("unknown key type '\(type)'") }
        for pattern in allowedNames + deniedNames {
            do { _ = try NamePattern(pattern) } catch let error as SigilError { problems.append(error.message) }
        }
        if defaultDays < 1 || maxDays < 1 { problems.append("validity must be at least one day") }
        if defaultValidity == nil, maxValidity == nil, defaultDays > maxDays {
            problems.append("default_days (\(defaultDays)) exceeds max_days (\(maxDays))")
        }
        for (key, value) in [("default_validity", defaultValidity), ("max_validity", maxValidity)] {
            if let value, value < CertificateProfile.minimumValidity {
                problems.append("\(key) (\(value)) is shorter than the minimum of \(CertificateProfile.minimumValidity)")
            }
        }
        if defaultValidity != nil || maxValidity != nil, effectiveDefaultValidity > effectiveMaxValidity {
            problems.append("the default validity (\(effectiveDefaultValidity)) exceeds the maximum (\(effectiveMaxValidity))")
        }
        for policy in policies where (try? ASN1ObjectIdentifier(dotRepresentation: policy)) == nil { problems.append("invalid policy OID '\(policy)'") }
        if !problems.isEmpty { throw SigilError(.badInput, "profile '\(name)' is invalid", reasons: problems) }
    }
}

extension CertificateProfile {
    /// Shorter lifetimes leave no room for clock skew or a renewal.
    public static let minimumValidity = ValidityPeriod(seconds: 60)

    /// The lifetime of a certificate issued without a requested number of days.
    public var effectiveDefaultValidity: ValidityPeriod { defaultValidity ?? .days(defaultDays) }

    /// The longest lifetime this profile allows (before the Baseline Requirements' cap).
    public var effectiveMaxValidity: ValidityPeriod { maxValidity ?? .days(maxDays) }
}

/// The Baseline Requirements' maximum validity for TLS subscriber certificates
/// (BR §6.3.2 as amended by ballot SC-081): 398 days, then 200 from 2026-03-15,
/// 100 from 2027-03-15, 47 from 2029-03-15.
public enum BaselineRequirements {
    /// The limit before the first step.
    public static let initialMaximumDays = 398
    /// (Unix time the step takes effect, maximum days from then), in time order.
    public static let steps: [(start: Int64, days: Int)] = [(1_773_532_800, 200), (1_805_068_800, 100), (1_868_140_800, 47)]

    public static func maximumValidityDays(at date: Date) -> Int {
        var days = initialMaximumDays
        for (start, limit) in steps where Int64(date.timeIntervalSince1970) >= start { days = limit }
        return days
    }
}
