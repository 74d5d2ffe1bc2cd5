import Foundation
import SigilAgent
import SigilCore
import Testing

@Suite("Renewal timing")
struct RenewalScheduleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("two thirds of a 10-minute certificate: 6 min 40 s after notBefore")
    func tenMinutes() {
        var rng = SeededGenerator(seed: 1)
        let decision = RenewalSchedule.decide(notBefore: start, notAfter: start.addingTimeInterval(600), window: nil, now: start, using: &rng)
        #expect(decision.reason == .twoThirds)
        #expect(decision.renewAt == start.addingTimeInterval(400))
    }

    @Test("two thirds of a 6-day certificate: day 4, not a fixed number of days before expiry")
    func sixDays() {
        var rng = SeededGenerator(seed: 1)
        let end = start.addingTimeInterval(6 * 86_400)
        let decision = RenewalSchedule.decide(notBefore: start, notAfter: end, window: nil, now: start, using: &rng)
        #expect(decision.renewAt == start.addingTimeInterval(4 * 86_400))
        // A "30 days before expiry" rule would renew a 6-day certificate at once, forever.
        #expect(decision.renewAt > start)
    }

    @Test("90-day certificate: day 60")
    func ninetyDays() {
        #expect(RenewalSchedule.twoThirds(notBefore: start, notAfter: start.addingTimeInterval(90 * 86_400)) == start.addingTimeInterval(60 * 86_400))
    }

    @Test("an ARI window wins over two thirds; times are spread uniformly inside it")
    func ariWindow() {
        var rng = SeededGenerator(seed: 42)
        let window = RenewalWindow(start: start.addingTimeInterval(1_000), end: start.addingTimeInterval(2_000))
        var picks: [TimeInterval] = []
        for _ in 0..<2_000 {
            let d = RenewalSchedule.decide(notBefore: start, notAfter: start.addingTimeInterval(3_000), window: window, now: start, using: &rng)
            #expect(d.reason == .ariWindow)
            #expect(d.renewAt >= window.start && d.renewAt <= window.end)
            picks.append(d.renewAt.timeIntervalSince(window.start))
        }
        // Uniform: each tenth of the window gets roughly a tenth of the picks.
        var buckets = [Int](repeating: 0, count: 10)
        for p in picks { buckets[min(9, Int(p / 100))] += 1 }
        #expect(buckets.allSatisfy { $0 > 120 && $0 < 280 }, "buckets: \(buckets)")
    }

    @Test("a window already over means renew now (RFC 9773 §4.2)")
    func pastWindow() {
        var rng = SeededGenerator(seed: 3)
        let now = start.addingTimeInterval(5_000)
        let window = RenewalWindow(start: start.addingTimeInterval(1_000), end: start.addingTimeInterval(2_000))
        let d = RenewalSchedule.decide(notBefore: start, notAfter: start.addingTimeInterval(9_000), window: window, now: now, using: &rng)
        #expect(d.renewAt == now)
        #expect(d.reason == .ariWindow)
    }

    @Test("a window that ends before it starts is ignored")
    func invertedWindow() {
        var rng = SeededGenerator(seed: 3)
        let window = RenewalWindow(start: start.addingTimeInterval(2_000), end: start.addingTimeInterval(1_000))
        let d = RenewalSchedule.decide(notBefore: start, notAfter: start.addingTimeInterval(600), window: window, now: start, using: &rng)
        #expect(d.reason == .twoThirds)
        #expect(d.renewAt == start.addingTimeInterval(400))
    }

    @Test("the next ARI check follows Retry-After within [1 min, 6 h]")
    func ariRecheck() {
        let w = { (r: TimeInterval?) in RenewalWindow(start: self.start, end: self.start, retryAfter: r) }
        #expect(RenewalSchedule.nextARICheck(window: w(120), now: start) == start.addingTimeInterval(120))
        #expect(RenewalSchedule.nextARICheck(window: w(5), now: start) == start.addingTimeInterval(60))
        #expect(RenewalSchedule.nextARICheck(window: w(86_400), now: start) == start.addingTimeInterval(21_600))
        #expect(RenewalSchedule.nextARICheck(window: w(nil), now: start) == start.addingTimeInterval(21_600))
    }
}

@Suite("Backoff")
struct BackoffTests {
    let settings = BackoffSettings(base: ValidityPeriod(seconds: 60), cap: ValidityPeriod(seconds: 3_600))

    @Test("the ceiling doubles from the base and stops at the cap")
    func ceiling() {
        #expect(Backoff.ceiling(failures: 1, settings: settings) == 60)
        #expect(Backoff.ceiling(failures: 2, settings: settings) == 120)
        #expect(Backoff.ceiling(failures: 6, settings: settings) == 1_920)
        #expect(Backoff.ceiling(failures: 7, settings: settings) == 3_600)
        #expect(Backoff.ceiling(failures: 1_000, settings: settings) == 3_600)
        #expect(Backoff.ceiling(failures: 0, settings: settings) == 60)
    }

    @Test("full jitter: every delay lies in [1 s, ceiling] and they spread over it")
    func jitter() {
        var rng = SeededGenerator(seed: 9)
        for failures in 1...12 {
            let ceiling = Backoff.ceiling(failures: failures, settings: settings)
            var delays: [TimeInterval] = []
            for _ in 0..<500 {
                let d = Backoff.delay(failures: failures, settings: settings, using: &rng)
                #expect(d >= 1 && d <= ceiling)
                delays.append(d)
            }
            #expect(delays.min()! < ceiling * 0.1 + 1)
            #expect(delays.max()! > ceiling * 0.9)
        }
    }

    @Test("a test-sized base works the same way")
    func smallBase() {
        let fast = BackoffSettings(base: ValidityPeriod(seconds: 2), cap: ValidityPeriod(seconds: 10))
        #expect(Backoff.ceiling(failures: 3, settings: fast) == 8)
        #expect(Backoff.ceiling(failures: 4, settings: fast) == 10)
    }
}
