import Crypto
import Foundation
import SigilAuthority
import SigilCore

/// The webhook signature: `Sigil-Signature: t=UNIX,v1=HEX`, where HEX is
/// HMAC-SHA256 (RFC 2104) keyed with the webhook's secret over the bytes
/// `UNIX` + `.` + body. A receiver recomputes it over the raw body, compares in
/// constant time, and refuses timestamps too far from its clock (replays).
public enum WebhookSignature {
    public static let header = "Sigil-Signature"

    public static func sign(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=\(mac(secret: secret, timestamp: timestamp, body: body))"
    }

    static func mac(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(timestamp).".utf8)
        message += body
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }

    /// Checks a header value: a `v1` signature that matches, and a timestamp within `tolerance` of `now`.
    public static func verify(_ value: String, secret: [UInt8], body: [UInt8], now: Date, tolerance: TimeInterval = 300) -> Bool {
        var timestamp: Int64?
        var signatures: [String] = []
        for part in value.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) }
            if pair[0] == "v1" { signatures.append(pair[1].lowercased()) }
        }
        guard let timestamp, abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let expected = mac(secret: secret, timestamp: timestamp, body: body)
        return signatures.contains { AccessTokens.constantTimeEquals(Array($0.utf8), Array(expected.utf8)) }
    }
}
