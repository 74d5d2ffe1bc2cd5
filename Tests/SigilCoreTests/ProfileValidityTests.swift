import Foundation
import SigilCore
import SigilTesting
import Testing

@Suite("Profile validity finer than a day")
struct ProfileValidityTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func profile(_ json: String) throws -> CertificateProfile {
        let override = try JSONDecoder().decode(ProfileOverride.self, from: Data(json.utf8))
        return try override.apply(name: "short", profiles: CertificateProfile.builtIn)
    }

    func verdict(_ profile: CertificateProfile, days: Int? = nil) throws -> PolicyVerdict {
        let (csr, _) = try TestAuthority.csr(["www.example.com"])
        return try IssuancePolicy.standard.evaluate(csr, context: PolicyContext(profile: profile, requestedDays: days, now: now))
    }

    @Test("default_validity: 10m gives a 10-minute certificate", arguments: [("10m", 600.0, 60.0), ("90s", 90.0, 9.0), ("2h", 7_200.0, 60.0)])
    func minutes(_ text: String, _ seconds: TimeInterval, _ backdate: TimeInterval) throws {
        let p = try profile(#"{"base": "tls-client", "default_validity": "\#(text)", "max_validity": "1d"}"#)
        let v = try verdict(p)
        #expect(v.violations.isEmpty, "\(v.violations)")
        // RFC 5280 §4.1.2.5: inclusive ends, so the last second is notAfter.
        #expect(v.plan.notAfter.timeIntervalSince(v.plan.notBefore) == seconds - 1)
        // The backdate is at most a tenth of a short lifetime.
        #expect(now.timeIntervalSince(v.plan.notBefore) == backdate)
    }

    @Test("max_validity caps requested days: a request for more is refused, not shortened")
    func maxCaps() throws {
        let p = try profile(#"{"base": "tls-client", "default_validity": "10m", "max_validity": "2h"}"#)
        let v = try verdict(p, days: 1)
        #expect(v.violations.contains { $0.contains("exceeds the maximum of 2h") }, "\(v.violations)")
    }

    @Test("the whole-day keys keep working, and override a finer setting of the base")
    func daysStillWork() throws {
        let p = try profile(#"{"base": "tls-client", "default_days": 30}"#)
        #expect(p.defaultValidity == nil)
        let v = try verdict(p)
        #expect(v.plan.notAfter.timeIntervalSince(v.plan.notBefore) == 30 * 86_400 - 1)
        var base = CertificateProfile.builtIn
        base["fine"] = try profile(#"{"base": "tls-client", "default_validity": "10m"}"#)
        let override = try JSONDecoder().decode(ProfileOverride.self, from: Data(#"{"base": "fine", "default_days": 2}"#.utf8))
        let days = try override.apply(name: "days", profiles: base)
        #expect(days.defaultValidity == nil && days.defaultDays == 2)
    }

    @Test("nonsense is refused with the reason", arguments: [
        (#"{"default_validity": "30s"}"#, "shorter than the minimum of 1m"),
        (#"{"default_validity": "3h", "max_validity": "2h"}"#, "the default validity (3h) exceeds the maximum (2h)"),
        (#"{"max_validity": "1h"}"#, "the default validity (90d) exceeds the maximum (1h)"),
    ])
    func refused(_ json: String, _ reason: String) throws {
        do {
            _ = try profile(json)
            Issue.record("accepted \(json)")
        } catch let error as SigilError {
            #expect(error.reasons.contains { $0.contains(reason) }, "\(error.reasons)")
        }
    }

    @Test("an unparsable duration is an error") func junk() {
        #expect(throws: (any Error).self) { try profile(#"{"default_validity": "ten minutes"}"#) }
    }
}
