import Foundation

/// Durations as operators write them in flags, configuration files and query strings:
/// a non-negative number and a unit — `500ms`, `90s`, `10m`, `12h`, `30d`, `2w`. One
/// parser for all of them, so `30d` means the same in `sigil cert list --expiring`, in
/// `sigil.yaml`, in an agent's file and in `?expiring_within=` of the REST API. Where
/// they differ is only what a bare number means, which each caller states.
public enum DurationText {
    /// What a number written without a unit means.
    public enum BareNumber: Sendable {
        /// A unit is required (`90` is refused: seconds or days?).
        case refused
        case seconds
        case days
    }

    /// Seconds per unit. Units are case-insensitive (`7D` is `7d`); there are no months
    /// or years, whose length varies.
    static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400), ("w", 604_800),
    ]

    /// The largest duration accepted: about 317 years, far beyond any certificate or timer,
    /// and small enough that adding it to a date or converting it to `Int64` nanoseconds
    /// or seconds cannot overflow.
    public static let limit: Double = 10_000_000_000

    /// The duration in seconds, or nil when `text` is not one. Surrounding whitespace is
    /// ignored; a sign, an exponent, `nan` or `inf` are not durations.
    public static func seconds(in text: String, bare: BareNumber = .refused) -> Double? {
        let raw = text.trimmingCharacters(in: .whitespaces).lowercased()
        var number = Substring(raw)
        var factor: Double?
        // "ms" before "m" and "s": the longest suffix wins.
        for unit in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where raw.hasSuffix(unit.suffix) {
            number = raw.dropLast(unit.suffix.count)
            factor = unit.seconds
            break
        }
        if factor == nil {
            switch bare {
            case .refused: return nil
            case .seconds: factor = 1
            case .days: factor = 86_400
            }
        }
        guard let factor, !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != ".",
              let value = Double(number)
        else { return nil }
        let seconds = value * factor
        return seconds <= limit ? seconds : nil
    }

    /// The message for a value that is not a duration; `what` names it (a flag, a key).
    public static func problem(_ text: String, what: String, bare: BareNumber = .refused) -> String {
        let bareNote: String
        switch bare {
        case .refused: bareNote = ""
        case .seconds: bareNote = "; a bare number is seconds"
        case .days: bareNote = "; a bare number is days"
        }
        return "\(what) '\(text)' is not a duration: write a number with a unit (ms, s, m, h, d or w), such as 90s, 10m, 12h, 30d or 2w\(bareNote)"
    }

    /// Parses or throws `SigilError.badInput` with `problem(_:what:bare:)`'s message.
    public static func parse(_ text: String, what: String, bare: BareNumber = .refused) throws -> Double {
        guard let seconds = seconds(in: text, bare: bare) else {
            throw SigilError.badInput(problem(text, what: what, bare: bare))
        }
        return seconds
    }
}
