import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SigilCore
import SigilStore

/// An RFC 9457 problem document. `code` is stable: the `type` is
/// `urn:sigil:problem:<code>`; the title goes with the code; `detail` says
/// what happened this time and never carries secrets or internal errors.
public struct Problem: Error, HTTPResponseError, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        case unauthorized = "unauthorized"
        case forbidden = "forbidden"
        case notFound = "not-found"
        case malformedRequest = "malformed-request"
        case payloadTooLarge = "payload-too-large"
        case unsupportedMediaType = "unsupported-media-type"
        case policyViolation = "policy-violation"
        case conflict = "conflict"
        case methodNotAllowed = "method-not-allowed"
        case unavailable = "service-unavailable"
        case internalError = "internal-error"

        public var status: HTTPResponse.Status {
            switch self {
            case .unauthorized: return .unauthorized
            case .forbidden: return .forbidden
            case .notFound: return .notFound
            case .malformedRequest: return .badRequest
            case .payloadTooLarge: return .contentTooLarge
            case .unsupportedMediaType: return .unsupportedMediaType
            case .policyViolation: return .unprocessableContent
            case .conflict: return .conflict
            case .methodNotAllowed: return .methodNotAllowed
            case .unavailable: return .serviceUnavailable
            case .internalError: return .internalServerError
            }
        }

        public var title: String {
            switch self {
            case .unauthorized: return "Authentication required"
            case .forbidden: return "Not allowed for this role"
            case .notFound: return "Not found"
            case .malformedRequest: return "Malformed request"
            case .payloadTooLarge: return "Request body too large"
            case .unsupportedMediaType: return "Unsupported media type"
            case .policyViolation: return "The request breaks policy"
            case .conflict: return "Conflict with the current state"
            case .methodNotAllowed: return "Method not allowed"
            case .unavailable: return "Service unavailable"
            case .internalError: return "Internal error"
            }
        }
    }

    public var code: Code
    public var detail: String
    /// For policy violations: every rule broken.
    public var errors: [String]

    public init(_ code: Code, _ detail: String, errors: [String] = []) {
        self.code = code
        self.detail = detail
        self.errors = errors
    }

    public var status: HTTPResponse.Status { code.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: Any] = [
            "type": "urn:sigil:problem:\(code.rawValue)", "title": code.title, "status": code.status.code, "detail": detail,
            "instance": request.uri.path,
        ]
        if !errors.isEmpty { body["errors"] = errors }
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if code == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"sigil\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Maps domain errors to problems; anything unexpected becomes a 500 whose
    /// detail says nothing internal.
    public static func from(_ error: any Error) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as SigilError:
            switch error.kind {
            case .policyViolation: return Problem(.policyViolation, error.message, errors: error.reasons)
            case .notFound: return Problem(.notFound, error.message)
            case .alreadyExists, .conflict: return Problem(.conflict, error.message)
            case .verificationFailed: return Problem(.policyViolation, error.message, errors: error.reasons)
            case .internalFailure, .io: return Problem(.internalError, "the operation failed")
            default: return Problem(.malformedRequest, error.message, errors: error.reasons)
            }
        case let error as StoreError:
            switch error.code {
            case .duplicate: return Problem(.conflict, error.message)
            case .notFound: return Problem(.notFound, error.message)
            case .unavailable: return Problem(.unavailable, "the database is unavailable; retry later")
            default: return Problem(.unavailable, "the database failed; retry later")
            }
        case let error as HTTPError:
            switch error.status {
            case .contentTooLarge: return Problem(.payloadTooLarge, "the request body is larger than allowed")
            case .notFound: return Problem(.notFound, "no such resource")
            case .methodNotAllowed: return Problem(.methodNotAllowed, "this method is not allowed on this resource")
            case .unauthorized: return Problem(.unauthorized, "authentication required")
            default: return Problem(.malformedRequest, error.body ?? "the request is malformed")
            }
        default:
            return Problem(.internalError, "the operation failed")
        }
    }
}

/// Turns every thrown error into a problem document, so no route can leak a raw
/// error or answer without a body.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Problem.from(error)
            if problem.code == .internalError {
                context.logger.error("request failed", metadata: ["error": "\(String(describing: type(of: error)))"])
            }
            return try problem.response(from: request, context: context)
        }
    }
}
