import Foundation
import NIOCore
import SigilCore
import SigilServer

/// The `notifications:` section of sigil.yaml. Secrets (webhook keys, the SMTP
/// password) are never in the file itself: each is named by `*_file` (a file
/// whose first line is the secret) or `*_env` (an environment variable).
struct NotificationSettings: Decodable {
    var interval: String?
    var thresholds: [Int]?
    var skipThresholdsBeyondLifetime: Bool?
    var retry: Retry?
    var channels: [Channel]?

    struct Retry: Decodable {
        var maxAttempts: Int?
        var initialDelay: String?
        var maxDelay: String?
        enum CodingKeys: String, CodingKey { case maxAttempts = "max_attempts", initialDelay = "initial_delay", maxDelay = "max_delay" }
    }

    struct Channel: Decodable {
        var name: String
        var type: String
        var events: [String]?
        var owners: [String]?
        var tags: [String]?
        var timeout: String?
        var caFile: String?
        // webhook
        var url: String?
        var secretFile: String?
        var secretEnv: String?
        // email
        var smtp: String?
        var security: String?
        var from: String?
        var to: [String]?
        var username: String?
        var passwordFile: String?
        var passwordEnv: String?
        var helo: String?

        enum CodingKeys: String, CodingKey {
            case name, type, events, owners, tags, timeout, url, smtp, security, from, to, username, helo
            case caFile = "ca_file", secretFile = "secret_file", secretEnv = "secret_env", passwordFile = "password_file", passwordEnv = "password_env"
        }
    }

    enum CodingKeys: String, CodingKey {
        case interval, thresholds, retry, channels
        case skipThresholdsBeyondLifetime = "skip_thresholds_beyond_lifetime"
    }

    /// `30s`, `5m`, `1h`, `0.5s`; a bare number is seconds.
    static func seconds(_ text: String, _ key: String, _ problems: inout [String]) -> Double? {
        if let value = DurationText.seconds(in: text, bare: .seconds), value > 0 { return value }
        problems.append("notifications.\(key) '\(text)' must be a duration such as 30s, 5m or 1h")
        return nil
    }

    /// The checked configuration with its secrets read; every mistake is reported at once.
    func configuration() throws -> NotificationConfiguration {
        var problems: [String] = []
        let days = thresholds ?? ExpiryThresholds.defaultDays
        if days.isEmpty || days.contains(where: { !(1...3650).contains($0) }) {
            problems.append("notifications.thresholds must be whole days between 1 and 3650, e.g. [30, 14, 7, 1]")
        }
        var policy = RetryPolicy()
        if let retry {
            if let attempts = retry.maxAttempts {
                if (1...100).contains(attempts) { policy.maxAttempts = attempts } else { problems.append("notifications.retry.max_attempts must be between 1 and 100") }
            }
            if let text = retry.initialDelay, let value = Self.seconds(text, "retry.initial_delay", &problems) { policy.initialDelay = value }
            if let text = retry.maxDelay, let value = Self.seconds(text, "retry.max_delay", &problems) { policy.maxDelay = value }
        }
        var every: Duration = .seconds(60)
        if let interval, let value = Self.seconds(interval, "interval", &problems) { every = .milliseconds(Int64(value * 1000)) }
        var channels: [NotificationChannel] = []
        for item in self.channels ?? [] {
            if let channel = Self.channel(item, &problems) { channels.append(channel) }
        }
        if Set((self.channels ?? []).map(\.name)).count != (self.channels ?? []).count { problems.append("notification channel names must be unique") }
        if !problems.isEmpty {
            throw SigilError(.badInput, "the notifications section of sigil.yaml has \(problems.count) problem\(problems.count == 1 ? "" : "s"):", reasons: problems)
        }
        return NotificationConfiguration(channels: channels, thresholds: ExpiryThresholds(days: days, skipBeyondLifetime: skipThresholdsBeyondLifetime ?? true),
                                         retry: policy, interval: every)
    }

    private static func channel(_ item: Channel, _ problems: inout [String]) -> NotificationChannel? {
        let start = problems.count
        let label = "notification channel '\(item.name)'"
        if item.name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) == nil {
            problems.append("\(label): the name must be 1–64 letters, digits or ._-")
        }
        var events: Set<NotificationEventType> = []
        for name in item.events ?? [] {
            if let type = NotificationEventType(rawValue: name), type != .test { events.insert(type) } else {
                problems.append("\(label): unknown event '\(name)' (use \(NotificationEventType.allCases.filter { $0 != .test }.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        let filter = NotificationFilter(events: events, owners: Set(item.owners ?? []), tags: Set(item.tags ?? []))
        var timeout: TimeAmount?
        if let text = item.timeout, let value = seconds(text, "channels.\(item.name).timeout", &problems) { timeout = .milliseconds(Int64(value * 1000)) }
        if let caFile = item.caFile, !FileManager.default.isReadableFile(atPath: caFile) { problems.append("\(label): ca_file \(caFile) cannot be read") }
        func secret(file: String?, env: String?, what: String) -> [UInt8]? {
            if file != nil && env != nil { problems.append("\(label): give \(what)_file or \(what)_env, not both"); return nil }
            do {
                return try PassphraseSource(passphraseFile: file, passphraseEnv: env).read()
            } catch {
                problems.append("\(label): \(error)")
                return nil
            }
        }
        let kind: NotificationChannel.Kind
        switch item.type {
        case "webhook":
            guard let url = item.url, let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                problems.append("\(label): url must be an http:// or https:// URL")
                return nil
            }
            guard let key = secret(file: item.secretFile, env: item.secretEnv, what: "secret") else {
                if problems.count == start { problems.append("\(label): a webhook needs secret_file or secret_env (the HMAC key)") }
                return nil
            }
            kind = .webhook(WebhookTarget(url: url, secret: key, caFile: item.caFile, timeout: timeout ?? .seconds(10)))
        case "email":
            guard let smtp = item.smtp, let colon = smtp.lastIndex(of: ":"), let port = Int(smtp[smtp.index(after: colon)...]), (1...65535).contains(port),
                  !smtp[..<colon].isEmpty else {
                problems.append("\(label): smtp must be HOST:PORT, e.g. mail.example.com:587")
                return nil
            }
            guard let security = SMTPSecurity(rawValue: item.security ?? "starttls") else {
                problems.append("\(label): security must be starttls, tls or none")
                return nil
            }
            guard let from = item.from, EmailMessage.isPlainAddress(from) else {
                problems.append("\(label): from must be a mail address")
                return nil
            }
            let to = item.to ?? []
            guard !to.isEmpty, to.allSatisfy(EmailMessage.isPlainAddress) else {
                problems.append("\(label): to must list one or more mail addresses")
                return nil
            }
            let password = secret(file: item.passwordFile, env: item.passwordEnv, what: "password")
            if item.username != nil && password == nil && problems.count == start {
                problems.append("\(label): username needs password_file or password_env")
            }
            if item.username == nil && password != nil { problems.append("\(label): a password without a username") }
            if item.username != nil && security == .none { problems.append("\(label): refusing to send a password with security: none") }
            let host = String(smtp[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            kind = .email(EmailTarget(
                smtp: SMTPSettings(host: host, port: port, security: security, username: item.username, password: password, caFile: item.caFile,
                                   heloName: item.helo ?? "sigil.localdomain", timeout: timeout ?? .seconds(15)),
                from: from, to: to))
        default:
            problems.append("\(label): type must be webhook or email")
            return nil
        }
        return problems.count == start ? NotificationChannel(name: item.name, kind: kind, filter: filter) : nil
    }
}
