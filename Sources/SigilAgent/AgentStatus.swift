import Foundation
import SigilCore

/// One certificate as `sigil agent status` shows it: what is deployed (read from the
/// files), when it renews and why, and how the last attempts went.
public struct CertificateStatus: Encodable, Sendable {
    public var name: String
    public var names: [String]
    public var deployed: Bool
    public var serial: String?
    public var notBefore: String?
    public var notAfter: String?
    public var nextRenewal: String?
    /// `ari` (inside the CA's window), `two-thirds` (of the lifetime), `now` (missing,
    /// names changed) or `backoff` (waiting after a failure).
    public var renewalReason: String?
    public var ariWindow: [String]?
    public var lastSuccess: String?
    public var lastAttempt: String?
    public var lastError: String?
    public var consecutiveFailures: Int
    public var nextAttempt: String?
    public var lastReload: ReloadResult?
    public var reloadPending: Bool
    public var previousSerial: String?

    enum CodingKeys: String, CodingKey {
        case name, names, deployed, serial, notBefore = "not_before", notAfter = "not_after", nextRenewal = "next_renewal"
        case renewalReason = "renewal_reason", ariWindow = "ari_window", lastSuccess = "last_success", lastAttempt = "last_attempt"
        case lastError = "last_error", consecutiveFailures = "consecutive_failures", nextAttempt = "next_attempt", lastReload = "last_reload"
        case reloadPending = "reload_pending", previousSerial = "previous_serial"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(names, forKey: .names)
        try c.encode(deployed, forKey: .deployed)
        // Stable shape: absent values are null, not missing keys.
        try c.encode(serial, forKey: .serial)
        try c.encode(notBefore, forKey: .notBefore)
        try c.encode(notAfter, forKey: .notAfter)
        try c.encode(nextRenewal, forKey: .nextRenewal)
        try c.encode(renewalReason, forKey: .renewalReason)
        try c.encode(ariWindow, forKey: .ariWindow)
        try c.encode(lastSuccess, forKey: .lastSuccess)
        try c.encode(lastAttempt, forKey: .lastAttempt)
        try c.encode(lastError, forKey: .lastError)
        try c.encode(consecutiveFailures, forKey: .consecutiveFailures)
        try c.encode(nextAttempt, forKey: .nextAttempt)
        if let lastReload {
            var nested = c.nestedContainer(keyedBy: ReloadResult.CodingKeys.self, forKey: .lastReload)
            try nested.encode(RFC3339.string(lastReload.at), forKey: .at)
            try nested.encode(lastReload.exitCode, forKey: .exitCode)
            try nested.encode(lastReload.status, forKey: .status)
            try nested.encode(lastReload.stderr, forKey: .stderr)
        } else {
            try c.encodeNil(forKey: .lastReload)
        }
        try c.encode(reloadPending, forKey: .reloadPending)
        try c.encode(previousSerial, forKey: .previousSerial)
    }
}

extension Agent {
    /// The status of every certificate, from the files and the state directory (no network).
    public func status() -> [CertificateStatus] {
        let now = clock.now()
        return configuration.certificates.map { certificate in
            let record = state.load(certificate.name)
            let bundle = currentBundle(certificate)
            var row = CertificateStatus(
                name: certificate.name, names: certificate.names, deployed: bundle != nil, consecutiveFailures: record.consecutiveFailures,
                reloadPending: record.reloadPending)
            row.lastSuccess = record.lastSuccess.map(RFC3339.string)
            row.lastAttempt = record.lastAttempt.map(RFC3339.string)
            row.lastError = record.lastError
            row.nextAttempt = record.nextAttempt.map(RFC3339.string)
            row.lastReload = record.lastReload
            row.previousSerial = deployer.previousBundle(certificate.name)?.certificate.serialHex
            if let start = record.ariWindowStart, let end = record.ariWindowEnd { row.ariWindow = [RFC3339.string(start), RFC3339.string(end)] }
            guard let bundle else {
                row.nextRenewal = RFC3339.string(max(now, record.nextAttempt ?? now))
                row.renewalReason = (record.nextAttempt ?? now) > now ? "backoff" : "now"
                return row
            }
            let cert = bundle.certificate
            row.serial = cert.serialHex
            row.notBefore = RFC3339.string(cert.notBefore)
            row.notAfter = RFC3339.string(cert.notAfter)
            var renewAt: Date
            var reason: String
            if record.serial == cert.serialHex, let chosen = record.renewAt {
                renewAt = chosen
                reason = record.renewalReason ?? "two-thirds"
            } else {
                renewAt = RenewalSchedule.twoThirds(notBefore: cert.notBefore, notAfter: cert.notAfter)
                reason = RenewalDecision.Reason.twoThirds.rawValue
            }
            if Set(cert.names.map { $0.lowercased() }) != Set(certificate.names.map { $0.lowercased() }) {
                renewAt = now
                reason = "now"
            }
            if let next = record.nextAttempt, next > renewAt {
                renewAt = next
                reason = "backoff"
            }
            row.nextRenewal = RFC3339.string(renewAt)
            row.renewalReason = reason
            return row
        }
    }
}
