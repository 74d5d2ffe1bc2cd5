import Crypto
import Foundation
import SigilAuthority
import SigilCore
import SigilStore
import Synchronization

/// Anti-replay nonces (RFC 8555 §6.5).
///
/// A nonce is self-authenticating: 16 random bytes, an expiry time and an HMAC-SHA256 tag
/// under a server key, so issuing one costs no storage. Single use is enforced when a
/// nonce is redeemed: in memory on a single node, or in the database (a unique row per
/// used nonce) when several nodes share one; the HMAC key then lives in the database too,
/// so a nonce issued by one node is accepted once by any other.
public final class NonceLedger: Sendable {
    public enum Mode: Sendable {
        /// One node: used nonces kept in memory; the key is random per process, so a
        /// restart turns old nonces into `badNonce` (clients retry with a fresh one).
        case memory
        /// Several nodes: key and used nonces in the store.
        case store
    }

    private let key: SymmetricKey
    private let mode: Mode
    private let store: any Store
    private let clock: any SigilClock
    private let used = UsedNonces()
    /// How long a nonce stays redeemable.
    public let lifetime: TimeInterval

    public static func make(store: any Store, mode: Mode, clock: any SigilClock, lifetime: TimeInterval = 900) async throws -> NonceLedger {
        let key: SymmetricKey
        switch mode {
        case .memory:
            key = SymmetricKey(size: .bits256)
        case .store:
            let fresh = Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
            let stored = try await store.write { session -> String in
                if let existing = try await session.setting("acme.nonce_key") { return existing }
                try await session.insertSetting("acme.nonce_key", value: fresh)
                return fresh
            }
            guard let bytes = Base64URL.decode(stored), bytes.count == 32 else {
                throw SigilError(.internalFailure, "the stored ACME nonce key is damaged")
            }
            key = SymmetricKey(data: bytes)
        }
        return NonceLedger(key: key, mode: mode, store: store, clock: clock, lifetime: lifetime)
    }

    private init(key: SymmetricKey, mode: Mode, store: any Store, clock: any SigilClock, lifetime: TimeInterval) {
        self.key = key
        self.mode = mode
        self.store = store
        self.clock = clock
        self.lifetime = lifetime
    }

    /// A fresh nonce: base64url of random(16) ‖ expiry(8, big-endian seconds) ‖ tag(16).
    public func issue() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let expiry = UInt64(clock.now().addingTimeInterval(lifetime).timeIntervalSince1970)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: expiry >> UInt64(shift))) }
        let tag = HMAC<SHA256>.authenticationCode(for: bytes, using: key)
        bytes.append(contentsOf: Array(tag).prefix(16))
        return Base64URL.encode(bytes)
    }

    /// Checks the tag and the expiry without redeeming (cheap; no storage).
    public func check(_ nonce: String) throws(ACMEProblem) -> Date {
        // RFC 8555 §6.5.1: the value is base64url; anything else is malformed as a nonce → badNonce.
        guard nonce.utf8.count == 54, let bytes = Base64URL.decode(nonce), bytes.count == 40 else {
            throw ACMEProblem(.badNonce, "the JWS nonce is not one this server issued")
        }
        let body = bytes[0..<24], tag = bytes[24..<40]
        let expected = Array(HMAC<SHA256>.authenticationCode(for: Array(body), using: key)).prefix(16)
        guard AccessTokens.constantTimeEquals(Array(expected), Array(tag)) else {
            throw ACMEProblem(.badNonce, "the JWS nonce is not one this server issued")
        }
        let expiry = bytes[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let expires = Date(timeIntervalSince1970: Double(expiry))
        guard expires > clock.now() else { throw ACMEProblem(.badNonce, "the JWS nonce has expired; use the fresh one in this response") }
        return expires
    }

    /// Redeems a checked nonce: the second redemption anywhere fails with `badNonce`.
    public func redeem(_ nonce: String, expires: Date) async throws {
        switch mode {
        case .memory:
            guard used.insert(nonce, expires: expires, now: clock.now()) else {
                throw ACMEProblem(.badNonce, "the JWS nonce was used before; use the fresh one in this response")
            }
        case .store:
            do {
                try await store.write { try await $0.consumeACMENonce(nonce, expires: expires) }
            } catch let error as StoreError where error.code == .duplicate {
                throw ACMEProblem(.badNonce, "the JWS nonce was used before; use the fresh one in this response")
            }
        }
    }

    /// Deletes redeemed nonces that have expired (they would fail the expiry check anyway).
    public func prune() async throws {
        switch mode {
        case .memory: used.prune(now: clock.now())
        case .store: _ = try await store.write { try await $0.pruneACMENonces(before: self.clock.now()) }
        }
    }
}

/// Used nonces with their expiry, pruned as they age out.
final class UsedNonces: Sendable {
    private let state = Mutex<(entries: [String: Date], lastPrune: Date)>(([:], .distantPast))

    func insert(_ nonce: String, expires: Date, now: Date) -> Bool {
        state.withLock { state in
            if now.timeIntervalSince(state.lastPrune) > 60 {
                state.entries = state.entries.filter { $0.value > now }
                state.lastPrune = now
            }
            return state.entries.updateValue(expires, forKey: nonce) == nil
        }
    }

    func prune(now: Date) {
        state.withLock { state in
            state.entries = state.entries.filter { $0.value > now }
            state.lastPrune = now
        }
    }
}
