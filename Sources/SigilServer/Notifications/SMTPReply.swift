import Foundation

/// One SMTP reply (RFC 5321 §4.2): a three-digit code and one or more text lines.
/// A multi-line reply is `250-first`, `250-second`, ..., `250 last`: every line
/// carries the same code, `-` after it on all but the last.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// 2yz: the command was accepted (§4.2.1).
    public var isPositive: Bool { (200..<300).contains(code) }
    /// 3yz: send more (after DATA, or an AUTH challenge).
    public var isIntermediate: Bool { (300..<400).contains(code) }
    public var text: String { lines.joined(separator: " / ") }

    /// EHLO keywords (RFC 5321 §4.1.1.1): the first word of each line after the greeting line, upper-cased.
    public var extensions: Set<String> {
        Set(lines.dropFirst().compactMap { $0.split(separator: " ").first.map { $0.uppercased() } })
    }

    /// The mechanisms of the AUTH extension line (RFC 4954 §3).
    public var authMechanisms: Set<String> {
        for line in lines.dropFirst() {
            let words = line.split(separator: " ").map { $0.uppercased() }
            if words.first == "AUTH" { return Set(words.dropFirst()) }
        }
        return []
    }
}

/// Cuts complete replies off the front of the bytes received so far.
public enum SMTPReplyParser {
    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    /// RFC 5321 §4.5.3.1.5 allows 512 octets a reply line; servers are generous with text, so allow more, but not without end.
    static let maxLineLength = 4096
    static let maxLines = 200

    /// A complete reply from the front of `buffer` (removed from it), nil while it is incomplete.
    public static func parse(_ buffer: inout [UInt8]) throws -> SMTPReply? {
        var code: Int?
        var lines: [String] = []
        var start = 0
        while true {
            guard let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.count - start > maxLineLength { throw Malformed(description: "a reply line is longer than \(maxLineLength) bytes") }
                return nil
            }
            var end = newline
            if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = Array(buffer[start..<end])
            guard line.count >= 3, line.count <= maxLineLength, line[0..<3].allSatisfy({ (0x30...0x39).contains($0) }),
                  (0x32...0x35).contains(line[0]) else {
                throw Malformed(description: "not an SMTP reply line: \(String(decoding: line.prefix(80), as: UTF8.self))")
            }
            let lineCode = Int(String(decoding: line[0..<3], as: UTF8.self))!
            if let code, code != lineCode { throw Malformed(description: "a multi-line reply changed its code from \(code) to \(lineCode)") }
            code = lineCode
            let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
            guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
                throw Malformed(description: "a reply code must be followed by a space or '-'")
            }
            lines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
            guard lines.count <= maxLines else { throw Malformed(description: "a reply has more than \(maxLines) lines") }
            start = newline + 1
            if separator == UInt8(ascii: " ") {
                buffer.removeFirst(start)
                return SMTPReply(code: lineCode, lines: lines)
            }
        }
    }
}
