// swift-crypto 4.5.2 exposes ML-DSA-65 and -87 but not ML-DSA-44, although its
// vendored BoringSSL implements all three. Sigil reaches the C functions through
// the CCryptoBoringSSL module, which SwiftPM makes visible to every target that
// depends on Crypto. Replace this file with `Crypto.MLDSA44` once it ships.
internal import CCryptoBoringSSL
import Foundation

/// FIPS 204 ML-DSA-44, pure mode, with the same shape as swift-crypto's `MLDSA65`.
public enum MLDSA44: Sendable {
    public static let seedByteCount = 32
    public static let publicKeyByteCount = 1312
    public static let signatureByteCount = 2420

    /// An ML-DSA-44 public key in the FIPS 204 encoding.
    public struct PublicKey: Sendable, Hashable {
        public let rawRepresentation: Data

        public init<D: DataProtocol>(rawRepresentation: D) throws {
            let bytes = [UInt8](rawRepresentation)
            guard bytes.count == MLDSA44.publicKeyByteCount else {
                throw SigilError.badInput("ML-DSA-44 public key must be \(MLDSA44.publicKeyByteCount) bytes, found \(bytes.count)")
            }
            var key = MLDSA44_public_key()
            let ok = bytes.withUnsafeBufferPointer { buffer -> Int32 in
                var cbs = CBS(data: buffer.baseAddress, len: buffer.count)
                return CCryptoBoringSSL_MLDSA44_parse_public_key(&key, &cbs)
            }
            guard ok == 1 else { throw SigilError.badInput("malformed ML-DSA-44 public key") }
            self.rawRepresentation = Data(bytes)
        }

        /// Verifies a pure ML-DSA-44 signature with an empty context (RFC 9881 §3).
        public func isValidSignature<S: DataProtocol, D: DataProtocol>(_ signature: S, for data: D) -> Bool {
            var key = MLDSA44_public_key()
            let keyBytes = [UInt8](rawRepresentation)
            let parsed = keyBytes.withUnsafeBufferPointer { buffer -> Int32 in
                var cbs = CBS(data: buffer.baseAddress, len: buffer.count)
                return CCryptoBoringSSL_MLDSA44_parse_public_key(&key, &cbs)
            }
            guard parsed == 1 else { return false }
            let sig = [UInt8](signature)
            let msg = [UInt8](data)
            return sig.withUnsafeBufferPointer { sigPtr in
                msg.withUnsafeBufferPointer { msgPtr in
                    CCryptoBoringSSL_MLDSA44_verify(&key, sigPtr.baseAddress, sigPtr.count, msgPtr.baseAddress, msgPtr.count, nil, 0)
                }
            } == 1
        }
    }

    /// An ML-DSA-44 private key, held as its 32-byte seed (RFC 9881 seed form)
    /// and expanded once.
    public struct PrivateKey: Sendable {
        private let backing: Backing
        public let publicKey: PublicKey

        public init() throws {
            var seed = [UInt8](repeating: 0, count: MLDSA44.seedByteCount)
            var pub = [UInt8](repeating: 0, count: MLDSA44.publicKeyByteCount)
            let backing = Backing()
            guard CCryptoBoringSSL_MLDSA44_generate_key(&pub, &seed, backing.key) == 1 else {
                throw SigilError(.internalFailure, "ML-DSA-44 key generation failed")
            }
            backing.seed = seed
            self.backing = backing
            self.publicKey = try PublicKey(rawRepresentation: pub)
        }

        public init<D: DataProtocol>(seedRepresentation: D) throws {
            let seed = [UInt8](seedRepresentation)
            guard seed.count == MLDSA44.seedByteCount else {
                throw SigilError.badInput("ML-DSA-44 seed must be \(MLDSA44.seedByteCount) bytes, found \(seed.count)")
            }
            let backing = Backing()
            guard CCryptoBoringSSL_MLDSA44_private_key_from_seed(backing.key, seed, seed.count) == 1 else {
                throw SigilError(.internalFailure, "ML-DSA-44 key expansion failed")
            }
            backing.seed = seed
            var pub = MLDSA44_public_key()
            guard CCryptoBoringSSL_MLDSA44_public_from_private(&pub, backing.key) == 1 else {
                throw SigilError(.internalFailure, "ML-DSA-44 public key derivation failed")
            }
            var out = [UInt8](repeating: 0, count: MLDSA44.publicKeyByteCount)
            let written: Int = out.withUnsafeMutableBufferPointer { buffer in
                var cbb = CBB()
                guard CCryptoBoringSSL_CBB_init_fixed(&cbb, buffer.baseAddress, buffer.count) == 1,
                      CCryptoBoringSSL_MLDSA44_marshal_public_key(&cbb, &pub) == 1
                else { return -1 }
                var outPtr: UnsafeMutablePointer<UInt8>? = nil
                var outLen = 0
                guard CCryptoBoringSSL_CBB_finish(&cbb, &outPtr, &outLen) == 1 else { return -1 }
                return outLen
            }
            guard written == MLDSA44.publicKeyByteCount else {
                throw SigilError(.internalFailure, "ML-DSA-44 public key encoding failed")
            }
            self.backing = backing
            self.publicKey = try PublicKey(rawRepresentation: out)
        }

        public var seedRepresentation: Data { Data(backing.seed) }

        /// A pure ML-DSA-44 signature with an empty context (randomized signing).
        public func signature<D: DataProtocol>(for data: D) throws -> Data {
            var sig = [UInt8](repeating: 0, count: MLDSA44.signatureByteCount)
            let msg = [UInt8](data)
            let rc = msg.withUnsafeBufferPointer { msgPtr in
                CCryptoBoringSSL_MLDSA44_sign(&sig, backing.key, msgPtr.baseAddress, msgPtr.count, nil, 0)
            }
            guard rc == 1 else { throw SigilError(.internalFailure, "ML-DSA-44 signing failed") }
            return Data(sig)
        }

        // The expanded key lives on the heap and is wiped when released.
        // @unchecked: the key is written only during init and read-only afterwards.
        private final class Backing: @unchecked Sendable {
            let key: UnsafeMutablePointer<MLDSA44_private_key>
            var seed: [UInt8] = []
            init() {
                key = .allocate(capacity: 1)
                key.initialize(to: MLDSA44_private_key())
            }
            deinit {
                UnsafeMutableRawPointer(key).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<MLDSA44_private_key>.size)
                key.deallocate()
            }
        }
    }
}
