import Foundation
import SigilCore

/// What the agent remembers about one certificate between runs. The deployed
/// certificate itself (serial, names, expiry) is read from disk, never copied here,
/// so the two cannot disagree after a crash.
public struct CertificateState: Codable, Sendable, Equatable {
    /// The serial (hex) the renewal fields below were computed for.
    public var serial: String?
    /// The chosen renewal time and why (`ari` / `two-thirds`).
    public var renewAt: Date?
    public var renewalReason: String?
    /// RFC 9773: the last suggested window and when to ask again (its Retry-After).
    public var ariWindowStart: Date?
    public var ariWindowEnd: Date?
    public var ariCheckAfter: Date?
    public var lastSuccess: Date?
    public var lastAttempt: Date?
    public var lastError: String?
    public var consecutiveFailures: Int = 0
    /// No attempt before this (backoff after failures, persisted so a restart does not hammer the CA).
    public var nextAttempt: Date?
    public var lastReload: ReloadResult?
    /// The files changed but the reload command has not succeeded since.
    public var reloadPending: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case serial, renewAt = "renew_at", renewalReason = "renewal_reason", ariWindowStart = "ari_window_start", ariWindowEnd = "ari_window_end"
        case ariCheckAfter = "ari_check_after", lastSuccess = "last_success", lastAttempt = "last_attempt", lastError = "last_error"
        case consecutiveFailures = "consecutive_failures", nextAttempt = "next_attempt", lastReload = "last_reload"
        case reloadPending = "reload_pending"
    }
}

/// How the reload command ended.
public struct ReloadResult: Codable, Sendable, Equatable {
    public var at: Date
    public var exitCode: Int32?
    /// `exited`, `signalled`, `timed-out` or `not-started`.
    public var status: String
    /// The end of its standard error (bounded).
    public var stderr: String
    public var succeeded: Bool { status == "exited" && exitCode == 0 }

    public init(at: Date, exitCode: Int32?, status: String, stderr: String) {
        self.at = at
        self.exitCode = exitCode
        self.status = status
        self.stderr = stderr
    }

    enum CodingKeys: String, CodingKey {
        case at, exitCode = "exit_code", status, stderr
    }

    public var summary: String {
        switch status {
        case "exited": return "exit status \(exitCode ?? -1)"
        case "signalled": return "killed by signal \(exitCode ?? -1)"
        case "timed-out": return "timed out"
        default: return "could not start"
        }
    }
}

/// The state directory: `0700`, its files `0600`, every write atomic and fsynced.
///
/// Layout: `certificates/NAME.json` (CertificateState), `journal/NAME.json` (an
/// interrupted deployment), `previous/NAME/` (the version before the current one),
/// `accounts/` (ACME account keys).
public struct StateDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Creates the directory tree; refuses a state directory others can read.
    public func prepare() throws {
        for sub in ["", "/certificates", "/journal", "/previous", "/accounts"] {
            try AtomicFile.makeDirectory(path + sub, mode: 0o700)
        }
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw SigilError(.io, "the state directory \(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 700 it")
        }
    }

    public var accounts: String { path + "/accounts" }
    public func journal(_ name: String) -> String { "\(path)/journal/\(name).json" }
    public func previous(_ name: String) -> String { "\(path)/previous/\(name)" }
    func stateFile(_ name: String) -> String { "\(path)/certificates/\(name).json" }

    public func load(_ name: String) -> CertificateState {
        guard let data = FileManager.default.contents(atPath: stateFile(name)),
              let state = try? AgentJSON.decoder.decode(CertificateState.self, from: data) else { return CertificateState() }
        return state
    }

    public func save(_ state: CertificateState, for name: String) throws {
        try AtomicFile.write(Array(try AgentJSON.encoder.encode(state)), to: stateFile(name), mode: 0o600)
    }
}

enum AgentJSON {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(RFC3339.string(date))
        }
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time: \(text)"))
            }
            return date
        }
        return decoder
    }
}

/// RFC 3339 parsing (with or without fractional seconds, as ACME servers write it).
public enum Timestamp {
    public static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}

/// Durable single-file writes: temporary file in the same directory, fsync, rename, fsync the directory.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temporary = try writeTemporary(bytes, beside: path, mode: mode, suffix: "tmp")
        guard rename(temporary, path) == 0 else {
            let saved = errno
            unlink(temporary)
            throw SigilError(.io, "cannot write \(path): \(String(cString: strerror(saved)))")
        }
        syncDirectory(of: path)
    }

    /// Writes `bytes` to a new file `.BASENAME.SUFFIX-XXXXXX` beside `path`, fsynced, and returns its path.
    public static func writeTemporary(_ bytes: [UInt8], beside path: String, mode: mode_t, suffix: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var template = Array("\(directory)/.\(url.lastPathComponent).\(suffix)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SigilError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var ok = fchmod(fd, mode) == 0
        var written = 0
        while ok, written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if n <= 0 { ok = false } else { written += n }
        }
        let saved = errno
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        guard ok else {
            unlink(temporary)
            throw SigilError(.io, "cannot write \(path): \(String(cString: strerror(saved)))")
        }
        return temporary
    }

    public static func syncDirectory(of path: String) {
        syncDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    public static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    public static func makeDirectory(_ path: String, mode: mode_t) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SigilError(.io, "\(path) exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)])
        } catch {
            throw SigilError(.io, "cannot create \(path): \(error.localizedDescription)")
        }
        chmod(path, mode)
        syncDirectory(of: path)
    }

    public static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map(Array.init)
    }
}

/// `write(2)`, reachable from inside `AtomicFile` (whose own `write` would shadow it).
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
