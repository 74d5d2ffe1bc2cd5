import Foundation

/// Where Sigil reads the time. Policy never calls `Date()`; it is handed a clock.
public protocol SigilClock: Sendable {
    func now() -> Date
}

public struct SystemClock: SigilClock {
    public init() {}
    public func now() -> Date { Date() }
}
