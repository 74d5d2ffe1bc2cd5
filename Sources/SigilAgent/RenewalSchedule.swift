import Foundation
import SigilCore

/// An ACME Renewal Information answer (RFC 9773 §4.2): the window in which the CA
/// wants the certificate replaced, and when to ask again.
public struct RenewalWindow: Sendable, Equatable {
    public var start: Date
    public var end: Date
    /// From the response's Retry-After (RFC 9773 §4.3).
    public var retryAfter: TimeInterval?

    public init(start: Date, end: Date, retryAfter: TimeInterval? = nil) {
        self.start = start
        self.end = end
        self.retryAfter = retryAfter
    }
}

/// When to renew, and why. Never a fixed number of days: the time follows the
/// CA's ARI window or, without one, two thirds of the certificate's own lifetime, so a
/// 10-minute and a 6-day certificate are both renewed with a third of their life left.
public struct RenewalDecision: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// A uniformly random time inside the CA's ARI window (RFC 9773 §4.2).
        case ariWindow = "ari"
        /// notBefore + 2/3 of (notAfter − notBefore).
        case twoThirds = "two-thirds"
    }

    public var renewAt: Date
    public var reason: Reason

    public var explanation: String {
        switch reason {
        case .ariWindow: return "inside the CA's ARI window (RFC 9773)"
        case .twoThirds: return "at two thirds of the certificate's lifetime"
        }
    }
}

public enum RenewalSchedule {
    /// Two thirds of the lifetime after notBefore.
    public static func twoThirds(notBefore: Date, notAfter: Date) -> Date {
        let lifetime = max(0, notAfter.timeIntervalSince(notBefore))
        return notBefore.addingTimeInterval(lifetime * 2 / 3)
    }

    /// RFC 9773 §4.2: "select a uniform random time within the suggested window"; a
    /// window already over means renew now. A window that makes no sense (end before
    /// start) is ignored in favour of two thirds of the lifetime.
    public static func decide<R: RandomNumberGenerator>(notBefore: Date, notAfter: Date, window: RenewalWindow?, now: Date,
                                                        using rng: inout R) -> RenewalDecision {
        if let window, window.end >= window.start {
            if window.end <= now { return RenewalDecision(renewAt: now, reason: .ariWindow) }
            let span = window.end.timeIntervalSince(window.start)
            let offset = span > 0 ? Double.random(in: 0...span, using: &rng) : 0
            return RenewalDecision(renewAt: window.start.addingTimeInterval(offset), reason: .ariWindow)
        }
        return RenewalDecision(renewAt: twoThirds(notBefore: notBefore, notAfter: notAfter), reason: .twoThirds)
    }

    /// When to ask the ARI endpoint again: its Retry-After (RFC 9773 §4.3), bounded to
    /// [1 min, 6 h]; six hours when the server gave none.
    public static func nextARICheck(window: RenewalWindow, now: Date) -> Date {
        now.addingTimeInterval(min(max(window.retryAfter ?? 21_600, 60), 21_600))
    }
}

/// Exponential backoff with full jitter (a uniformly random wait between zero and
/// min(cap, base·2^(failures−1))), so many agents that failed together do not retry together.
public enum Backoff {
    /// The upper bound of the wait after `failures` consecutive failures (≥ 1).
    public static func ceiling(failures: Int, settings: BackoffSettings) -> TimeInterval {
        let exponent = min(max(failures, 1) - 1, 40)
        let raw = settings.base.timeInterval * pow(2, Double(exponent))
        return min(settings.cap.timeInterval, raw)
    }

    /// The wait itself; at least one second so a failing CA is never hit in a tight loop.
    public static func delay<R: RandomNumberGenerator>(failures: Int, settings: BackoffSettings, using rng: inout R) -> TimeInterval {
        let ceiling = ceiling(failures: failures, settings: settings)
        return max(1, Double.random(in: 0...ceiling, using: &rng))
    }
}

