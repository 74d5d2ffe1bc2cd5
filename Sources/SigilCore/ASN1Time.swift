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

/// RFC 3339 timestamps in UTC with whole seconds, without a DateFormatter
/// (creating one per call is expensive, and issuance writes several per certificate).
public enum RFC3339 {
    public static func string(_ date: Date) -> String {
        let (y, mo, d, h, mi, s) = DERWriter.civil(Int64(date.timeIntervalSince1970.rounded(.down)))
        func pad(_ v: Int, _ width: Int) -> String {
            let text = String(v)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(y, 4))-\(pad(mo, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2))Z"
    }
}
