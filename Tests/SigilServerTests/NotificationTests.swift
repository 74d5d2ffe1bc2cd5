import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilServer
import SigilStore
import SigilTesting
import Testing

@Suite("Notifications: thresholds, routing, signatures, SMTP replies, backoff")
struct NotificationTests {
    static let day: TimeInterval = 86_400
    static let issued = Date(timeIntervalSince1970: 1_800_000_000)

    /// A 90-day certificate looked at `left` days before it expires.
    func due(lifetime: Double = 90, left: Double, noticed: Int? = nil, thresholds: ExpiryThresholds = ExpiryThresholds()) -> Int? {
        let notAfter = Self.issued.addingTimeInterval(lifetime * Self.day)
        return thresholds.due(notBefore: Self.issued, notAfter: notAfter, now: notAfter.addingTimeInterval(-left * Self.day), noticed: noticed)
    }

    @Test("each threshold in turn, once")
    func thresholdsInTurn() {
        #expect(due(left: 45) == nil)
        #expect(due(left: 30) == 30)
        #expect(due(left: 29, noticed: 30) == nil)
        #expect(due(left: 14, noticed: 30) == 14)
        #expect(due(left: 10, noticed: 14) == nil)
        #expect(due(left: 7, noticed: 14) == 7)
        #expect(due(left: 1, noticed: 7) == 1)
        #expect(due(left: 0.5, noticed: 1) == nil)
        #expect(due(left: 0) == nil, "an expired certificate gets no expiry notice")
        #expect(due(left: -1) == nil)
    }

    @Test("first seen late: the tightest threshold only, not every one it passed")
    func firstSeenLate() {
        #expect(due(left: 5) == 7)
        #expect(due(left: 0.3) == 1)
        #expect(due(left: 20) == 30)
        // Seen again later with the 7-day notice sent: nothing until the 1-day threshold.
        #expect(due(left: 3, noticed: 7) == nil)
        #expect(due(left: 0.9, noticed: 7) == 1)
    }

    @Test("a 6-day certificate gets only the 1-day notice: longer thresholds do not fit its lifetime")
    func shortLived() {
        #expect(due(lifetime: 6, left: 6) == nil, "not 'expires within 7 days' the moment it is issued")
        #expect(due(lifetime: 6, left: 2) == nil)
        #expect(due(lifetime: 6, left: 1) == 1)
        #expect(due(lifetime: 1, left: 1) == nil, "a 1-day certificate never gets a 1-day notice")
        // Switched off: the tightest passed threshold, as for any certificate.
        let all = ExpiryThresholds(skipBeyondLifetime: false)
        #expect(due(lifetime: 6, left: 6, thresholds: all) == 7)
        #expect(due(lifetime: 6, left: 6, noticed: 7, thresholds: all) == nil)
    }

    @Test("configured thresholds are sorted and deduplicated; the horizon is the largest")
    func configuredThresholds() {
        let thresholds = ExpiryThresholds(days: [3, 10, 3, 1])
        #expect(thresholds.days == [10, 3, 1])
        #expect(thresholds.horizon == 10 * Self.day)
        #expect(ExpiryThresholds.daysLeft(notAfter: Self.issued.addingTimeInterval(6.9 * Self.day), now: Self.issued) == 6)
    }

    func event(_ type: NotificationEventType, owner: String? = nil, tags: [String] = []) -> NotificationEvent {
        var record = StoreContract.certificate(serial: "ab", owner: owner)
        record.tags = tags
        return NotificationEvent(id: "e", type: type, time: Self.issued, summary: "s", certificate: NotificationCertificate(record, now: Self.issued))
    }

    @Test("routing by event, owner and tag")
    func routing() {
        let everything = NotificationFilter()
        #expect(everything.accepts(event(.issued)))
        let expiring = NotificationFilter(events: [.expiring, .revoked])
        #expect(expiring.accepts(event(.expiring)))
        #expect(!expiring.accepts(event(.issued)))
        let teamA = NotificationFilter(owners: ["team-a"])
        #expect(teamA.accepts(event(.issued, owner: "team-a")))
        #expect(!teamA.accepts(event(.issued, owner: "team-b")))
        #expect(!teamA.accepts(event(.issued)), "no owner is not any owner")
        let prod = NotificationFilter(tags: ["prod", "pci"])
        #expect(prod.accepts(event(.issued, tags: ["web", "pci"])), "one tag in common is enough")
        #expect(!prod.accepts(event(.issued, tags: ["web"])))
        let both = NotificationFilter(events: [.revoked], owners: ["team-a"], tags: ["prod"])
        #expect(both.accepts(event(.revoked, owner: "team-a", tags: ["prod"])))
        #expect(!both.accepts(event(.revoked, owner: "team-a", tags: ["dev"])))
        #expect(!both.accepts(event(.expiring, owner: "team-a", tags: ["prod"])))
        #expect(both.accepts(event(.test)), "a test message goes wherever it is sent")
        let pending = NotificationEvent(id: "r", type: .approvalPending, time: Self.issued, summary: "s",
                                        request: NotificationRequest(id: "r", profile: "p", subject: "/CN=x", names: ["DNS:x"], requester: "t",
                                                                     owner: "team-a", tags: ["prod"]))
        #expect(NotificationFilter(owners: ["team-a"], tags: ["prod"]).accepts(pending), "a pending request routes by the owner and tags asked for")
    }

    @Test("webhook signature: t=UNIX,v1=HMAC-SHA256(secret, t.body), verifiable, tamper-evident")
    func signature() {
        let secret = Array("s3cret".utf8)
        let body = Array(#"{"type":"expiring"}"#.utf8)
        let header = WebhookSignature.sign(secret: secret, timestamp: 1_800_000_000, body: body)
        // The same computation any receiver does with its own HMAC implementation.
        let expected = HMAC<SHA256>.authenticationCode(for: Array("1800000000.".utf8) + body, using: SymmetricKey(data: secret))
        #expect(header == "t=1800000000,v1=\(Hex.encode(expected))")
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        #expect(WebhookSignature.verify(header, secret: secret, body: body, now: now))
        #expect(!WebhookSignature.verify(header, secret: Array("other".utf8), body: body, now: now), "another secret")
        #expect(!WebhookSignature.verify(header, secret: secret, body: body + [0x20], now: now), "a changed body")
        #expect(!WebhookSignature.verify(header.replacingOccurrences(of: "t=1800000000", with: "t=1800000001"), secret: secret, body: body, now: now),
                "a changed timestamp")
        #expect(!WebhookSignature.verify(header, secret: secret, body: body, now: now.addingTimeInterval(3600)), "too old: a replay")
        #expect(!WebhookSignature.verify("v1=00", secret: secret, body: body, now: now))
    }

    func parse(_ text: String) throws -> (SMTPReply?, String) {
        var buffer = Array(text.utf8)
        let reply = try SMTPReplyParser.parse(&buffer)
        return (reply, String(decoding: buffer, as: UTF8.self))
    }

    @Test("SMTP replies: single, multi-line, partial, pipelined, malformed (RFC 5321 §4.2)")
    func smtpReplies() throws {
        let (greeting, rest) = try parse("220 mail.example.com ESMTP ready\r\n")
        #expect(greeting == SMTPReply(code: 220, lines: ["mail.example.com ESMTP ready"]))
        #expect(rest.isEmpty)
        let (ehlo, _) = try parse("250-mail.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n")
        #expect(ehlo?.code == 250)
        #expect(ehlo?.extensions == ["PIPELINING", "STARTTLS", "AUTH", "8BITMIME"])
        #expect(ehlo?.authMechanisms == ["LOGIN", "PLAIN"])
        #expect(try parse("250-mail.example.com\r\n250-STARTTLS\r\n").0 == nil, "a multi-line reply without its last line is incomplete")
        #expect(try parse("250 OK\r").0 == nil, "a line without its end is incomplete")
        let (first, after) = try parse("250 OK\r\n354 go ahead\r\n")
        #expect(first?.code == 250)
        #expect(after == "354 go ahead\r\n", "the next reply stays in the buffer")
        #expect(try parse("250\r\n").0 == SMTPReply(code: 250, lines: [""]), "a code alone is a reply")
        #expect(try parse("221 bye\n").0?.code == 221, "a bare LF is tolerated")
        #expect(throws: SMTPReplyParser.Malformed.self) { try parse("hello\r\n") }
        #expect(throws: SMTPReplyParser.Malformed.self) { try parse("250-a\r\n251 b\r\n") }
        #expect(throws: SMTPReplyParser.Malformed.self) { try parse("250+x\r\n") }
        #expect(throws: SMTPReplyParser.Malformed.self) { try parse("999 no\r\n") }
        #expect(throws: SMTPReplyParser.Malformed.self) { try parse(String(repeating: "2", count: 5000)) }
    }

    @Test("mail DATA: CRLF line ends, dot-stuffing, one-line headers (RFC 5321 §4.5.2)")
    func mailData() {
        let message = EmailMessage(from: "sigil@example.com", to: ["a@example.com", "b@example.com"], subject: "Expiring\r\nBcc: evil@example.com",
                                   body: "line one\n.starts with a dot\r\n..two dots\rlast", messageID: "<x@sigil>", date: Self.issued)
        let text = String(decoding: message.data(), as: UTF8.self)
        #expect(text.hasSuffix("\r\nlast\r\n.\r\n"))
        #expect(text.contains("\r\n..starts with a dot\r\n"))
        #expect(text.contains("\r\n...two dots\r\n"))
        #expect(text.contains("Subject: Expiring  Bcc: evil@example.com\r\n"), "a header value stays on one line")
        #expect(!text.contains("\r\nBcc:"))
        #expect(text.contains("To: a@example.com, b@example.com\r\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "no bare LF")
        #expect(EmailMessage.isPlainAddress("ops+pki@example.com"))
        #expect(!EmailMessage.isPlainAddress("a@example.com>\r\nRCPT TO:<b@example.com"))
        #expect(!EmailMessage.isPlainAddress("Name <a@example.com>"))
    }

    @Test("backoff doubles up to the cap, with jitter in the upper half")
    func backoff() {
        let policy = RetryPolicy(maxAttempts: 5, initialDelay: 10, maxDelay: 60)
        #expect(policy.delay(afterAttempts: 1, unit: 0) == 5)
        #expect(policy.delay(afterAttempts: 1, unit: 1) == 10)
        #expect(policy.delay(afterAttempts: 2, unit: 1) == 20)
        #expect(policy.delay(afterAttempts: 3, unit: 0.5) == 30)
        #expect(policy.delay(afterAttempts: 4, unit: 1) == 60, "capped")
        #expect(policy.delay(afterAttempts: 50, unit: 1) == 60, "no overflow far out")
        for attempt in 1...6 {
            let d = policy.delay(afterAttempts: attempt)
            let base = min(60, 10 * pow(2, Double(attempt - 1)))
            #expect(d >= base / 2 && d <= base)
        }
    }
}
