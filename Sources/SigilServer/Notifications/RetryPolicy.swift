import Foundation

/// How failed deliveries are retried: exponential backoff with jitter, up to a
/// number of attempts. The jitter ("equal jitter": half the delay fixed, half
/// random) spreads retries so a receiver that comes back is not hit by every
/// queued delivery at once.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included; after the last the delivery is `failed`.
    public var maxAttempts: Int
    public var initialDelay: TimeInterval
    public var maxDelay: TimeInterval

    public init(maxAttempts: Int = 8, initialDelay: TimeInterval = 30, maxDelay: TimeInterval = 3600) {
        self.maxAttempts = maxAttempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// The delay before the next attempt after `attempts` failed ones (1 or more);
    /// `unit` is a random number in 0...1.
    public func delay(afterAttempts attempts: Int, unit: Double) -> TimeInterval {
        let exponent = Double(max(0, min(attempts - 1, 30)))
        let base = min(maxDelay, initialDelay * pow(2, exponent))
        return base / 2 + base / 2 * min(1, max(0, unit))
    }

    public func delay(afterAttempts attempts: Int) -> TimeInterval {
        delay(afterAttempts: attempts, unit: Double.random(in: 0...1))
    }
}
