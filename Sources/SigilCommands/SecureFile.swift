import Foundation
import SigilAgent
import SigilCore

/// Writes files so that a reader sees the old content or the new, never a part:
/// a temporary file in the same directory, fsync, then rename (or link, when an
/// existing file must not be replaced), then fsync of the directory.
///
/// `FileTransaction` stages several files and commits them together: if any
/// cannot be staged, none is written.
public struct FileTransaction {
    struct Staged {
        var temporary: String
        var destination: String
        var overwrite: Bool
    }

    private var staged: [Staged] = []

    public init() {}

    /// Writes `bytes` to a temporary file beside `path` with `mode`.
    public mutating func stage(_ bytes: [UInt8], to path: String, mode: mode_t, overwrite: Bool) throws {
        if !overwrite, FileManager.default.fileExists(atPath: path) {
            throw SigilError(.alreadyExists, "\(path) already exists; use --force to replace it")
        }
        let temporary = try AtomicFile.writeTemporary(bytes, beside: path, mode: mode, suffix: "tmp")
        staged.append(Staged(temporary: temporary, destination: path, overwrite: overwrite))
    }

    /// Moves every staged file into place. On failure, files already moved by this
    /// call are removed again and all temporaries are deleted.
    public mutating func commit() throws {
        var done: [String] = []
        var directories: [String] = []
        defer { staged.forEach { unlink($0.temporary) }; staged = [] }
        for file in staged {
            let result: Int32
            if file.overwrite {
                result = rename(file.temporary, file.destination)
            } else {
                // link(2) fails with EEXIST instead of replacing: no race with a concurrent writer.
                result = link(file.temporary, file.destination)
            }
            if result != 0 {
                let saved = errno
                done.forEach { unlink($0) }
                if saved == EEXIST {
                    throw SigilError(.alreadyExists, "\(file.destination) already exists; use --force to replace it")
                }
                throw SigilError(.io, "cannot write \(file.destination): \(String(cString: strerror(saved)))")
            }
            done.append(file.destination)
            let directory = URL(fileURLWithPath: file.destination).deletingLastPathComponent().path
            if !directories.contains(directory) { directories.append(directory) }
        }
        // One fsync per directory makes every rename in it durable.
        for directory in directories { AtomicFile.syncDirectory(directory) }
    }

    /// Deletes every staged temporary file.
    public mutating func rollback() {
        staged.forEach { unlink($0.temporary) }
        staged = []
    }
}

enum Files {
    static func read(_ path: String, what: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw SigilError(.io, isDirectory.boolValue ? "\(path) is a directory, not a \(what)" : "cannot read \(path): permission denied")
            }
            throw SigilError(.io, "cannot read \(what) \(path): no such file")
        }
        guard !data.isEmpty else { throw SigilError.badInput("\(path) is empty") }
        return Array(data)
    }
}
