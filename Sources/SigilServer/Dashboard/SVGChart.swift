import Foundation

/// Bar charts drawn on the server as SVG: no script, no external asset, readable by a
/// screen reader (each bar carries a <title>), scaled by the browser on any screen.
enum SVGChart {
    struct Bar {
        var label: String
        var value: Int
        /// A CSS class for the bar (colour), e.g. `warn`.
        var kind: String = "bar"
    }

    static func bars(_ bars: [Bar], title: String, id: String, height: Int = 160, tickEvery: Int = 1) -> String {
        let width = max(240, bars.count * 22 + 40)
        let plotHeight = height - 40
        let top = max(1, bars.map(\.value).max() ?? 1)
        let barWidth = Double(width - 40) / Double(max(bars.count, 1))
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="\#(escape(id))" viewBox="0 0 \#(width) \#(height)" role="img" aria-label="\#(escape(title))">"#
        svg += "<title>\(escape(title))</title>"
        // Axis and the maximum, so the scale is stated, not guessed.
        svg += #"<line class="axis" x1="32" y1="\#(plotHeight + 8)" x2="\#(width - 4)" y2="\#(plotHeight + 8)"/>"#
        svg += #"<text class="tick" x="28" y="16" text-anchor="end">\#(top)</text><text class="tick" x="28" y="\#(plotHeight + 8)" text-anchor="end">0</text>"#
        for (i, bar) in bars.enumerated() {
            let h = Double(plotHeight) * Double(bar.value) / Double(top)
            let x = 36 + Double(i) * barWidth
            svg += #"<rect class="\#(escape(bar.kind))" x="\#(fmt(x))" y="\#(fmt(Double(plotHeight + 8) - h))" width="\#(fmt(max(1, barWidth - 3)))" height="\#(fmt(h))">"#
            svg += "<title>\(escape(bar.label)): \(bar.value)</title></rect>"
            if i % tickEvery == 0 {
                svg += #"<text class="tick" x="\#(fmt(x + barWidth / 2))" y="\#(height - 12)" text-anchor="middle">\#(escape(bar.label))</text>"#
            }
        }
        return svg + "</svg>"
    }

    /// One horizontal bar split into shares (the key-algorithm mix).
    static func shares(_ parts: [(label: String, value: Int, kind: String)], title: String, id: String) -> String {
        let total = max(1, parts.map(\.value).reduce(0, +))
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="\#(escape(id))" viewBox="0 0 400 28" role="img" aria-label="\#(escape(title))">"#
        svg += "<title>\(escape(title))</title>"
        var x = 0.0
        for part in parts where part.value > 0 {
            let w = 400 * Double(part.value) / Double(total)
            svg += #"<rect class="\#(escape(part.kind))" x="\#(fmt(x))" y="0" width="\#(fmt(w))" height="28"><title>\#(escape(part.label)): \#(part.value)</title></rect>"#
            x += w
        }
        return svg + "</svg>"
    }

    static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}
