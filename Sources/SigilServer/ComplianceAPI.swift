import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SigilCore
import SigilStore

/// `GET /api/v1/reports/compliance`: the compliance report (the engine behind `sigil report
/// compliance` and the dashboard) as JSON, CSV or HTML, for auditors and above.
enum ComplianceAPI {
    static func report(_ request: Request, _ context: SigilRequestContext, _ env: ServerEnvironment) async throws -> Response {
        let q = try Query(request, allowed: ["format", "expiring_within", "seen_within", "max_validity"])
        let formatName = q["format"] ?? "json"
        guard let format = ComplianceReportFormat(rawValue: formatName), format != .text else {
            throw Problem(.malformedRequest, "format must be json, csv or html")
        }
        var policy = CompliancePolicy()
        if let text = q["expiring_within"] { policy.expiringWithin = try DurationText.parse(text) }
        if let text = q["seen_within"] { policy.seenWithin = try DurationText.parse(text) }
        if let text = q["max_validity"] {
            guard let days = Int(text), (1...36_500).contains(days) else { throw Problem(.malformedRequest, "max_validity must be a number of days from 1 to 36500") }
            policy.maxValidityDays = days
        }
        let now = env.clock.now()
        let chosen = policy
        let report = try await env.authority.store.read { try await $0.complianceReport(chosen, now: now, examples: nil) }
        var headers: HTTPFields = [.contentType: format.contentType, .cacheControl: "no-store"]
        if format != .json { headers[.contentDisposition] = "attachment; filename=\"compliance-report.\(format.rawValue)\"" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try format.render(report))))
    }
}
