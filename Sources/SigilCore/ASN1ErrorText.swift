import SwiftASN1

/// One plain sentence for a SwiftASN1 error, without source locations.
enum ASN1ErrorText {
    static func describe(_ error: any Error) -> String {
        guard let asn1 = error as? ASN1Error else { return String(describing: error) }
        switch asn1.code {
        case .truncatedASN1Field: return "the data is truncated"
        case .invalidASN1Object: return "the DER structure is invalid"
        case .unexpectedFieldType: return "a field has an unexpected type"
        case .unsupportedFieldLength: return "a field length is not supported"
        case .invalidASN1IntegerEncoding: return "an INTEGER is not minimally encoded"
        case .invalidStringRepresentation: return "a string has characters its type does not allow"
        case .tooFewOIDComponents: return "an OBJECT IDENTIFIER is too short"
        default: return "the DER structure is invalid (\(asn1.code))"
        }
    }
}
