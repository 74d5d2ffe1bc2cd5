/// The one error type of SigilCore.
///
/// `kind` tells callers what went wrong in a way they can branch on (and the
/// command line maps to an exit code); `message` is the one line a person reads.
/// Messages name the file, field or value at fault and never carry secret material.
public struct SigilError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        /// The input (a file, a PEM block, a flag value) is malformed or of the wrong kind.
        public static let badInput = Kind(raw: "bad-input")
        /// The passphrase does not decrypt the key.
        public static let wrongPassphrase = Kind(raw: "wrong-passphrase")
        /// The algorithm or format is recognised but not supported.
        public static let unsupported = Kind(raw: "unsupported")
        /// A request breaks a rule (template, profile, policy); `reasons` lists every rule.
        public static let policyViolation = Kind(raw: "policy-violation")
        /// The request contradicts the current state (already revoked, already decided).
        public static let conflict = Kind(raw: "conflict")
        /// The thing asked for does not exist.
        public static let notFound = Kind(raw: "not-found")
        /// A signature does not verify.
        public static let verificationFailed = Kind(raw: "verification-failed")
        /// Reading or writing a file failed.
        public static let io = Kind(raw: "io")
        /// The target exists and the caller did not ask to replace it.
        public static let alreadyExists = Kind(raw: "already-exists")
        /// A cryptographic primitive failed unexpectedly.
        public static let internalFailure = Kind(raw: "internal")
        public var description: String { raw }
    }

    public var kind: Kind
    public var message: String
    /// For `policyViolation`: every rule the request broke, in rule order.
    public var reasons: [String]

    public init(_ kind: Kind, _ message: String, reasons: [String] = []) {
        self.kind = kind
        self.message = message
        self.reasons = reasons
    }

    public static func badInput(_ message: String) -> SigilError { SigilError(.badInput, message) }
    public static func unsupported(_ message: String) -> SigilError { SigilError(.unsupported, message) }

    public var description: String {
        if reasons.isEmpty { return message }
        return message + "\n" + reasons.map { "  - " + $0 }.joined(separator: "\n")
    }
}
