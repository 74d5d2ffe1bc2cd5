import Foundation
import SigilCore

/// A plain-text mail (RFC 5322, MIME RFC 2045/2047) written from an event, and
/// the DATA encoding SMTP needs.
public struct EmailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String
    public var messageID: String
    public var date: Date

    public init(from: String, to: [String], subject: String, body: String, messageID: String, date: Date) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.messageID = messageID
        self.date = date
    }

    /// A mailbox Sigil will put into a command or a header: no spaces, brackets or line breaks
    /// (which would let a configured address inject SMTP commands or headers).
    public static func isPlainAddress(_ address: String) -> Bool {
        address.range(of: #"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$"#, options: .regularExpression) != nil && address.count <= 254
    }

    /// Written from an event: what happened, which certificate, what to do next.
    public static func render(_ event: NotificationEvent, from: String, to: [String], deliveryID: String, now: Date) -> EmailMessage {
        var body = [event.summary, ""]
        if let certificate = event.certificate {
            body += [
                "Certificate:   \(certificate.commonName ?? certificate.subject)",
                "Names:         \(certificate.names.joined(separator: ", "))",
                "Serial:        \(certificate.serial)",
                "SHA-256:       \(certificate.fingerprint)",
                "Issuer:        \(certificate.issuer)",
                "Profile:       \(certificate.profile ?? "-")",
                "Not after:     \(certificate.notAfter)",
                "Owner:         \(certificate.owner ?? "-")",
                "Tags:          \(certificate.tags.isEmpty ? "-" : certificate.tags.joined(separator: ", "))",
            ]
        }
        if let request = event.request {
            body += [
                "Request:       \(request.id)",
                "Subject:       \(request.subject)",
                "Names:         \(request.names.joined(separator: ", "))",
                "Profile:       \(request.profile)",
                "Requested by:  \(request.requester)",
            ]
        }
        if let error = event.error { body += ["Error:         \(error)"] }
        if let actor = event.actor { body += ["By:            \(actor)"] }
        body += ["", "What to do:", advice(event), "", "--", "Sigil, event \(event.id) (\(event.type.rawValue)) at \(event.time), delivery \(deliveryID)"]
        return EmailMessage(from: from, to: to, subject: "[Sigil] " + event.summary, body: body.joined(separator: "\n"),
                            messageID: "<\(deliveryID)@sigil>", date: now)
    }

    static func advice(_ event: NotificationEvent) -> String {
        let serial = event.certificate?.serial ?? "SERIAL"
        switch event.type {
        case .expiring:
            return "Renew it before it expires (sigil agent renews managed certificates; otherwise POST /api/v1/certificates/\(serial)/renew "
                + "with a new CSR), deploy the new certificate, then check that services present it."
        case .issued:
            return "Nothing, if you expected it. If not, look at `sigil audit list --action certificate.issued` and revoke it: sigil cert revoke \(serial)."
        case .revoked:
            return "Replace the certificate wherever it is deployed: relying parties that check CRLs or OCSP will refuse it."
        case .renewalFailed:
            return "Fix the cause above on the host (see `sigil agent status` there) and run `sigil agent --once`; the current certificate expires at its not-after time."
        case .approvalPending:
            let id = event.request?.id ?? "ID"
            return "Approve or reject it: sigil request approve \(id) / sigil request reject \(id) --reason TEXT (or POST /api/v1/requests/\(id)/approve)."
        case .test:
            return "Nothing: this message checks that the channel works."
        }
    }

    /// The message as SMTP DATA carries it: CRLF line ends, dot-stuffed (RFC 5321 §4.5.2),
    /// ending with the lone dot. Header values are kept to one line.
    public func data() -> [UInt8] {
        func oneLine(_ text: String) -> String { text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
        var text = [
            "From: \(from)",
            "To: \(to.joined(separator: ", "))",
            "Subject: \(Self.encodedWord(oneLine(subject)))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: \(oneLine(messageID))",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
        ].joined(separator: "\r\n") + "\r\n"
        text += Self.normalizedLines(body).map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n")
        text += "\r\n.\r\n"
        return Array(text.utf8)
    }

    /// Any of CRLF, CR or LF as a line end (bare CR and LF are not allowed in SMTP, RFC 5321 §2.3.8).
    static func normalizedLines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").components(separatedBy: "\n")
    }

    /// RFC 2047 encoded-word for a header that is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return text }
        return "=?utf-8?B?\(Data(text.utf8).base64EncodedString())?="
    }

    /// RFC 5322 §3.3: `Mon, 30 Nov 2026 12:00:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
