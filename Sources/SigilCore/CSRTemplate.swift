import Foundation
import X509

/// Corporate standards for requests, usually kept in a YAML file:
///
/// ```yaml
/// subject:
///   fixed: {O: Example Corp, C: US}   # set when absent; a different value is a violation
///   required: [CN, O]
/// key_types: [ec:P-256, ec:P-384, rsa:3072]
/// san:
///   required_suffixes: [.example.com] # every DNS SAN must be under one of them
///   allowed_types: [DNS, IP]
///   min: 1
///   max: 10
/// ```
/// A template never silently changes what a user gave: it fills in absent fixed
/// attributes and otherwise returns every rule the request breaks.
public struct CSRTemplate: Codable, Sendable, Equatable {
    public struct Subject: Codable, Sendable, Equatable {
        public var fixed: [String: String]?
        public var required: [String]?
        public init(fixed: [String: String]? = nil, required: [String]? = nil) {
            self.fixed = fixed
            self.required = required
        }
    }

    public struct SANRules: Codable, Sendable, Equatable {
        public var requiredSuffixes: [String]?
        public var allowedTypes: [String]?
        public var min: Int?
        public var max: Int?
        enum CodingKeys: String, CodingKey {
            case requiredSuffixes = "required_suffixes", allowedTypes = "allowed_types", min, max
        }
        public init(requiredSuffixes: [String]? = nil, allowedTypes: [String]? = nil, min: Int? = nil, max: Int? = nil) {
            self.requiredSuffixes = requiredSuffixes
            self.allowedTypes = allowedTypes
            self.min = min
            self.max = max
        }
    }

    public var subject: Subject?
    public var keyTypes: [String]?
    public var san: SANRules?

    enum CodingKeys: String, CodingKey { case subject, keyTypes = "key_types", san }

    public init(subject: Subject? = nil, keyTypes: [String]? = nil, san: SANRules? = nil) {
        self.subject = subject
        self.keyTypes = keyTypes
        self.san = san
    }

    /// Checks the template itself: attribute names, key types and SAN types must all be known.
    public func validate() throws {
        var problems: [String] = []
        for name in (subject?.fixed?.keys.sorted() ?? []) + (subject?.required ?? []) where SubjectAttributeType.named(name) == nil {
            problems.append("unknown subject attribute '\(name)'")
        }
        for type in keyTypes ?? [] {
            do { _ = try KeyType(parsing: type) } catch let error as SigilError { problems.append(error.message) }
        }
        for type in san?.allowedTypes ?? [] where !["dns", "ip", "email", "uri"].contains(type.lowercased()) {
            problems.append("unknown SAN type '\(type)' (use DNS, IP, email, URI)")
        }
        if !problems.isEmpty {
            throw SigilError(.badInput, "the template is invalid", reasons: problems)
        }
    }

    /// Fills in fixed subject attributes the request lacks, in the conventional
    /// order (C, ST, L, O, OU, CN, ...).
    public func apply(to request: inout CSRRequest) throws {
        guard let fixed = subject?.fixed, !fixed.isEmpty else { return }
        var rdns = Array(request.subject)
        let order = SubjectAttributeType.all
        func rank(_ rdn: RelativeDistinguishedName) -> Int {
            guard let first = rdn.first else { return order.count }
            return order.firstIndex { $0.oid == first.type } ?? order.count
        }
        for (name, value) in fixed.sorted(by: { $0.key < $1.key }) {
            guard let type = SubjectAttributeType.named(name) else { continue }
            if !request.subject.values(of: type).isEmpty { continue }
            let attribute = try DistinguishedName.makeAttribute(name: name, value: value, context: "template subject.fixed")
            let newRank = order.firstIndex(of: type) ?? order.count
            let position = rdns.firstIndex { rank($0) > newRank } ?? rdns.count
            rdns.insert(RelativeDistinguishedName(attribute), at: position)
        }
        request.subject = DistinguishedName(rdns)
    }

    /// Every rule the request breaks, in template order; empty when it complies.
    public func violations(subject name: DistinguishedName, subjectAltNames: [SubjectAltName], keyType: KeyType?) -> [String] {
        var out: [String] = []
        for (attribute, expected) in (subject?.fixed ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let type = SubjectAttributeType.named(attribute) else { continue }
            let values = name.values(of: type)
            if values.isEmpty {
                out.append("subject \(type.shortName) must be '\(expected)'")
            } else if values.contains(where: { $0 != expected }) {
                out.append("subject \(type.shortName) must be '\(expected)', not '\(values.first { $0 != expected }!)'")
            }
        }
        for attribute in subject?.required ?? [] {
            guard let type = SubjectAttributeType.named(attribute) else { continue }
            if name.values(of: type).isEmpty { out.append("subject \(type.shortName) is required") }
        }
        if let allowed = keyTypes, !allowed.isEmpty, let keyType {
            let allowedTypes = allowed.compactMap { try? KeyType(parsing: $0) }
            if !allowedTypes.contains(keyType) {
                out.append("key type \(keyType) is not allowed (allowed: \(allowedTypes.map(\.description).joined(separator: ", ")))")
            }
        }
        if let rules = san {
            if let types = rules.allowedTypes {
                let allowed = Set(types.map { $0.lowercased() })
                for entry in subjectAltNames where !allowed.contains(entry.typeName.lowercased()) {
                    out.append("SAN \(entry) is not allowed: only \(types.joined(separator: ", ")) names")
                }
            }
            if let suffixes = rules.requiredSuffixes, !suffixes.isEmpty {
                for case .dns(let host) in subjectAltNames where !suffixes.contains(where: { CSRTemplate.isUnder(host, suffix: $0) }) {
                    out.append("SAN DNS:\(host) is not under \(suffixes.joined(separator: " or "))")
                }
            }
            if let min = rules.min, subjectAltNames.count < min {
                out.append("at least \(min) SAN\(min == 1 ? "" : "s") required, found \(subjectAltNames.count)")
            }
            if let max = rules.max, subjectAltNames.count > max {
                out.append("at most \(max) SANs allowed, found \(subjectAltNames.count)")
            }
        }
        return out
    }

    /// `www.example.com` is under `.example.com` and `example.com`; `badexample.com` is not.
    public static func isUnder(_ host: String, suffix: String) -> Bool {
        let h = host.lowercased()
        var s = suffix.lowercased()
        if s.hasPrefix("*.") { s.removeFirst() }
        if s.hasPrefix(".") { return h.hasSuffix(s) && h.count > s.count }
        return h == s || h.hasSuffix("." + s)
    }
}
