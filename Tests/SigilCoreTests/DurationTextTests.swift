import SigilCore
import Testing

@Suite("Duration text")
struct DurationTextTests {
    @Test("units", arguments: [("500ms", 0.5), ("90s", 90.0), ("10m", 600.0), ("12h", 43_200.0), ("30d", 2_592_000.0),
                               ("2w", 1_209_600.0), ("1.5h", 5_400.0), (" 7D ", 604_800.0), ("0s", 0.0)])
    func units(_ text: String, _ seconds: Double) {
        #expect(DurationText.seconds(in: text) == seconds)
        #expect(DurationText.seconds(in: text, bare: .days) == seconds, "a unit wins over the bare-number rule")
    }

    @Test("a bare number means what the caller says")
    func bare() {
        #expect(DurationText.seconds(in: "90") == nil)
        #expect(DurationText.seconds(in: "90", bare: .seconds) == 90)
        #expect(DurationText.seconds(in: "90", bare: .days) == Double(90 * 86_400))
    }

    @Test("junk is refused", arguments: ["", "d", "soon", "-3d", "+3d", "1e3s", "nan", "infs", "3 d", ".5h", "5.h", "1.2.3s",
                                         "3mo", "1y", "10000000000000s", "٣d"])
    func junk(_ text: String) {
        #expect(DurationText.seconds(in: text, bare: .seconds) == nil)
    }

    @Test("errors name the value and the rule")
    func errors() {
        #expect(throws: SigilError.badInput("--expires 'soon' is not a duration: write a number with a unit (ms, s, m, h, d or w), such as 90s, 10m, 12h, 30d or 2w; a bare number is days")) {
            try DurationText.parse("soon", what: "--expires", bare: .days)
        }
    }
}
