import Foundation
import Metrics
import Prometheus
import SigilCore

/// Sigil's metrics, exported in the Prometheus text format on `/metrics`.
public final class SigilMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let issuanceDuration: Prometheus.DurationHistogram

    public init() {
        registry = PrometheusCollectorRegistry()
        issuanceDuration = registry.makeDurationHistogram(
            name: "sigil_issuance_duration_seconds",
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5)])
    }

    public func recordIssuance(profile: String, outcome: String, duration: Swift.Duration) {
        registry.makeCounter(name: "sigil_issuances_total", labels: [("profile", profile), ("outcome", outcome)]).increment()
        if outcome == "issued" { issuanceDuration.record(duration) }
    }

    public func recordRevocation(reason: RevocationReason) {
        registry.makeCounter(name: "sigil_revocations_total", labels: [("reason", reason.name)]).increment()
    }

    public func recordHTTP(route: String, method: String, status: Int) {
        registry.makeCounter(name: "sigil_http_requests_total", labels: [("route", route), ("method", method), ("status", String(status))]).increment()
    }

    public func recordRevocationRequest(kind: String) {
        registry.makeCounter(name: "sigil_\(kind)_requests_total").increment()
    }

    public func setExpiring(within days: Int, count: Int) {
        registry.makeGauge(name: "sigil_certificates_expiring", labels: [("within_days", String(days))]).set(Double(count))
    }

    /// 1 while this node holds the scheduler lock (does the scheduled work), else 0.
    public func setSchedulerLeader(_ leader: Bool) {
        registry.makeGauge(name: "sigil_scheduler_leader").set(leader ? 1.0 : 0.0)
    }

    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
