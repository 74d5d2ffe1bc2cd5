import ArgumentParser
import Foundation
import SigilCore
import SigilServer
import SwiftASN1
import X509
import Yams

struct CSRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csr",
        abstract: "Make, inspect and lint certificate signing requests.",
        subcommands: [CSRNew.self, CSRShow.self, CSRLint.self]
    )
}

/// The subject, given as one OpenSSL-style string or one flag per field.
struct SubjectOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The subject, e.g. \"/C=US/O=Example Corp/CN=www.example.com\".", valueName: "subject"))
    var subject: String?
    @Option(help: ArgumentHelp("Common name.", valueName: "name")) var cn: String?
    @Option(help: ArgumentHelp("Organization (O).", valueName: "name")) var org: String?
    @Option(help: ArgumentHelp("Organizational unit (OU).", valueName: "name")) var ou: String?
    @Option(help: ArgumentHelp("Locality (L).", valueName: "name")) var locality: String?
    @Option(help: ArgumentHelp("State or province (ST).", valueName: "name")) var state: String?
    @Option(help: ArgumentHelp("Two-letter country code (C).", valueName: "code")) var country: String?
    @Option(help: ArgumentHelp("emailAddress in the subject (prefer --san email:...).", valueName: "address")) var email: String?

    private var perField: [(String, String?)] {
        [("C", country), ("ST", state), ("L", locality), ("O", org), ("OU", ou), ("CN", cn), ("emailAddress", email)]
    }

    func validate() throws {
        if subject != nil, perField.contains(where: { $0.1 != nil }) {
            throw ValidationError("give the subject either with --subject or with per-field flags (--cn, --org, ...), not both")
        }
    }

    func distinguishedName() throws -> DistinguishedName {
        if let subject {
            return try DistinguishedName.parseOpenSSL(subject)
        }
        var rdns: [RelativeDistinguishedName] = []
        for case let (name, value?) in perField {
            rdns.append(RelativeDistinguishedName(try DistinguishedName.makeAttribute(name: name, value: value, context: "--\(flagName(name))")))
        }
        return DistinguishedName(rdns)
    }

    private func flagName(_ attribute: String) -> String {
        ["C": "country", "ST": "state", "L": "locality", "O": "org", "OU": "ou", "CN": "cn", "emailAddress": "email"][attribute] ?? attribute
    }
}

enum TemplateFile {
    static func load(_ path: String) throws -> CSRTemplate {
        let bytes = try Files.read(path, what: "template")
        let template: CSRTemplate
        do {
            template = try YAMLDecoder().decode(CSRTemplate.self, from: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw SigilError.badInput("\(path): not a valid template: \(Self.describe(error))")
        }
        do {
            try template.validate()
        } catch var error as SigilError {
            error.message = "\(path): \(error.message)"
            throw error
        }
        return template
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.typeMismatch(_, let context) = error { return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)" }
        if case DecodingError.dataCorrupted(let context) = error { return context.debugDescription }
        if case DecodingError.keyNotFound(let key, _) = error { return "missing \(key.stringValue)" }
        return "\(error)"
    }
}

struct CSRNew: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a certificate signing request, with an existing key or a new one.",
        discussion: """
            Examples:
              sigil csr new --key-type ec:P-256 --key-out www.key --no-passphrase \\
                  --subject "/C=US/O=Example Corp/CN=www.example.com" --san DNS:example.com --out www.csr
              sigil csr new --key www.key --cn www.example.com --san IP:10.0.0.1 --out www.csr

            A DNS-like or IP common name is added to the SANs unless --no-cn-san. With \
            --template, the request must meet the template's rules; otherwise nothing is \
            written and every broken rule is listed. Nothing is written when anything fails.
            """
    )

    @Option(help: ArgumentHelp("Use this existing private key.", valueName: "file")) var key: String?
    @OptionGroup var type: KeyTypeOption
    @Option(name: .customLong("key-out"), help: ArgumentHelp("Where to write a new key (with --key-type).", valueName: "file"))
    var keyOut: String?
    @OptionGroup var subject: SubjectOptions
    @Option(help: ArgumentHelp("A subject alternative name: DNS:name, IP:address, email:address or URI:uri. Repeatable.", valueName: "type:value"))
    var san: [String] = []
    @Option(name: .customLong("key-usage"), help: ArgumentHelp("Requested key usage, comma-separated (digitalSignature,keyEncipherment,...).", valueName: "list"))
    var keyUsage: [String] = []
    @Option(name: .customLong("ext-key-usage"), help: ArgumentHelp("Requested extended key usage, comma-separated (serverAuth,clientAuth,...).", valueName: "list"))
    var extKeyUsage: [String] = []
    @Flag(name: .customLong("no-cn-san"), help: "Do not copy a DNS-like common name into the SANs.") var noCNSAN = false
    @Option(help: ArgumentHelp("Corporate template (YAML) the request must meet.", valueName: "file")) var template: String?
    @Option(help: ArgumentHelp("Output format: pem or der.", valueName: "format")) var format: String = "pem"
    @Option(help: ArgumentHelp("Where to write the CSR (default: standard output).", valueName: "file")) var out: String?
    @OptionGroup var protection: NewKeyProtection
    @Flag(help: "Replace existing files.") var force = false

    func validate() throws {
        if key != nil && (type.keyType != nil || keyOut != nil) {
            throw ValidationError("--key uses an existing key; --key-type and --key-out make a new one: give one or the other")
        }
        if key == nil && keyOut == nil {
            throw ValidationError("give --key FILE to use an existing key, or --key-out FILE (with an optional --key-type) to make one")
        }
        if key != nil && (protection.noPassphrase || protection.kdf != "scrypt") {
            throw ValidationError("--no-passphrase and --kdf apply to a new key (--key-out), not to --key")
        }
        guard ["pem", "der"].contains(format.lowercased()) else { throw ValidationError("--format must be pem or der") }
        if let keyOut, let out, URL(fileURLWithPath: keyOut).standardized == URL(fileURLWithPath: out).standardized {
            throw ValidationError("--key-out and --out name the same file")
        }
    }

    func run() async throws {
        // Everything that can fail on the user's input fails before a key is made or a file touched.
        var request = CSRRequest(subject: try subject.distinguishedName())
        request.subjectAltNames = try san.map(SubjectAltName.init(parsing:))
        let usages = keyUsage.flatMap { $0.split(separator: ",").map(String.init) }
        if !usages.isEmpty { request.keyUsage = try UsageNames.parseKeyUsage(usages) }
        request.extendedKeyUsage = try UsageNames.parseExtendedKeyUsage(extKeyUsage.flatMap { $0.split(separator: ",").map(String.init) })
        let loadedTemplate = try template.map(TemplateFile.load)
        if let loadedTemplate { try loadedTemplate.apply(to: &request) }
        if !noCNSAN { request.addCommonNameToSubjectAltNames() }
        if request.subject.isEmpty && request.subjectAltNames.isEmpty {
            throw SigilError.badInput("the request names nothing: give a subject (--subject or --cn) or at least one --san")
        }
        for path in [keyOut, out].compactMap({ $0 }) where path != "-" && !force && FileManager.default.fileExists(atPath: path) {
            throw SigilError(.alreadyExists, "\(path) already exists; use --force to replace it")
        }

        let privateKey: PrivateKey
        var newKeyPEM: String?
        if let key {
            let bytes = try Files.read(key, what: "key file")
            let source = protection.passphrase
            privateKey = try PrivateKey.decode(bytes, source: key) { try source.forDecryption(of: key) }.key
            try checkTemplate(loadedTemplate, request: request, keyType: privateKey.keyType)
        } else {
            let keyType = try type.parsed() ?? .default
            try checkTemplate(loadedTemplate, request: request, keyType: keyType)
            let passphrase = try protection.resolve(for: keyOut!)
            privateKey = try PrivateKey.generate(keyType)
            newKeyPEM = try passphrase.map { try privateKey.encryptedPKCS8PEM(passphrase: $0, kdf: protection.keyDerivation) } ?? privateKey.pkcs8PEM()
        }
        if case .rsa(let bits) = privateKey.keyType { try KeyType.checkRSABits(bits) }

        let csr = try request.signed(with: privateKey)
        let csrBytes = format.lowercased() == "der" ? csr.derBytes : Array(csr.pemString.utf8)

        var transaction = FileTransaction()
        do {
            if let newKeyPEM, let keyOut { try transaction.stage(Array(newKeyPEM.utf8), to: keyOut, mode: 0o600, overwrite: force) }
            if let out, out != "-" { try transaction.stage(csrBytes, to: out, mode: 0o644, overwrite: force) }
            try transaction.commit()
        } catch {
            transaction.rollback()
            throw error
        }
        if out == nil || out == "-" { Console.current.write(csrBytes) }

        for finding in CSRLinter.lint(csr) where finding.severity != .info {
            Console.current.error("warning: \(finding.message)")
        }
        if let out, out != "-" {
            let what = keyOut.map { " and its \(privateKey.keyType) key to \($0)" } ?? ""
            Console.current.error("Wrote the CSR to \(out)\(what)")
        }
    }

    private func checkTemplate(_ template: CSRTemplate?, request: CSRRequest, keyType: KeyType) throws {
        guard let template else { return }
        let violations = template.violations(subject: request.subject, subjectAltNames: request.subjectAltNames, keyType: keyType)
        if !violations.isEmpty {
            throw SigilError(.policyViolation, "the request breaks \(violations.count) rule\(violations.count == 1 ? "" : "s") of the template \(self.template!); nothing was written:", reasons: violations)
        }
    }
}

struct CSRReport: Encodable {
    struct Field: Encodable {
        var name: String
        var oid: String
        var value: String?
        var stringType: String
        enum CodingKeys: String, CodingKey { case name, oid, value, stringType = "string_type" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(oid, forKey: .oid)
            try c.encode(value, forKey: .value)
            try c.encode(stringType, forKey: .stringType)
        }
    }
    struct ExtensionInfo: Encodable {
        var oid: String
        var name: String
        var critical: Bool
    }
    struct AttributeInfo: Encodable {
        var oid: String
        var name: String
        var values: [String]
    }

    var file: String
    var subject: String
    var subjectFields: [Field]
    var sans: [String]
    var key: KeyInfo?
    var keyProblem: String?
    var signatureAlgorithm: String
    var signatureValid: Bool
    var keyUsage: [String]
    var extendedKeyUsage: [String]
    var extensions: [ExtensionInfo]
    var attributes: [AttributeInfo]
    var challengePassword: String?

    enum CodingKeys: String, CodingKey {
        case file, subject, sans, key, extensions, attributes
        case subjectFields = "subject_fields"
        case keyProblem = "key_problem"
        case signatureAlgorithm = "signature_algorithm"
        case signatureValid = "signature_valid"
        case keyUsage = "key_usage"
        case extendedKeyUsage = "extended_key_usage"
        case challengePassword = "challenge_password"
    }

    // Absent values are written as null: a stable shape for scripts.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(subject, forKey: .subject)
        try c.encode(subjectFields, forKey: .subjectFields)
        try c.encode(sans, forKey: .sans)
        try c.encode(key, forKey: .key)
        try c.encode(keyProblem, forKey: .keyProblem)
        try c.encode(signatureAlgorithm, forKey: .signatureAlgorithm)
        try c.encode(signatureValid, forKey: .signatureValid)
        try c.encode(keyUsage, forKey: .keyUsage)
        try c.encode(extendedKeyUsage, forKey: .extendedKeyUsage)
        try c.encode(extensions, forKey: .extensions)
        try c.encode(attributes, forKey: .attributes)
        try c.encode(challengePassword, forKey: .challengePassword)
    }

    init(_ csr: CertificationRequest, file: String) throws {
        self.file = file
        subject = csr.subject.openSSLString
        subjectFields = csr.subject.fields.map { Field(name: $0.name, oid: $0.oid.description, value: $0.value, stringType: $0.stringType) }
        sans = try csr.subjectAltNames().map(\.description)
        key = csr.publicKey.map(KeyInfo.init)
        keyProblem = csr.publicKeyProblem
        signatureAlgorithm = csr.signatureAlgorithm.description
        signatureValid = csr.isSignatureValid
        let extensions = try csr.requestedExtensions()
        keyUsage = (try? extensions.keyUsage).flatMap { $0 }.map(UsageNames.keyUsageNames) ?? []
        extendedKeyUsage = (try? extensions.extendedKeyUsage).flatMap { $0 }.map { $0.map(UsageNames.extendedKeyUsageName) } ?? []
        self.extensions = extensions.map { ExtensionInfo(oid: $0.oid.description, name: UsageNames.extensionName($0.oid), critical: $0.critical) }
        attributes = csr.attributes.map { attribute in
            let name: String
            switch attribute.oid {
            case OID.challengePassword: name = "challengePassword"
            case OID.extensionRequest: name = "extensionRequest"
            case OID.unstructuredName: name = "unstructuredName"
            default: name = attribute.oid.description
            }
            let values = attribute.oid == OID.extensionRequest
                ? extensions.map { UsageNames.extensionName($0.oid) }
                : attribute.values.map { CSRReport.text($0) }
            return AttributeInfo(oid: attribute.oid.description, name: name, values: values)
        }
        challengePassword = csr.challengePassword
    }

    static func text(_ value: ASN1Any) -> String {
        if let s = try? ASN1UTF8String(asn1Any: value) { return String(s) }
        if let s = try? ASN1PrintableString(asn1Any: value) { return String(s) }
        if let s = try? ASN1IA5String(asn1Any: value) { return String(s) }
        return "<\(value)>"
    }
}

struct CSRShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show what a CSR asks for and whether its signature verifies."
    )

    @Argument(help: ArgumentHelp("The CSR (PEM or DER).", valueName: "file")) var file: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let csr = try CertificationRequest(pemOrDER: try Files.read(file, what: "CSR"), source: file)
        let report = try CSRReport(csr, file: file)
        if json {
            try JSONOutput.print(report)
            return
        }
        let console = Console.current
        func line(_ label: String, _ value: String) { console.print(label.padding(toLength: 21, withPad: " ", startingAt: 0) + value) }
        line("Certificate request:", file)
        line("Subject:", report.subject.isEmpty ? "(empty)" : report.subject)
        line("Subject alt names:", report.sans.isEmpty ? "(none)" : report.sans.joined(separator: ", "))
        if let key = report.key {
            line("Public key:", key.summary)
            line("Public key SHA-256:", colonHex(key.publicKeySHA256))
        } else {
            line("Public key:", report.keyProblem ?? "unsupported")
        }
        line("Signature algorithm:", report.signatureAlgorithm)
        line("Signature:", report.signatureValid ? "valid (the requester holds the key)" : "INVALID")
        if !report.keyUsage.isEmpty { line("Key usage:", report.keyUsage.joined(separator: ", ")) }
        if !report.extendedKeyUsage.isEmpty { line("Extended key usage:", report.extendedKeyUsage.joined(separator: ", ")) }
        if !report.extensions.isEmpty {
            line("Extensions:", report.extensions.map { $0.name + ($0.critical ? " (critical)" : "") }.joined(separator: ", "))
        }
        for attribute in report.attributes where attribute.name != "extensionRequest" {
            line("Attribute:", "\(attribute.name): \(attribute.values.joined(separator: ", "))")
        }
    }
}

struct CSRLint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check a CSR for weak keys and hashes, bad names and template violations.",
        discussion: "Exits 1 when any finding is an error."
    )

    @Argument(help: ArgumentHelp("The CSR (PEM or DER).", valueName: "file")) var file: String
    @Option(help: ArgumentHelp("Also check this template (YAML).", valueName: "file")) var template: String?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Report: Encodable {
        var file: String
        var errors: Int
        var warnings: Int
        var findings: [LintFinding]
    }

    func run() async throws {
        let csr = try CertificationRequest(pemOrDER: try Files.read(file, what: "CSR"), source: file)
        let findings = CSRLinter.lint(csr, template: try template.map(TemplateFile.load))
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        if json {
            try JSONOutput.print(Report(file: file, errors: errors, warnings: warnings, findings: findings))
        } else {
            for finding in findings.sorted(by: { $0.severity < $1.severity }) {
                Console.current.print("\(finding.severity.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))\(finding.code.padding(toLength: 22, withPad: " ", startingAt: 0))\(finding.message)")
            }
            Console.current.print("\(file): \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")")
        }
        if errors > 0 { throw ExitCode(1) }
    }
}
