import Foundation
import SwiftASN1

/// X.509 `Time` (RFC 5280 §4.1.2.5): UTCTime for dates through 2049,
/// GeneralizedTime from 2050 on, always in UTC with whole seconds.
public enum ASN1Time {
    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    public static func serialize(_ date: Date, into coder: inout DER.Serializer) throws {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let (year, month, day, hour, minute, second) = (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        if (1950...2049).contains(year) {
            try coder.serialize(UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second))
        } else {
            try coder.serialize(GeneralizedTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second, fractionalSeconds: 0))
        }
    }

    public static func parse(_ node: ASN1Node) throws -> Date {
        let components: DateComponents
        if node.identifier == UTCTime.defaultIdentifier {
            let t = try UTCTime(derEncoded: node)
            components = DateComponents(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds)
        } else if node.identifier == GeneralizedTime.defaultIdentifier {
            let t = try GeneralizedTime(derEncoded: node)
            components = DateComponents(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds)
        } else {
            throw SigilError.badInput("expected UTCTime or GeneralizedTime")
        }
        guard let date = calendar.date(from: components) else { throw SigilError.badInput("invalid time") }
        return date
    }

    /// Drops sub-second precision, as the encoding does.
    public static func truncate(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }
}
