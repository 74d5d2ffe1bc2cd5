/// CRLReason (RFC 5280 §5.3.1). Value 7 is unused by the RFC.
public enum RevocationReason: Int, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case unspecified = 0
    case keyCompromise = 1
    case cACompromise = 2
    case affiliationChanged = 3
    case superseded = 4
    case cessationOfOperation = 5
    case certificateHold = 6
    case removeFromCRL = 8
    case privilegeWithdrawn = 9
    case aACompromise = 10

    public var description: String { name }

    public var name: String {
        switch self {
        case .unspecified: return "unspecified"
        case .keyCompromise: return "keyCompromise"
        case .cACompromise: return "cACompromise"
        case .affiliationChanged: return "affiliationChanged"
        case .superseded: return "superseded"
        case .cessationOfOperation: return "cessationOfOperation"
        case .certificateHold: return "certificateHold"
        case .removeFromCRL: return "removeFromCRL"
        case .privilegeWithdrawn: return "privilegeWithdrawn"
        case .aACompromise: return "aACompromise"
        }
    }

    /// Accepts the RFC names in any case, with or without hyphens, and the numbers.
    public init(parsing text: String) throws {
        let key = text.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
        if let number = Int(key), let reason = RevocationReason(rawValue: number) {
            self = reason
            return
        }
        guard let reason = RevocationReason.allCases.first(where: { $0.name.lowercased() == key }) else {
            throw SigilError.badInput("unknown revocation reason '\(text)': use one of \(RevocationReason.allCases.map(\.name).joined(separator: ", "))")
        }
        self = reason
    }
}
