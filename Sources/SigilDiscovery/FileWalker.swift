import Foundation
import SigilCore
#if canImport(Glibc)
import Glibc
#endif

/// One file read by `sigil import`.
public struct ImportedFile: Sendable {
    /// Absolute path.
    public var path: String
    public var contents: CertificateFile
}

/// A file or directory left out, and why.
public struct SkippedPath: Sendable, Codable, Equatable {
    public var path: String
    public var reason: String
}

/// The files under the paths given to `sigil import`, read and parsed.
public struct FileCollection: Sendable {
    public var files: [ImportedFile] = []
    public var skipped: [SkippedPath] = []
}

/// Walks files and directories recursively. Symbolic links are followed, but a
/// directory already visited (by device and inode) is not entered again, so link
/// loops end. Unreadable entries are noted and skipped.
public struct FileWalker: Sendable {
    /// Certificate files are small; anything larger is not read (it is not a certificate bundle).
    public var maximumFileSize = 16 * 1024 * 1024
    /// Bounds the walk: a typo such as `/` must not read a whole disk.
    public var maximumFiles = 100_000

    public init() {}

    /// Every path must exist (a typo is bad input, before anything is read).
    public func collect(_ paths: [String], progress: @Sendable (Int) -> Void = { _ in }) throws -> FileCollection {
        let absolute = paths.map(Self.absolute)
        for path in absolute {
            var info = stat()
            guard stat(path, &info) == 0 || lstat(path, &info) == 0 else {
                throw SigilError.badInput("\(path): \(String(cString: strerror(errno)))")
            }
        }
        var collection = FileCollection()
        var visited: Set<[UInt64]> = []
        var pending = absolute.reversed().map { $0 }
        while let path = pending.popLast() {
            var info = stat()
            guard stat(path, &info) == 0 else {
                collection.skipped.append(SkippedPath(path: path, reason: String(cString: strerror(errno))))
                continue
            }
            switch info.st_mode & mode_t(S_IFMT) {
            case mode_t(S_IFDIR):
                guard visited.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else { continue }
                do {
                    let entries = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                    pending += entries.reversed().map { path == "/" ? "/\($0)" : "\(path)/\($0)" }
                } catch {
                    collection.skipped.append(SkippedPath(path: path, reason: "directory not readable"))
                }
            case mode_t(S_IFREG):
                guard collection.files.count < maximumFiles else {
                    throw SigilError.badInput("more than \(maximumFiles) files under \(paths.joined(separator: ", ")); import fewer at a time")
                }
                guard Int(info.st_size) <= maximumFileSize else {
                    collection.skipped.append(SkippedPath(path: path, reason: "larger than \(maximumFileSize / 1024 / 1024) MiB"))
                    continue
                }
                switch Self.read(path) {
                case .success(let bytes):
                    collection.files.append(ImportedFile(path: path, contents: CertificateFile(bytes: bytes, source: path)))
                    progress(collection.files.count)
                case .failure(let reason):
                    collection.skipped.append(SkippedPath(path: path, reason: reason.reason))
                }
            default:
                collection.skipped.append(SkippedPath(path: path, reason: "not a regular file"))
            }
        }
        return collection
    }

    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: full).standardizedFileURL.path
    }

    struct ReadFailure: Error { var reason: String }

    static func read(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(reason: "not readable: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(reason: "read failed: \(String(cString: strerror(errno)))"))
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return .success(bytes)
    }
}
