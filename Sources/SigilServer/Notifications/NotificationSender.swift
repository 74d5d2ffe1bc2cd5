import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SigilCore
import SigilStore

/// Sends one delivery through its channel; throws with a reason a person can
/// read (it goes into the delivery log) when the channel did not accept it.
public final class NotificationSender: Sendable {
    private let http: HTTPClient

    public init() {
        var configuration = HTTPClient.Configuration()
        // A signed body is meant for the configured URL only.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10))
        // The outbox retries with backoff; a refused connection or a certificate that does not
        // verify is reported at once instead of being retried here until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    public func send(_ delivery: NotificationDelivery, through channel: NotificationChannel, now: Date) async throws {
        switch channel.kind {
        case .webhook(let webhook):
            try await post(delivery, to: webhook, now: now)
        case .email(let email):
            let event = try NotificationEvent.decode(delivery.payload)
            let message = EmailMessage.render(event, from: email.from, to: email.to, deliveryID: delivery.id, now: now)
            try await SMTPClient(settings: email.smtp).send(message)
        }
    }

    /// POST the event with `Sigil-Event`, `Sigil-Delivery` (the idempotency key: the same on
    /// every retry) and `Sigil-Signature` (see `WebhookSignature`). 2xx is delivered.
    private func post(_ delivery: NotificationDelivery, to webhook: WebhookTarget, now: Date) async throws {
        let body = Array(delivery.payload.utf8)
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "sigil-notifications")
        request.headers.add(name: "Sigil-Event", value: delivery.event)
        request.headers.add(name: "Sigil-Delivery", value: delivery.id)
        request.headers.add(name: WebhookSignature.header,
                            value: WebhookSignature.sign(secret: webhook.secret, timestamp: Int64(now.timeIntervalSince1970), body: body))
        if let caFile = webhook.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            request.tlsConfiguration = tls
        }
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: webhook.timeout)
        } catch {
            throw DeliveryFailure("POST \(webhook.url) failed: \(error)")
        }
        let answer = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
        guard (200..<300).contains(Int(response.status.code)) else {
            throw DeliveryFailure("POST \(webhook.url) answered \(response.status.code)\(answer.isEmpty ? "" : ": " + answer.prefix(200))")
        }
    }
}

public struct DeliveryFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
