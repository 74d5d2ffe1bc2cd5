import ArgumentParser
import Foundation
import Logging
import SigilCore
import SigilServer
import SigilStore

struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Webhook and mail notifications: the delivery log and a test message.",
        discussion: """
            Channels are configured in the notifications: section of sigil.yaml; `sigil serve` sends \
            expiring, issued, revoked, renewal_failed and approval_pending events through them (on \
            one node at a time with PostgreSQL), retrying failed deliveries with backoff.

            notifications:
              interval: 60s                # collect and send this often
              thresholds: [30, 14, 7, 1]   # days before expiry, each once
              retry: {max_attempts: 8, initial_delay: 30s, max_delay: 1h}
              channels:
                - {name: ops, type: webhook, url: https://hooks.example.com/sigil,
                   secret_file: /etc/sigil/ops.secret, ca_file: /etc/sigil/hooks-ca.pem,
                   events: [expiring, revoked], owners: [team-a], tags: [prod]}
                - {name: pki, type: email, smtp: mail.example.com:587, security: starttls,
                   from: sigil@example.com, to: [pki@example.com], username: sigil,
                   password_env: SIGIL_SMTP_PASSWORD}

            Webhooks carry Sigil-Event, Sigil-Delivery (the same on every retry) and \
            Sigil-Signature: t=UNIX,v1=HEX, HEX being HMAC-SHA256 keyed with the secret over \
            "UNIX." followed by the raw body.
            """,
        subcommands: [NotifyLog.self, NotifyTest.self]
    )
}

struct NotifyLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "Show the delivery log, newest first.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("Only pending, delivered or failed deliveries.", valueName: "status")) var status: String?
    @Option(help: ArgumentHelp("Only this channel.", valueName: "name")) var channel: String?
    @Option(help: ArgumentHelp("Only this event type (expiring, issued, revoked, renewal_failed, approval_pending, test).", valueName: "event"))
    var event: String?
    @Option(help: ArgumentHelp("At most N rows (default 50).", valueName: "n")) var limit: Int = 50
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        if let status, NotificationDeliveryStatus(rawValue: status) == nil { throw ValidationError("--status must be pending, delivered or failed") }
        if let event, NotificationEventType(rawValue: event) == nil {
            throw ValidationError("--event must be one of: \(NotificationEventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
    }

    func run() async throws {
        let filter = NotificationDeliveryFilter(status: status.flatMap(NotificationDeliveryStatus.init), channel: channel, event: event, limit: limit)
        let rows = try await Workspace.with(home, create: false) { workspace in
            try await workspace.store.read { try await $0.notificationDeliveries(filter) }
        }
        if json { return try JSONOutput.print(rows.map(DeliveryReport.init)) }
        Console.current.print(table(["CREATED", "EVENT", "CHANNEL", "STATUS", "ATTEMPTS", "LAST ERROR"],
                                    rows.map { [iso($0.createdAt), $0.event, $0.channel, $0.status.rawValue, String($0.attempts),
                                                String(($0.lastError ?? "").prefix(60))] }))
    }
}

struct NotifyTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send a test message through one channel now, and record it in the delivery log.",
        discussion: "Exit codes: 0 the channel accepted it; 1 it did not (the reason is printed); 2 no such channel or a bad configuration.")
    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The channel's name in sigil.yaml.", valueName: "name")) var channel: String
    @Option(name: .customLong("config"), help: ArgumentHelp("A configuration file (default SIGIL_HOME/sigil.yaml).", valueName: "file"))
    var config: String?

    func run() async throws {
        let file = try SigilConfiguration.load(home: home.path, file: config)
        let configuration = try (file.notifications ?? NotificationSettings()).configuration()
        guard let target = configuration.channel(named: channel) else {
            let names = configuration.channels.map(\.name)
            throw SigilError.badInput("no notification channel named '\(channel)'\(names.isEmpty ? " (none are configured)" : "; configured: \(names.joined(separator: ", "))")")
        }
        let now = Date()
        let event = NotificationEvent(id: "test-\(UUID().uuidString.lowercased())", type: .test, time: now,
                                      summary: "Test message for notification channel \(target.name)", actor: commandLineActor)
        var delivery = NotificationDelivery(id: UUID().uuidString.lowercased(), eventID: event.id, event: event.type.rawValue, channel: target.name,
                                            target: target.target, payload: try event.json(), attempts: 1, nextAttempt: now, createdAt: now)
        let sender = NotificationSender()
        var failure: String?
        do {
            try await sender.send(delivery, through: target, now: now)
            delivery.status = .delivered
            delivery.deliveredAt = Date()
        } catch {
            failure = String(describing: error)
            delivery.status = .failed
            delivery.lastError = failure
        }
        await sender.shutdown()
        let recorded = delivery
        let workspace = try await Workspace.open(home, create: false, configuration: file)
        do {
            _ = try await workspace.store.write { try await $0.enqueueNotification(recorded) }
            await workspace.close()
        } catch {
            await workspace.close()
            throw error
        }
        if let failure { throw SigilError(.io, "channel \(target.name) did not accept the test message: \(failure)") }
        Console.current.print("sent a test message to \(target.name) (\(target.target)); delivery \(delivery.id)")
    }
}
