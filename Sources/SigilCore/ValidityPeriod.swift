import Foundation

/// A span of time written the way operators write it in configuration: `90s`, `10m`,
/// `2h`, `7d`, or a bare number of seconds. Profiles use it for lifetimes finer than a
/// day (short-lived certificates, tests of renewal), the agent for its timers.
public struct ValidityPeriod: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public static func days(_ days: Int) -> ValidityPeriod { ValidityPeriod(seconds: Int64(days) * 86_400) }

    /// Parses a `DurationText` (`90s`, `10m`, `2h`, `7d`, `2w`, or a bare number of seconds)
    /// that comes to a whole number of seconds. `what` names the value in errors.
    public init(parsing text: String, what: String = "duration") throws {
        let raw = text.trimmingCharacters(in: .whitespaces)
        guard let value = DurationText.seconds(in: raw, bare: .seconds), value.rounded() == value else {
            throw SigilError.badInput("invalid \(what) '\(raw)': expected a whole number of seconds with a unit, such as 90s, 10m, 2h, 7d or 2w")
        }
        seconds = Int64(value)
    }

    public var timeInterval: TimeInterval { TimeInterval(seconds) }

    /// The shortest exact spelling: `10m`, not `600s`.
    public var description: String {
        for (unit, factor) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where seconds != 0 && seconds % factor == 0 {
            return "\(seconds / factor)\(unit)"
        }
        return "\(seconds)s"
    }

    public static func < (lhs: ValidityPeriod, rhs: ValidityPeriod) -> Bool { lhs.seconds < rhs.seconds }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            seconds = number
        } else {
            self = try ValidityPeriod(parsing: try container.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
