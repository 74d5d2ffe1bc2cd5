import Foundation
import NIOCore
import SigilACME
import SigilCore

/// The `acme:` section of sigil.yaml.
struct ACMESettings: Decodable {
    var enabled: Bool?
    var http01Port: Int?
    var tlsALPN01Port: Int?
    var dnsResolver: String?
    var eabRequired: Bool?
    var insecureSkipValidation: Bool?
    var termsOfService: String?
    var website: String?
    var caaIdentities: [String]?
    var validationTimeoutSeconds: Int?
    var rateLimits: RateLimits?
    var provisioners: [Provisioner]?

    struct RateLimits: Decodable {
        var ordersPerAccountPerHour: Int?
        var ordersPerNamePerHour: Int?
        enum CodingKeys: String, CodingKey {
            case ordersPerAccountPerHour = "orders_per_account_per_hour", ordersPerNamePerHour = "orders_per_name_per_hour"
        }
    }

    struct Profile: Decodable {
        var profile: String
        var days: Int?
        var description: String?
    }

    struct Provisioner: Decodable {
        var name: String
        var defaultProfile: String?
        var profiles: [String: Profile]?
        var allowedNames: [String]?
        var issuer: String?
        var eabRequired: Bool?
        var challenges: [String]?
        enum CodingKeys: String, CodingKey {
            case name, defaultProfile = "default_profile", profiles, allowedNames = "allowed_names", issuer, eabRequired = "eab_required", challenges
        }
    }

    enum CodingKeys: String, CodingKey {
        case enabled, http01Port = "http01_port", tlsALPN01Port = "tls_alpn01_port", dnsResolver = "dns_resolver", eabRequired = "eab_required"
        case insecureSkipValidation = "insecure_skip_validation", termsOfService = "terms_of_service", website, caaIdentities = "caa_identities"
        case validationTimeoutSeconds = "validation_timeout_seconds", rateLimits = "rate_limits", provisioners
    }

    /// The server's ACME configuration; every mistake is reported at once.
    func configuration(knownProfiles: Set<String>) throws -> ACMEConfiguration {
        var problems: [String] = []
        for (key, port) in [("http01_port", http01Port), ("tls_alpn01_port", tlsALPN01Port)] {
            if let port, !(1...65535).contains(port) { problems.append("acme.\(key) must be between 1 and 65535") }
        }
        if let resolver = dnsResolver, (try? DNSClient(resolver: resolver)) == nil {
            problems.append("acme.dns_resolver '\(resolver)' must be IP:PORT (or an IP address)")
        }
        let validation = ValidationSettings(http01Port: http01Port ?? 80, tlsALPN01Port: tlsALPN01Port ?? 443, dnsResolver: dnsResolver,
                                            timeout: .seconds(Int64(validationTimeoutSeconds ?? 10)))
        var provisioners: [ACMEProvisioner] = []
        for item in self.provisioners ?? [Provisioner(name: "acme")] {
            var patterns: [NamePattern] = []
            for text in item.allowedNames ?? [] {
                do { patterns.append(try NamePattern(text)) } catch { problems.append("ACME provisioner '\(item.name)': \(error)") }
            }
            var profiles = ACMEProvisioner.standardProfiles
            if let configured = item.profiles {
                profiles = configured.mapValues { ACMEProfile(description: $0.description ?? "\($0.profile) certificate", profile: $0.profile, days: $0.days) }
            }
            provisioners.append(ACMEProvisioner(
                name: item.name, profiles: profiles, defaultProfile: item.defaultProfile ?? (profiles["classic"] != nil ? "classic" : profiles.keys.sorted().first ?? "classic"),
                allowedNames: patterns, issuer: item.issuer, eabRequired: item.eabRequired ?? eabRequired ?? true,
                challengeTypes: item.challenges ?? ["http-01", "dns-01", "tls-alpn-01"]))
        }
        if Set(provisioners.map(\.name)).count != provisioners.count { problems.append("ACME provisioner names must be unique") }
        let configuration = ACMEConfiguration(
            provisioners: provisioners, validation: validation,
            rateLimits: ACMERateLimits(ordersPerAccountPerHour: rateLimits?.ordersPerAccountPerHour ?? 300,
                                       ordersPerNamePerHour: rateLimits?.ordersPerNamePerHour ?? 100),
            termsOfService: termsOfService, website: website, caaIdentities: caaIdentities ?? [],
            insecureSkipValidation: insecureSkipValidation ?? false)
        problems += configuration.problems(knownProfiles: knownProfiles)
        if !problems.isEmpty {
            throw SigilError(.badInput, "the acme section of sigil.yaml has \(problems.count) problem\(problems.count == 1 ? "" : "s"):", reasons: problems)
        }
        return configuration
    }
}
