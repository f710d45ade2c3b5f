/// Writing YAML by hand, for the manifests Setu generates (`setu init`,
/// `setu import-openapi`, the snippets `setu catalog show` and `setu keygen`
/// print). Hand-written so that fields come out in the documented order with
/// comments, which an emitter of dictionaries cannot do.
public enum YAMLText {
    /// `text` as a YAML scalar: plain when that reads back as the same string,
    /// double-quoted (JSON escapes) otherwise.
    public static func scalar(_ text: String) -> String {
        if isSafePlain(text) { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func isSafePlain(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        if YAMLLoader.coreValue(text) != nil { return false }
        if "-?:,[]{}#&*!|>'\"%@` ".unicodeScalars.contains(first) || last == " " { return false }
        if text.contains(": ") || text.contains(" #") || text.hasSuffix(":") { return false }
        return !text.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{7F}" }
    }
}
