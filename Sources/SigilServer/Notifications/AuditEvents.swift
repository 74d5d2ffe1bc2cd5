import Foundation
import SigilCore
import SigilStore

/// Turns audit entries into events. The audit trail is durable, ordered and
/// shared by every node, so it is the one source of lifecycle events: the
/// notifier reads it from a cursor and never misses or repeats an entry.
enum AuditEvents {
    /// The action the agent report endpoint records (and that becomes `renewal_failed`).
    static let renewalFailedAction = "renewal.failed"

    static func event(for entry: AuditEntry, in session: any StoreSession, now: Date) async throws -> NotificationEvent? {
        let details = (try? JSONDecoder().decode([String: String].self, from: Data(entry.details.utf8))) ?? [:]
        let id = "audit-\(entry.seq)"
        switch entry.action {
        case "certificate.issued":
            guard let record = try await certificate(details["fingerprint"], object: entry.object, in: session) else { return nil }
            return NotificationEvent(id: id, type: .issued, time: entry.time,
                                     summary: "Certificate issued for \(display(record)), valid until \(RFC3339.string(record.notAfter))",
                                     certificate: NotificationCertificate(record, now: now), actor: entry.actor)
        case "certificate.revoked":
            guard let record = try await certificate(details["fingerprint"], object: entry.object, in: session) else { return nil }
            let reason = details["reason"] ?? "unspecified"
            return NotificationEvent(id: id, type: .revoked, time: entry.time,
                                     summary: "Certificate for \(display(record)) was revoked (\(reason))",
                                     certificate: NotificationCertificate(record, now: now), reason: reason, actor: entry.actor)
        case "request.received" where entry.object.hasPrefix("request:"):
            // Only a request kept for approval has a request: object; a direct issuance names the CSR.
            let requestID = String(entry.object.dropFirst("request:".count))
            guard let request = try await session.request(id: requestID) else { return nil }
            let owner = details["owner"].flatMap { $0.isEmpty ? nil : $0 }
            let tags = (details["tags"] ?? "").split(separator: ",").map(String.init)
            return NotificationEvent(id: id, type: .approvalPending, time: entry.time,
                                     summary: "Request \(requestID) for \(request.names.first ?? request.subject) waits for approval (profile \(request.profile))",
                                     request: NotificationRequest(id: request.id, profile: request.profile, subject: request.subject, names: request.names,
                                                                  requester: request.requester, owner: owner, tags: tags),
                                     actor: entry.actor)
        case renewalFailedAction:
            let name = details["certificate"] ?? entry.object
            var record: CertificateRecord?
            if let serial = details["serial"], !serial.isEmpty {
                record = try await session.certificates(serial: serial).max { $0.notAfter < $1.notAfter }
            }
            let error = details["error"] ?? ""
            let names = details["names"].map { $0.split(separator: ",").map(String.init) } ?? []
            return NotificationEvent(id: id, type: .renewalFailed, time: entry.time,
                                     summary: "Renewal of \(name)\(names.isEmpty ? "" : " (" + names.joined(separator: ", ") + ")") failed: \(error.prefix(200))",
                                     certificate: record.map { NotificationCertificate($0, now: now) }, error: error, agentCertificate: name,
                                     actor: entry.actor)
        default:
            return nil
        }
    }

    /// By fingerprint (recorded in the details), else by the serial in the `certificate:SERIAL` object.
    private static func certificate(_ fingerprint: String?, object: String, in session: any StoreSession) async throws -> CertificateRecord? {
        if let fingerprint, let record = try await session.certificate(fingerprint: fingerprint) { return record }
        guard object.hasPrefix("certificate:") else { return nil }
        return try await session.certificates(serial: String(object.dropFirst("certificate:".count))).first
    }

    static func display(_ record: CertificateRecord) -> String {
        let name = record.commonName ?? record.sans.first.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") } ?? record.subject
        return "\(name) (serial \(record.serial))"
    }
}
