import Foundation
import NIOHTTP1
import SigilCore

/// Sigil's REST API as the agent's CA: `POST /api/v1/certificates` with a CSR and a
/// profile (DESIGN.md), bearer token from a file or an environment variable.
public struct SigilRESTClient: Sendable {
    let http: AgentHTTP
    let settings: SigilAuthorityEndpoint
    let token: String

    public init(settings: SigilAuthorityEndpoint, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.settings = settings
        if let file = settings.tokenFile {
            guard let bytes = AtomicFile.read(file) else { throw SigilError.badInput("cannot read the API token file \(file)") }
            token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let name = settings.tokenEnv {
            guard let value = environment[name], !value.isEmpty else { throw SigilError.badInput("the environment variable \(name) (token_env) is not set") }
            token = value.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            throw SigilError.badInput("no API token configured (token_file or token_env)")
        }
        guard !token.isEmpty else { throw SigilError.badInput("the API token is empty") }
        http = try AgentHTTP(caBundle: settings.caBundle)
    }

    public func shutdown() async { await http.shutdown() }

    var base: String { settings.url.hasSuffix("/") ? String(settings.url.dropLast()) : settings.url }

    var headers: [(String, String)] { [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json"), ("Accept", "application/json")] }

    /// Issues a certificate for `csrPEM`; returns the PEM chain, leaf first.
    public func issue(csrPEM: String) async throws -> String {
        let body = CanonicalJSON.encode(["csr": csrPEM, "profile": settings.profile])
        let reply = try await http.send(.POST, base + "/api/v1/certificates", headers: headers, body: body)
        switch reply.status {
        case 201:
            guard let object = reply.json(), let certificate = object["certificate"] as? String else {
                throw SigilError(.io, "the Sigil API answered 201 without a certificate")
            }
            let chain = (object["chain"] as? [String]) ?? []
            return ([certificate] + chain).map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined()
        case 202:
            let id = reply.json()?["request_id"].map { "\($0)" } ?? "?"
            throw SigilError(.policyViolation, "the request waits for approval (request \(id)); the agent tries again later")
        default:
            throw SigilError(reply.status == 401 || reply.status == 403 ? .policyViolation : .io,
                             "the Sigil API refused the certificate (HTTP \(reply.status)): \(reply.problemSummary)")
        }
    }

    /// Best effort: tells the server a renewal failed (`POST /api/v1/agent/reports`).
    /// A server without that endpoint (404) or any transport error is ignored.
    public func reportFailure(certificate: String, names: [String], serial: String?, error: String) async {
        var object: [String: Any] = ["certificate": certificate, "names": names, "status": "renewal_failed", "error": error]
        object["serial"] = serial ?? NSNull()
        _ = try? await http.send(.POST, base + "/api/v1/agent/reports", headers: headers, body: CanonicalJSON.encode(object))
    }
}
