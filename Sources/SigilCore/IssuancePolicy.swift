import Foundation
import SwiftASN1
import X509

/// Everything that will go into a certificate, decided step by step by policy.
public struct IssuancePlan: Sendable {
    public var subject: DistinguishedName
    public var subjectAltNames: [SubjectAltName]
    public var publicKey: PublicKey
    public var notBefore: Date
    public var notAfter: Date
    public var keyUsage: KeyUsage
    public var extendedKeyUsage: [ExtendedKeyUsage.Usage]
    public var isCA: Bool
    public var pathLength: Int?
    public var policies: [ASN1ObjectIdentifier]
    public var ocspNoCheck: Bool
    public var revocationURLs: Bool
}

/// The outcome of policy: the plan, what policy changed (never silently), every
/// rule broken, and whether a person must decide.
public struct PolicyVerdict: Sendable {
    public var plan: IssuancePlan
    public var violations: [String]
    public var modifications: [String]
    public var needsApproval: Bool

    public var isRejected: Bool { !violations.isEmpty }
}

/// What policy looks at besides the request.
public struct PolicyContext: Sendable {
    public var profile: CertificateProfile
    public var requestedDays: Int?
    public var now: Date
    /// Names the requester may ask for (a token's allowed names); nil: no restriction.
    public var requesterAllowedNames: [NamePattern]?
    /// The issuer's own expiry: a certificate must not outlive its issuer.
    public var issuerNotAfter: Date?
    /// The issuer's extended key usages; nil when its certificate has none (any purpose).
    public var issuerExtendedKeyUsage: [ExtendedKeyUsage.Usage]?
    /// The issuer's pathLenConstraint; nil when unlimited.
    public var issuerPathLength: Int?
    public var issuerName: String

    public init(profile: CertificateProfile, requestedDays: Int? = nil, now: Date, requesterAllowedNames: [NamePattern]? = nil, issuerNotAfter: Date? = nil,
                issuerExtendedKeyUsage: [ExtendedKeyUsage.Usage]? = nil, issuerPathLength: Int? = nil, issuerName: String = "the issuer") {
        self.issuerExtendedKeyUsage = issuerExtendedKeyUsage
        self.issuerPathLength = issuerPathLength
        self.issuerName = issuerName
        self.profile = profile
        self.requestedDays = requestedDays
        self.now = now
        self.requesterAllowedNames = requesterAllowedNames
        self.issuerNotAfter = issuerNotAfter
    }
}

/// One step of policy: a validator adds violations, a modifier changes the plan
/// and says what it changed. Steps run in a fixed, documented order.
public protocol PolicyRule: Sendable {
    var name: String { get }
    func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ verdict: inout PolicyFindings)
}

public struct PolicyFindings: Sendable {
    public var violations: [String] = []
    public var modifications: [String] = []
    public var needsApproval = false
}

/// The policy engine: runs every rule (it never stops at the first violation)
/// and returns a verdict with all reasons.
public struct IssuancePolicy: Sendable {
    public var rules: [any PolicyRule]

    /// The standard order: proof of possession, key, signature hash, names,
    /// name policy, subject, validity, usages, approval.
    public static let standard = IssuancePolicy(rules: [
        ProofOfPossessionRule(), KeyRule(), SignatureHashRule(), SubjectAltNameRule(), NamePolicyRule(),
        SubjectRule(), ValidityRule(), UsageRule(), IssuerConstraintsRule(), ApprovalRule(),
    ])

    public init(rules: [any PolicyRule]) {
        self.rules = rules
    }

    public func evaluate(_ csr: CertificationRequest, context: PolicyContext) throws -> PolicyVerdict {
        guard let publicKey = csr.publicKey else {
            return PolicyVerdict(
                plan: IssuancePlan(subject: csr.subject, subjectAltNames: [], publicKey: try PrivateKey.generate(.ed25519).publicKey,
                                   notBefore: context.now, notAfter: context.now, keyUsage: KeyUsage(), extendedKeyUsage: [], isCA: false,
                                   pathLength: nil, policies: [], ocspNoCheck: false, revocationURLs: false),
                violations: [csr.publicKeyProblem ?? "unsupported public key"], modifications: [], needsApproval: false)
        }
        var plan = IssuancePlan(
            subject: csr.subject, subjectAltNames: (try? csr.subjectAltNames()) ?? [], publicKey: publicKey,
            notBefore: context.now, notAfter: context.now, keyUsage: KeyUsage(), extendedKeyUsage: [], isCA: context.profile.isCA,
            pathLength: context.profile.pathLength, policies: context.profile.policies.compactMap { try? ASN1ObjectIdentifier(dotRepresentation: $0) },
            ocspNoCheck: context.profile.ocspNoCheck, revocationURLs: context.profile.revocationURLs)
        var findings = PolicyFindings()
        for rule in rules {
            rule.apply(csr, context, &plan, &findings)
        }
        return PolicyVerdict(plan: plan, violations: findings.violations, modifications: findings.modifications, needsApproval: findings.needsApproval)
    }
}

/// RFC 2986 §3: the request is signed by the key it names.
public struct ProofOfPossessionRule: PolicyRule {
    public let name = "proof-of-possession"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        if !csr.isSignatureValid {
            findings.violations.append("the request's signature does not verify: the requester has not proved possession of the key")
        }
    }
}

/// Key types and sizes: the profile's list, Sigil's minimums, and BR §6.1.5.
public struct KeyRule: PolicyRule {
    public let name = "key"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let type = plan.publicKey.keyType
        if case .rsa(let bits) = type, bits < KeyType.minimumRSABits || bits % 8 != 0 {
            findings.violations.append("RSA key of \(bits) bits: at least \(KeyType.minimumRSABits) bits, a multiple of 8, are required")
            return
        }
        let allowed = context.profile.allowedKeyTypes.compactMap { try? KeyType(parsing: $0) }
        if !allowed.isEmpty {
            let ok = allowed.contains(type) || allowed.contains { candidate in
                // An RSA entry admits any larger RSA key up to the next listed size.
                if case .rsa(let min) = candidate, case .rsa(let bits) = type { return bits >= min && bits <= KeyType.maximumRSABits }
                return false
            }
            if !ok {
                findings.violations.append("key type \(type) is not allowed by profile '\(context.profile.name)' (allowed: \(allowed.map(\.description).joined(separator: ", ")))")
            }
        }
    }
}

/// BR §7.1.3.2 and NIST SP 800-131A: no SHA-1 or MD5 signatures anywhere.
public struct SignatureHashRule: PolicyRule {
    public let name = "signature-hash"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        if csr.signatureAlgorithm.usesWeakHash {
            findings.violations.append("the request is signed with \(csr.signatureAlgorithm); SHA-1 and MD5 are not accepted")
        }
    }
}

/// SAN presence, kinds and syntax (RFC 5280 §4.2.1.6, BR §7.1.2.7.12).
public struct SubjectAltNameRule: PolicyRule {
    public let name = "subject-alt-names"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        do {
            _ = try csr.subjectAltNames()
        } catch {
            findings.violations.append("the request's subjectAltName extension is malformed")
        }
        let profile = context.profile
        if profile.requireSAN && plan.subjectAltNames.isEmpty {
            findings.violations.append("profile '\(profile.name)' requires at least one subject alternative name")
        }
        let allowedTypes = Set(profile.allowedSANTypes.map { $0.lowercased() })
        for entry in plan.subjectAltNames {
            if !allowedTypes.contains(entry.typeName.lowercased()) {
                findings.violations.append("SAN \(entry): profile '\(profile.name)' allows only \(profile.allowedSANTypes.joined(separator: ", ")) names")
                continue
            }
            switch entry {
            case .dns(let host):
                if let problem = NameRules.dnsNameProblem(host) { findings.violations.append("SAN \(entry): \(problem)") }
            case .email(let address):
                if let problem = NameRules.emailProblem(address) { findings.violations.append("SAN \(entry): \(problem)") }
            case .uri(let uri):
                if let problem = NameRules.uriProblem(uri) { findings.violations.append("SAN \(entry): \(problem)") }
            case .ip(let bytes) where bytes.count != 4 && bytes.count != 16:
                findings.violations.append("SAN \(entry): not an IPv4 or IPv6 address")
            case .other(let text):
                findings.violations.append("SAN \(text): only DNS, IP, email and URI names are issued")
            default:
                break
            }
        }
    }
}

/// The profile's allowed and denied name patterns, and the requester's own limits.
public struct NamePolicyRule: PolicyRule {
    public let name = "name-policy"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let allowed = context.profile.allowedNames.compactMap { try? NamePattern($0) }
        let denied = context.profile.deniedNames.compactMap { try? NamePattern($0) }
        for entry in plan.subjectAltNames {
            if let rule = denied.first(where: { $0.matches(entry) }) {
                findings.violations.append("\(entry) is denied by profile '\(context.profile.name)' (rule \(rule))")
            } else if !allowed.isEmpty && !allowed.contains(where: { $0.matches(entry) }) {
                findings.violations.append("\(entry) is not among the names profile '\(context.profile.name)' allows (\(allowed.map(\.description).joined(separator: ", ")))")
            }
            if let limits = context.requesterAllowedNames, !limits.contains(where: { $0.matches(entry) }) {
                findings.violations.append("\(entry) is not among the names this requester may request")
            }
        }
    }
}

/// Required attributes, the CN rule (BR §7.1.4.3: a CN repeats a SAN), and which
/// attributes the profile keeps. Dropped attributes are reported, not hidden.
public struct SubjectRule: PolicyRule {
    public let name = "subject"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let profile = context.profile
        for attribute in profile.requiredSubject {
            guard let type = SubjectAttributeType.named(attribute) else { continue }
            if csr.subject.values(of: type).isEmpty {
                findings.violations.append("profile '\(profile.name)' requires the subject attribute \(type.shortName)")
            }
        }
        let commonNames = csr.subject.values(of: .commonName)
        if commonNames.count > 1 {
            findings.violations.append("the subject has \(commonNames.count) common names; at most one is allowed")
        }
        if profile.keepCommonName, let cn = commonNames.first {
            let ip = NameRules.parseIPAddress(cn)
            let hostLike = ip != nil || NameRules.looksLikeDNSName(cn)
            let asSAN: SubjectAltName = ip.map { .ip($0) } ?? .dns(cn.lowercased())
            if (profile.cabForumBaselineRequirements || (profile.requireSAN && hostLike)) && !plan.subjectAltNames.contains(asSAN) {
                findings.violations.append("CN '\(cn)' is not one of the subject alternative names (BR 7.1.4.3)")
            }
        }
        var kept: [RelativeDistinguishedName] = []
        var dropped: [String] = []
        let keep = Set(profile.keepSubjectAttributes.compactMap { SubjectAttributeType.named($0)?.oid })
        for rdn in csr.subject {
            var attributes: [RelativeDistinguishedName.Attribute] = []
            for attribute in rdn {
                if attribute.type == SubjectAttributeType.commonName.oid ? profile.keepCommonName : keep.contains(attribute.type) {
                    attributes.append(attribute)
                } else {
                    let name = SubjectAttributeType.forOID(attribute.type)?.shortName ?? attribute.type.description
                    dropped.append("\(name)=\(String(attribute.value) ?? "…")")
                }
            }
            if !attributes.isEmpty { kept.append(RelativeDistinguishedName(attributes)) }
        }
        if !dropped.isEmpty {
            findings.modifications.append("subject attributes not kept by profile '\(profile.name)': \(dropped.joined(separator: ", "))")
        }
        plan.subject = DistinguishedName(kept)
        if plan.subject.isEmpty && plan.subjectAltNames.isEmpty {
            findings.violations.append("the certificate would name nothing: no subject and no subject alternative names")
        }
    }
}

/// Lifetime: the profile's default and maximum, the BR cap that moves with the
/// date (BR §6.3.2), and the issuer's own expiry. A request for more is refused,
/// never shortened silently.
public struct ValidityRule: PolicyRule {
    public let name = "validity"
    /// Backdating absorbs clock skew between the CA and relying parties.
    public static let backdate: TimeInterval = 60
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let profile = context.profile
        if profile.defaultValidity != nil || profile.maxValidity != nil {
            return applyFine(context, &plan, &findings)
        }
        var maximum = profile.maxDays
        var source = "profile '\(profile.name)'"
        if profile.cabForumBaselineRequirements {
            let br = BaselineRequirements.maximumValidityDays(at: context.now)
            if br < maximum { maximum = br; source = "the CA/Browser Forum Baseline Requirements (6.3.2) on this date" }
        }
        let days = context.requestedDays ?? min(profile.defaultDays, maximum)
        if days < 1 {
            findings.violations.append("validity of \(days) days: at least 1 day is required")
        } else if days > maximum {
            findings.violations.append("validity of \(days) days exceeds the maximum of \(maximum) days set by \(source)")
        }
        let start = ASN1Time.truncate(context.now.addingTimeInterval(-ValidityRule.backdate))
        plan.notBefore = start
        // RFC 5280 §4.1.2.5: both ends are inclusive, so N days end one second early.
        plan.notAfter = start.addingTimeInterval(Double(max(days, 1)) * 86_400 - 1)
        checkIssuer(context, plan, &findings)
    }

    /// Lifetimes from `default_validity` / `max_validity` (seconds, not days). The backdate
    /// shrinks to a tenth of a short lifetime so that it does not eat most of it.
    private func applyFine(_ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let profile = context.profile
        var maximum = profile.effectiveMaxValidity
        var source = "profile '\(profile.name)'"
        if profile.cabForumBaselineRequirements {
            let br = ValidityPeriod.days(BaselineRequirements.maximumValidityDays(at: context.now))
            if br < maximum { maximum = br; source = "the CA/Browser Forum Baseline Requirements (6.3.2) on this date" }
        }
        let lifetime: ValidityPeriod
        if let days = context.requestedDays {
            lifetime = .days(days)
            if days < 1 { findings.violations.append("validity of \(days) days: at least 1 day is required") }
        } else {
            lifetime = min(profile.effectiveDefaultValidity, maximum)
        }
        if lifetime > maximum {
            findings.violations.append("validity of \(lifetime) exceeds the maximum of \(maximum) set by \(source)")
        }
        let seconds = max(lifetime.seconds, CertificateProfile.minimumValidity.seconds)
        let backdate = min(ValidityRule.backdate, (TimeInterval(seconds) / 10).rounded(.down))
        let start = ASN1Time.truncate(context.now.addingTimeInterval(-backdate))
        plan.notBefore = start
        plan.notAfter = start.addingTimeInterval(TimeInterval(seconds) - 1)
        checkIssuer(context, plan, &findings)
    }

    private func checkIssuer(_ context: PolicyContext, _ plan: IssuancePlan, _ findings: inout PolicyFindings) {
        if let issuerEnd = context.issuerNotAfter, plan.notAfter > issuerEnd {
            findings.violations.append("the certificate would outlive its issuer (the issuer expires \(RFC3339.string(issuerEnd)))")
        }
    }
}

/// Key usage and extended key usage from the profile, fitted to the key type.
public struct UsageRule: PolicyRule {
    public let name = "usage"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        let profile = context.profile
        var usage = (try? UsageNames.parseKeyUsage(profile.keyUsage)) ?? KeyUsage(digitalSignature: true)
        if case .rsa = plan.publicKey.keyType, profile.rsaKeyEncipherment { usage.keyEncipherment = true }
        plan.keyUsage = usage
        plan.extendedKeyUsage = (try? UsageNames.parseExtendedKeyUsage(profile.extendedKeyUsage)) ?? []
        if let requested = try? csr.requestedExtensions(), let ext = requested.first(where: { $0.oid == .X509ExtensionID.basicConstraints }),
           case .isCertificateAuthority = try? BasicConstraints(ext), !profile.isCA {
            findings.violations.append("the request asks for a CA certificate; profile '\(profile.name)' issues end-entity certificates")
        }
    }
}

/// What the issuer's own certificate allows: relying parties chain extended key
/// usage through intermediates (OpenSSL, NSS, Windows) and enforce
/// pathLenConstraint (RFC 5280 §4.2.1.9), so a certificate the chain cannot
/// carry is refused here rather than issued unusable.
public struct IssuerConstraintsRule: PolicyRule {
    public let name = "issuer-constraints"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        if let allowed = context.issuerExtendedKeyUsage, !allowed.contains(.any) {
            // OCSP responder certificates are exempt: relying parties check OCSPSigning on the
            // responder alone (RFC 6960 §4.2.2.2; OpenSSL checks only CA status above it).
            let missing = plan.extendedKeyUsage.filter { !allowed.contains($0) && $0 != .ocspSigning }
            if !missing.isEmpty {
                findings.violations.append(
                    "CA '\(context.issuerName)' may only issue \(allowed.map(UsageNames.extendedKeyUsageName).joined(separator: ", ")) certificates, not \(missing.map(UsageNames.extendedKeyUsageName).joined(separator: ", ")); use an intermediate created with a matching --eku (or --eku none)")
            }
        }
        if plan.isCA, let limit = context.issuerPathLength {
            if limit == 0 {
                findings.violations.append("CA '\(context.issuerName)' has pathLenConstraint 0: a CA certificate it issued could not issue anything")
            } else if (plan.pathLength ?? Int.max) >= limit {
                plan.pathLength = limit - 1
                findings.modifications.append("pathLenConstraint set to \(limit - 1) to fit under CA '\(context.issuerName)' (pathLen \(limit))")
            }
        }
    }
}

/// Profiles that want a person put the request in `pending`.
public struct ApprovalRule: PolicyRule {
    public let name = "approval"
    public init() {}
    public func apply(_ csr: CertificationRequest, _ context: PolicyContext, _ plan: inout IssuancePlan, _ findings: inout PolicyFindings) {
        if context.profile.requireApproval { findings.needsApproval = true }
    }
}
