import Foundation
import NIOCore

/// Where a webhook goes and how it is signed.
public struct WebhookTarget: Sendable {
    public var url: String
    /// The HMAC key (from a file or an environment variable).
    public var secret: [UInt8]
    /// PEM file of the CAs to trust for an https URL (default: the system's).
    public var caFile: String?
    public var timeout: TimeAmount

    public init(url: String, secret: [UInt8], caFile: String? = nil, timeout: TimeAmount = .seconds(10)) {
        self.url = url
        self.secret = secret
        self.caFile = caFile
        self.timeout = timeout
    }
}

/// A mail server and the message's sender and recipients.
public struct EmailTarget: Sendable {
    public var smtp: SMTPSettings
    public var from: String
    public var to: [String]

    public init(smtp: SMTPSettings, from: String, to: [String]) {
        self.smtp = smtp
        self.from = from
        self.to = to
    }
}

/// One configured destination, with the events it wants.
public struct NotificationChannel: Sendable {
    public enum Kind: Sendable {
        case webhook(WebhookTarget)
        case email(EmailTarget)
    }

    public var name: String
    public var kind: Kind
    public var filter: NotificationFilter

    public init(name: String, kind: Kind, filter: NotificationFilter = NotificationFilter()) {
        self.name = name
        self.kind = kind
        self.filter = filter
    }

    /// What the delivery log shows as the destination.
    public var target: String {
        switch kind {
        case .webhook(let webhook): return webhook.url
        case .email(let email): return email.to.joined(separator: ",")
        }
    }

    /// How long one delivery may take at most (connect, send, answer).
    var timeout: TimeAmount {
        switch kind {
        case .webhook(let webhook): return webhook.timeout
        // A mail takes several round trips, each with its own timeout.
        case .email(let email): return email.smtp.timeout * 8
        }
    }
}

/// The `notifications:` section of sigil.yaml, checked and with its secrets read.
public struct NotificationConfiguration: Sendable {
    public var channels: [NotificationChannel]
    public var thresholds: ExpiryThresholds
    public var retry: RetryPolicy
    /// How often the leader looks for events and due deliveries.
    public var interval: Duration

    public init(channels: [NotificationChannel], thresholds: ExpiryThresholds = ExpiryThresholds(), retry: RetryPolicy = RetryPolicy(),
                interval: Duration = .seconds(60)) {
        self.channels = channels
        self.thresholds = thresholds
        self.retry = retry
        self.interval = interval
    }

    public func channel(named name: String) -> NotificationChannel? {
        channels.first { $0.name == name }
    }
}
