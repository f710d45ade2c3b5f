/// Classes of ASCII bytes that the stages check names, ids and hosts against.
enum ASCIIBytes {
    /// `a`–`z`, `A`–`Z`, `0`–`9`.
    @inline(__always)
    static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A letter, a digit, or one of `extra`.
    @inline(__always)
    static func isLetterOrDigit(_ byte: UInt8, or extra: StaticString) -> Bool {
        if isLetterOrDigit(byte) { return true }
        let others = UnsafeBufferPointer(start: extra.utf8Start, count: extra.utf8CodeUnitCount)
        return others.contains(byte)
    }

    /// `0`–`9`, `a`–`f`, `A`–`F`.
    @inline(__always)
    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }
}
