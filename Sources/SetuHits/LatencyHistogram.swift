import Histogram

/// The histograms of times the hit log's readers keep: usage rows, alert windows, the
/// dashboard's minutes.
public enum LatencyHistogram {
    /// Microseconds, to two significant digits (within 1%): sized for a second at first
    /// (13 KB of counts), growing when a longer time comes. A month grouped by consumer and
    /// day has thousands of rows; to three digits, each histogram was over 100 KB.
    public static func make() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: 1 << 20, numberOfSignificantValueDigits: .two)
        histogram.autoResize = true
        return histogram
    }
}
