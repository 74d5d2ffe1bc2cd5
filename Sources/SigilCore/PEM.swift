import Foundation

/// One block of RFC 7468 textual encoding.
public struct PEMBlock: Sendable, Equatable {
    public var label: String
    public var derBytes: [UInt8]
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`) when present; modern formats have none.
    public var headers: [String: String]
    /// The 1-based line of the BEGIN line, for error messages.
    public var line: Int

    public init(label: String, derBytes: [UInt8], headers: [String: String] = [:], line: Int = 1) {
        self.label = label
        self.derBytes = derBytes
        self.headers = headers
        self.line = line
    }

    /// The block as text, 64 base64 characters a line (RFC 7468 §2).
    public var pemString: String { PEM.encode(label: label, der: derBytes) }
}

/// RFC 7468 parsing that tolerates what real files hold (text before, between
/// and after blocks, CRLF line ends, explanatory headers) and says exactly what is
/// wrong when a block is damaged.
public enum PEM {
    /// True when `bytes` look like text with a PEM block rather than DER.
    public static func looksLikePEM(_ bytes: [UInt8]) -> Bool {
        let marker = Array("-----BEGIN ".utf8)
        guard bytes.count >= marker.count else { return false }
        // A DER SEQUENCE starts with 0x30; PEM files may start with any text.
        if bytes.first == 0x30 { return false }
        return bytes.firstRange(of: marker) != nil
    }

    public static func encode(label: String, der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString()
        var out = "-----BEGIN \(label)-----\n"
        var index = b64.startIndex
        while index < b64.endIndex {
            let end = b64.index(index, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            out += b64[index..<end]
            out += "\n"
            index = end
        }
        out += "-----END \(label)-----\n"
        return out
    }

    /// Every block in `text`. Throws when a block is truncated or its base64 is damaged,
    /// and when there is no block at all.
    public static func parse(_ text: String, source: String = "input") throws -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { String($0).trimmingCharacters(in: .whitespaces) }
        if lines.last == "" { lines.removeLast() }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            guard line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), line.count > 16 else {
                i += 1
                continue
            }
            let label = String(line.dropFirst(11).dropLast(5))
            let beginLine = i + 1
            var headers: [String: String] = [:]
            var body = ""
            var j = i + 1
            var ended = false
            var sawBody = false
            while j < lines.count {
                let current = lines[j]
                if current.hasPrefix("-----END ") {
                    let endLabel = String(current.dropFirst(9).dropLast(current.hasSuffix("-----") ? 5 : 0))
                    guard endLabel == label, current.hasSuffix("-----") else {
                        throw SigilError.badInput("\(source): PEM block '\(label)' opened at line \(beginLine) is closed by '\(current)' at line \(j + 1)")
                    }
                    ended = true
                    break
                }
                if current.hasPrefix("-----BEGIN ") {
                    break
                }
                if !sawBody, let colon = current.firstIndex(of: ":"), !current.contains(" ") || current.hasPrefix("Proc-Type") || current.hasPrefix("DEK-Info") {
                    headers[String(current[..<colon])] = String(current[current.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                } else if !current.isEmpty {
                    sawBody = true
                    body += current
                }
                j += 1
            }
            guard ended else {
                throw SigilError.badInput("\(source): truncated PEM: block '\(label)' opened at line \(beginLine) has no '-----END \(label)-----' line")
            }
            guard !body.isEmpty else {
                throw SigilError.badInput("\(source): PEM block '\(label)' at line \(beginLine) is empty")
            }
            guard body.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || $0 == "+" || $0 == "/" || $0 == "=" }),
                  let data = Data(base64Encoded: body)
            else {
                throw SigilError.badInput("\(source): PEM block '\(label)' at line \(beginLine) has invalid base64 (damaged or truncated)")
            }
            blocks.append(PEMBlock(label: label, derBytes: Array(data), headers: headers, line: beginLine))
            i = j + 1
        }
        guard !blocks.isEmpty else {
            throw SigilError.badInput("\(source): no PEM block found (expected a '-----BEGIN ...-----' line)")
        }
        return blocks
    }
}
