import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SigilCore

/// A JSON object body, checked strictly: unknown fields and wrong types are
/// errors, not ignored, so a typo never silently changes what is asked for.
struct JSONBody {
    let object: [String: Any]

    static func read(_ request: Request, context: SigilRequestContext, allowed: Set<String>, required: Set<String>) async throws -> JSONBody {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw Problem(.unsupportedMediaType, "send the body as application/json")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            throw Problem(.payloadTooLarge, "the request body is larger than \(context.maxUploadSize) bytes")
        }
        let data = Data(buffer.readableBytesView)
        if data.isEmpty && required.isEmpty { return JSONBody(object: [:]) }
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw Problem(.malformedRequest, "the body is not a JSON object")
        }
        let unknown = Set(object.keys).subtracting(allowed)
        if !unknown.isEmpty { throw Problem(.malformedRequest, "unknown field\(unknown.count == 1 ? "" : "s"): \(unknown.sorted().joined(separator: ", "))") }
        let missing = required.subtracting(object.keys)
        if !missing.isEmpty { throw Problem(.malformedRequest, "missing field\(missing.count == 1 ? "" : "s"): \(missing.sorted().joined(separator: ", "))") }
        return JSONBody(object: object)
    }

    func string(_ key: String) throws -> String {
        guard let value = object[key] as? String else { throw Problem(.malformedRequest, "\(key) must be a string") }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw Problem(.malformedRequest, "\(key) must be a string") }
        return text
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        // JSONSerialization gives NSNumber for both numbers and booleans; refuse booleans and fractions.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              let int = Int(exactly: number.doubleValue), abs(int) < 1_000_000 else {
            throw Problem(.malformedRequest, "\(key) must be an integer")
        }
        return int
    }

    func optionalStrings(_ key: String) throws -> [String]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any], list.allSatisfy({ $0 is String }) else { throw Problem(.malformedRequest, "\(key) must be a list of strings") }
        return list.map { $0 as! String }
    }

    func csr(_ key: String) throws -> CertificationRequest {
        let text = try string(key)
        do {
            return try CertificationRequest(pemOrDER: Array(text.utf8), source: key)
        } catch let error as SigilError {
            throw Problem(.malformedRequest, error.message)
        }
    }
}

/// Query parameters, with unknown ones refused.
struct Query {
    let values: [String: String]

    init(_ request: Request, allowed: Set<String>) throws {
        var values: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            let k = String(key)
            guard allowed.contains(k) else { throw Problem(.malformedRequest, "unknown query parameter '\(k)'") }
            values[k] = String(value)
        }
        self.values = values
    }

    subscript(_ key: String) -> String? { values[key] }

    func int(_ key: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = values[key] else { return value }
        guard let int = Int(text), range.contains(int) else {
            throw Problem(.malformedRequest, "\(key) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return int
    }
}

extension SigilRequestContext {
    func parameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw Problem(.malformedRequest, "missing \(name)") }
        return value
    }
}

func json(_ status: HTTPResponse.Status, _ object: [String: Any], location: String? = nil) throws -> Response {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    var headers: HTTPFields = [.contentType: "application/json"]
    if let location { headers[.location] = location }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func encodable<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
