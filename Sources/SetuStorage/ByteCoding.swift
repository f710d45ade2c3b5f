/// A compact binary form for state Setu keeps between runs (the replay state):
/// lengths and integers as LEB128 varints, strings and byte runs length-first.
///
/// Written here rather than taken from a library: the format is a few dozen lines,
/// while swift-protobuf would bring a code generator and a runtime for one file,
/// and Foundation's JSON and property-list coders were the slowest part of an
/// incremental replay when they held this state.
public struct ByteWriter: Sendable {
    /// What has been written.
    public private(set) var bytes: [UInt8] = []

    /// Creates an empty writer.
    public init() {}

    public mutating func write(_ value: Int) {
        var rest = UInt64(bitPattern: Int64(value))
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    public mutating func write(_ flag: Bool) {
        bytes.append(flag ? 1 : 0)
    }

    public mutating func write(_ run: [UInt8]) {
        write(run.count)
        bytes.append(contentsOf: run)
    }

    /// Appends bytes as they are, with no length before them: a file's header.
    public mutating func write(raw: some Sequence<UInt8>) {
        bytes.append(contentsOf: raw)
    }

    /// Forgets what was written, keeping the memory for what comes next.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Writes a run of bytes length-first, as `write(_: [UInt8])` does; `ByteReader.readSection` reads it back without copying.
    public mutating func write(section: ArraySlice<UInt8>) {
        write(section.count)
        bytes.append(contentsOf: section)
    }

    public mutating func write(_ text: String) {
        write(text.utf8.count)
        bytes.append(contentsOf: text.utf8)
    }

    public mutating func write(_ text: String?) {
        write(text != nil)
        if let text { write(text) }
    }

    public mutating func write(_ texts: [String]) {
        write(texts.count)
        for text in texts { write(text) }
    }

    public mutating func write(_ number: Double) {
        var bits = number.bitPattern
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
    }
}

/// Reads what a `ByteWriter` wrote; every read checks the bounds and throws
/// `ByteReader.Truncated` on data that ends early or does not fit.
public struct ByteReader {
    /// The data ended in the middle of a value, or a value is out of range.
    public struct Truncated: Error {
        public init() {}
    }

    private let bytes: ArraySlice<UInt8>
    private var offset: Int

    /// Starts reading `bytes` from the beginning.
    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    /// Starts reading a part of a larger buffer, which it shares rather than copies.
    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    /// Whether everything has been read.
    public var isAtEnd: Bool { offset == bytes.endIndex }

    public mutating func readInt() throws -> Int {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.endIndex, shift < 64 else { throw Truncated() }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return Int(Int64(bitPattern: value)) }
            shift += 7
        }
    }

    /// A count or length: an integer that must fit in what is left.
    public mutating func readCount() throws -> Int {
        let count = try readInt()
        guard count >= 0, count <= bytes.endIndex - offset else { throw Truncated() }
        return count
    }

    public mutating func readBool() throws -> Bool {
        guard offset < bytes.endIndex else { throw Truncated() }
        offset += 1
        return bytes[offset - 1] != 0
    }

    public mutating func readBytes() throws -> [UInt8] {
        let count = try readCount()
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A run `ByteWriter.write(section:)` (or `write(_: [UInt8])`) wrote, as a slice sharing this reader's buffer.
    public mutating func readSection() throws -> ArraySlice<UInt8> {
        let count = try readCount()
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// Steps over a string or a run of bytes without reading it.
    public mutating func skipRun() throws {
        offset += try readCount()
    }

    /// Steps over a list of strings without reading them.
    public mutating func skipStrings() throws {
        for _ in 0..<(try readCount()) { try skipRun() }
    }

    public mutating func readString() throws -> String {
        let count = try readCount()
        defer { offset += count }
        let start = offset - bytes.startIndex
        return bytes.withUnsafeBufferPointer { String(decoding: $0[start..<start + count], as: UTF8.self) }
    }

    public mutating func readOptionalString() throws -> String? {
        try readBool() ? try readString() : nil
    }

    public mutating func readStrings() throws -> [String] {
        let count = try readCount()
        var texts: [String] = []
        texts.reserveCapacity(count)
        for _ in 0..<count { texts.append(try readString()) }
        return texts
    }

    public mutating func readDouble() throws -> Double {
        guard bytes.endIndex - offset >= 8 else { throw Truncated() }
        var bits: UInt64 = 0
        for index in 0..<8 { bits |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        offset += 8
        return Double(bitPattern: bits)
    }
}
