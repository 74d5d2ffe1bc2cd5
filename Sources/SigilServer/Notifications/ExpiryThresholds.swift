import Foundation

/// Which expiry notice, if any, a certificate is due: the tightest threshold it
/// has passed, once. A certificate first seen with 5 days left gets the 7-day
/// notice only, not the 30- and 14-day ones as well; later it gets the 1-day one.
///
/// By default a threshold as long as the certificate's whole lifetime or longer
/// does not apply: a 6-day certificate (ACME short-lived, renewed at two thirds)
/// would otherwise "expire within 7 days" the moment it is issued, every time.
/// It still gets the 1-day notice, which only fires when renewal did not happen.
public struct ExpiryThresholds: Sendable, Equatable {
    /// Days before not_after, largest first.
    public let days: [Int]
    public let skipBeyondLifetime: Bool

    public static let defaultDays = [30, 14, 7, 1]

    public init(days: [Int] = ExpiryThresholds.defaultDays, skipBeyondLifetime: Bool = true) {
        self.days = Array(Set(days)).sorted(by: >)
        self.skipBeyondLifetime = skipBeyondLifetime
    }

    /// The window worth looking at: nothing further from expiry can be due.
    public var horizon: TimeInterval { Double(days.first ?? 0) * 86_400 }

    /// The threshold to notice now, or nil. `noticed` is the smallest threshold already noticed.
    public func due(notBefore: Date, notAfter: Date, now: Date, noticed: Int?) -> Int? {
        let remaining = notAfter.timeIntervalSince(now)
        guard remaining > 0 else { return nil }
        let lifetime = notAfter.timeIntervalSince(notBefore)
        let passed = days.filter { threshold in
            let window = Double(threshold) * 86_400
            return remaining <= window && (!skipBeyondLifetime || window < lifetime)
        }
        guard let tightest = passed.min() else { return nil }
        if let noticed, noticed <= tightest { return nil }
        return tightest
    }

    /// Whole days left, rounded down (a certificate with 6.9 days left has 6).
    public static func daysLeft(notAfter: Date, now: Date) -> Int {
        max(0, Int(notAfter.timeIntervalSince(now) / 86_400))
    }
}
