import Foundation
import SigilCore

/// An ACME profile (the profiles extension Let's Encrypt serves) mapped onto a Sigil profile.
public struct ACMEProfile: Sendable, Equatable {
    public var description: String
    /// The Sigil certificate profile that issues it.
    public var profile: String
    /// Validity in days; nil: the Sigil profile's default.
    public var days: Int?

    public init(description: String, profile: String, days: Int? = nil) {
        self.description = description
        self.profile = profile
        self.days = days
    }
}

/// One ACME directory with its own policy: `/acme/{name}/directory`.
public struct ACMEProvisioner: Sendable {
    public var name: String
    /// ACME profiles offered in the directory, by name.
    public var profiles: [String: ACMEProfile]
    public var defaultProfile: String
    /// Identifier patterns this provisioner may certify; empty: any name policy allows.
    public var allowedNames: [NamePattern]
    /// The issuing CA; nil: the default issuer.
    public var issuer: String?
    /// RFC 8555 §7.3.4: new accounts must carry an External Account Binding.
    public var eabRequired: Bool
    public var challengeTypes: [String]

    public static let standardProfiles: [String: ACMEProfile] = [
        "classic": ACMEProfile(description: "TLS server certificate, the tls-server profile's default validity", profile: "tls-server"),
        "shortlived": ACMEProfile(description: "TLS server certificate valid for 6 days", profile: "tls-server", days: 6),
    ]

    public init(name: String, profiles: [String: ACMEProfile] = ACMEProvisioner.standardProfiles, defaultProfile: String = "classic",
                allowedNames: [NamePattern] = [], issuer: String? = nil, eabRequired: Bool = true,
                challengeTypes: [String] = ["http-01", "dns-01", "tls-alpn-01"]) {
        self.name = name
        self.profiles = profiles
        self.defaultProfile = defaultProfile
        self.allowedNames = allowedNames
        self.issuer = issuer
        self.eabRequired = eabRequired
        self.challengeTypes = challengeTypes
    }
}

/// Limits that keep one client from monopolising the CA (answered with `rateLimited`).
public struct ACMERateLimits: Sendable {
    /// New orders per account per hour.
    public var ordersPerAccountPerHour: Int
    /// New orders naming one identifier per hour.
    public var ordersPerNamePerHour: Int

    public init(ordersPerAccountPerHour: Int = 300, ordersPerNamePerHour: Int = 100) {
        self.ordersPerAccountPerHour = ordersPerAccountPerHour
        self.ordersPerNamePerHour = ordersPerNamePerHour
    }
}

public struct ACMEConfiguration: Sendable {
    public var provisioners: [String: ACMEProvisioner]
    public var validation: ValidationSettings
    public var rateLimits: ACMERateLimits
    public var termsOfService: String?
    public var website: String?
    public var caaIdentities: [String]
    /// How long a new order and its pending authorizations stay open.
    public var orderLifetime: TimeInterval
    /// How long a valid authorization is reused for new orders of the same account.
    public var authorizationReuse: TimeInterval
    /// Test only: challenges pass without any check, and every request logs a warning.
    public var insecureSkipValidation: Bool

    public init(provisioners: [ACMEProvisioner] = [ACMEProvisioner(name: "acme")], validation: ValidationSettings = ValidationSettings(),
                rateLimits: ACMERateLimits = ACMERateLimits(), termsOfService: String? = nil, website: String? = nil, caaIdentities: [String] = [],
                orderLifetime: TimeInterval = 7 * 86_400, authorizationReuse: TimeInterval = 30 * 86_400, insecureSkipValidation: Bool = false) {
        self.provisioners = Dictionary(provisioners.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.validation = validation
        self.rateLimits = rateLimits
        self.termsOfService = termsOfService
        self.website = website
        self.caaIdentities = caaIdentities
        self.orderLifetime = orderLifetime
        self.authorizationReuse = authorizationReuse
        self.insecureSkipValidation = insecureSkipValidation
    }

    /// Checks every provisioner against the CA's profiles; returns every problem found.
    public func problems(knownProfiles: Set<String>) -> [String] {
        var problems: [String] = []
        for p in provisioners.values.sorted(by: { $0.name < $1.name }) {
            if p.name.isEmpty || !p.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) {
                problems.append("ACME provisioner name '\(p.name)' may contain only letters, digits, '-' and '_'")
            }
            if p.profiles[p.defaultProfile] == nil { problems.append("ACME provisioner '\(p.name)': default profile '\(p.defaultProfile)' is not among its profiles") }
            for (name, profile) in p.profiles.sorted(by: { $0.key < $1.key }) where !knownProfiles.contains(profile.profile) {
                problems.append("ACME provisioner '\(p.name)': profile '\(name)' maps to unknown Sigil profile '\(profile.profile)'")
            }
            for type in p.challengeTypes where !["http-01", "dns-01", "tls-alpn-01"].contains(type) {
                problems.append("ACME provisioner '\(p.name)': unknown challenge type '\(type)'")
            }
        }
        return problems
    }
}
