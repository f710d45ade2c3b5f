/// An inline SVG chart as the `chart` template draws it: lines over time, or bars. The
/// numbers are worked out here; the markup, with every text escaped, is the template's.
struct Chart {
    struct Series {
        var name: String
        /// The CSS class that colours it (`s2xx`, `p95`).
        var cssClass: String
        /// `x,y x,y …`, one point per bucket.
        var points: String
        var count: Int
        /// The values drawn, one per bucket, for whoever reads the page's markup.
        var values: String
    }

    struct Label {
        var x: Int
        var y: Int
        var text: String
        var anchor: String
    }

    struct Bar {
        var x: Int
        var y: Int
        var width: Int
        var height: Int
        var label: String
        var value: String
        var textY: Int
    }

    var id: String
    var title: String
    var description: String
    var width = 720
    var height = 240
    var series: [Series] = []
    var labels: [Label] = []
    var bars: [Bar] = []
    struct Axis {
        var x1: Int
        var y1: Int
        var x2: Int
        var y2: Int
    }

    var axis = Axis(x1: 56, y1: 210, x2: 712, y2: 210)
    var empty: Bool { series.allSatisfy { $0.count == 0 } && bars.isEmpty }

    static let left = 56
    static let right = 712
    static let top = 12
    static let bottom = 210

    /// Lines over `times` (milliseconds, one per bucket), each series a value per bucket.
    static func lines(
        id: String, title: String, description: String, times: [Int64], series: [(name: String, cssClass: String, values: [Double])],
        unit: String, timeLabel: (Int64) -> String
    ) -> Chart {
        var chart = Chart(id: id, title: title, description: description)
        let greatest = max(series.flatMap(\.values).max() ?? 0, 1)
        let scale = niceCeiling(greatest)
        let steps = max(times.count - 1, 1)
        func x(_ index: Int) -> Int { left + (right - left) * index / steps }
        func y(_ value: Double) -> Int { bottom - Int((Double(bottom - top) * value / scale).rounded()) }
        chart.series = series.map { line in
            Series(
                name: line.name, cssClass: line.cssClass,
                points: line.values.enumerated().map { "\(x($0.offset)),\(y($0.element))" }.joined(separator: " "), count: line.values.count,
                values: line.values.map(Pages.number).joined(separator: " "))
        }
        chart.labels = [
            Label(x: left - 6, y: top + 4, text: Pages.number(scale) + unit, anchor: "end"),
            Label(x: left - 6, y: bottom + 4, text: "0", anchor: "end"),
        ]
        if let first = times.first, let last = times.last {
            chart.labels.append(Label(x: left, y: bottom + 20, text: timeLabel(first), anchor: "start"))
            chart.labels.append(Label(x: right, y: bottom + 20, text: timeLabel(last), anchor: "end"))
        }
        return chart
    }

    /// Horizontal bars, one per item, longest first.
    static func bars(id: String, title: String, description: String, items: [(label: String, value: UInt64)]) -> Chart {
        // Narrower than a line chart: bars sit in half a row of the page.
        var chart = Chart(id: id, title: title, description: description, width: 420)
        let rows = items.prefix(8)
        chart.height = max(40, rows.count * 28 + 8)
        let greatest = Double(rows.map(\.value).max() ?? 1)
        let start = 160
        chart.bars = rows.enumerated().map { index, item in
            let width = max(2, Int((Double(chart.width - start - 56) * Double(item.value) / max(greatest, 1)).rounded()))
            return Bar(x: start, y: 8 + index * 28, width: width, height: 18, label: item.label, value: String(item.value), textY: 8 + index * 28 + 14)
        }
        chart.axis = Axis(x1: start, y1: 4, x2: start, y2: chart.height - 4)
        return chart
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`: the top of the scale.
    static func niceCeiling(_ value: Double) -> Double {
        var power = 1.0
        while power * 10 <= value { power *= 10 }
        while power > value && power > 0.001 { power /= 10 }
        for step in [1.0, 2, 5, 10] where step * power >= value { return step * power }
        return 10 * power
    }
}
