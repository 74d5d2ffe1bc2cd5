import Crypto
import Foundation
import SigilCore

/// The audit log's hash chain. Each entry's hash covers its own fields and the
/// previous entry's hash, so changing, removing or reordering any entry breaks
/// every link after it.
public enum AuditChain {
    /// The `prevHash` of the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// Canonical JSON for details: sorted keys, no whitespace.
    public static func canonicalDetails(_ details: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(details)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// SHA-256 over length-prefixed fields, so no two field lists share an encoding.
    public static func hash(seq: Int64, time: Date, actor: String, action: String, object: String, details: String, prevHash: String) -> String {
        var hasher = SHA256()
        func field(_ text: String) {
            let bytes = Array(text.utf8)
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        field(String(seq))
        field(String(Int64((time.timeIntervalSince1970 * 1000).rounded())))
        field(actor)
        field(action)
        field(object)
        field(details)
        field(prevHash)
        return Hex.encode(hasher.finalize())
    }

    public static func hash(of entry: AuditEntry) -> String {
        hash(seq: entry.seq, time: entry.time, actor: entry.actor, action: entry.action, object: entry.object,
             details: entry.details, prevHash: entry.prevHash)
    }

    /// The outcome of checking a chain.
    public struct Verification: Sendable, Equatable, Codable {
        public var ok: Bool
        public var entries: Int64
        /// The first entry at fault, with what is wrong with it.
        public var firstBadSeq: Int64?
        public var problem: String?
        public var headHash: String
    }

    /// Walks entries in order (as the store returns them) and names the first
    /// changed, removed or reordered one.
    public struct Verifier: Sendable {
        private var expectedSeq: Int64 = 1
        private var previousHash = AuditChain.genesis
        private var count: Int64 = 0
        private var failure: (Int64, String)?

        public init() {}

        public mutating func feed(_ entry: AuditEntry) {
            guard failure == nil else { return }
            count += 1
            if entry.seq != expectedSeq {
                failure = entry.seq > expectedSeq
                    ? (expectedSeq, "entry \(expectedSeq)\(entry.seq - expectedSeq > 1 ? "–\(entry.seq - 1)" : "") is missing (removed)")
                    : (entry.seq, "entry \(entry.seq) is out of order (reordered or duplicated)")
                return
            }
            if entry.prevHash != previousHash {
                failure = (entry.seq, "entry \(entry.seq) does not follow entry \(entry.seq - 1) (its previous-hash link is broken: removed or reordered entries)")
                return
            }
            if hash(of: entry) != entry.hash {
                failure = (entry.seq, "entry \(entry.seq) was changed (its contents do not match its hash)")
                return
            }
            previousHash = entry.hash
            expectedSeq += 1
        }

        public var result: Verification {
            Verification(ok: failure == nil, entries: count, firstBadSeq: failure?.0, problem: failure?.1, headHash: previousHash)
        }
    }
}
