/// Header names compared the way HTTP compares them (ASCII case-insensitively), without
/// lowercasing a copy of each name: the stages look at every header of every request.
enum HeaderName {
    /// Whether `name` is `lowercase`, ignoring ASCII case; `lowercase` must be lowercase.
    @inline(__always)
    static func equals(_ name: String, _ lowercase: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { equals($0, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)) }
    }

    /// Whether `name` is one of `lowercaseNames`, ignoring ASCII case.
    static func isOne(of lowercaseNames: [[UInt8]], _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            lowercaseNames.contains { candidate in candidate.withUnsafeBufferPointer { equals(bytes, $0) } }
        }
    }

    /// Whether `name` equals `lowercase`, ignoring ASCII case.
    @inline(__always)
    static func equals(_ name: UnsafeBufferPointer<UInt8>, _ lowercase: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count == lowercase.count else { return false }
        for index in 0..<name.count where lower(name[index]) != lowercase[index] { return false }
        return true
    }

    /// Whether `name` starts with `lowercase`, ignoring ASCII case.
    @inline(__always)
    static func hasPrefix(_ name: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard name.count >= count else { return false }
        return equals(UnsafeBufferPointer(rebasing: name[..<count]), UnsafeBufferPointer(start: lowercase.utf8Start, count: count))
    }

    /// The comma-separated tokens of a header value, lowercased and trimmed (RFC 9110 §5.6.1).
    static func tokens(_ value: String) -> [[UInt8]] {
        var tokens: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: ","):
                if !current.isEmpty { tokens.append(current) }
                current.removeAll(keepingCapacity: true)
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                continue
            default:
                current.append(lower(byte))
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

/// A set of lowercase header names, matched ASCII-case-insensitively by length first, so
/// that a header that is not in it is usually ruled out by one comparison of lengths.
struct HeaderNameSet: Sendable {
    private let byLength: [[[UInt8]]]

    init(_ names: [String]) {
        var byLength = [[[UInt8]]](repeating: [], count: 1 + (names.map(\.utf8.count).max() ?? 0))
        for name in names { byLength[name.utf8.count].append(Array(name.lowercased().utf8)) }
        self.byLength = byLength
    }

    func contains(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count < byLength.count else { return false }
        return byLength[name.count].contains { candidate in candidate.withUnsafeBufferPointer { HeaderName.equals(name, $0) } }
    }

    func contains(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { contains($0) }
    }
}
