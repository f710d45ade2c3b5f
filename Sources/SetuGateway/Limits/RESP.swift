import NIOCore

// Redis's protocol (RESP2), written here rather than taken from a library: no Swift Redis
// client is among the packages this project builds from, and Debian's hiredis (0.14) does
// its own socket I/O, blocking or through an adapter for libevent, libev or libuv — none of
// them a NIO event loop, so it would put a thread hop or a second event system on the
// request path. The limit store needs five commands and the protocol's five reply types,
// which this file covers.

/// A reply from Redis (RESP2).
enum RESPValue: Equatable, Sendable {
    /// `+OK`
    case simple(String)
    /// `-ERR …`: the command failed; the text starts with the error's kind (`NOSCRIPT`, `ERR`).
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5 hello`, or `$-1` (nil).
    case bulk([UInt8]?)
    /// `*2 …`, or `*-1` (nil).
    case array([RESPValue]?)

    /// The reply as an integer, when it is one (or a bulk string of digits).
    var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes?): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }
}

/// Commands in RESP2's request form: an array of bulk strings.
enum RESPCommand {
    /// Appends `*N $len arg …` for the command's words.
    static func write(_ words: [String], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(words.count))
        buffer.writeStaticString("\r\n")
        for word in words {
            buffer.writeStaticString("$")
            buffer.writeString(String(word.utf8.count))
            buffer.writeStaticString("\r\n")
            buffer.writeString(word)
            buffer.writeStaticString("\r\n")
        }
    }
}

/// Why bytes from the server are not RESP2; the connection closes on it.
struct RESPProtocolError: Error, CustomStringConvertible {
    var description: String
}

/// Turns the bytes Redis sends into replies, one at a time, waiting for a reply's end
/// when it is split across reads.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue

    /// Nesting deeper than this is not a reply the limit store asked for.
    private static let maxDepth = 8
    /// A bulk string or array longer than this is not either.
    private static let maxLength = 1 << 24

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var reader = buffer
        guard let value = try Self.parse(&reader, depth: 0) else { return .needMoreData }
        buffer = reader
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Reads one whole reply from `buffer`; nil, with `buffer` partly read, when it has not
    /// all arrived.
    static func parse(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard let kind = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let line = readLine(&buffer) else { return nil }
        switch kind {
        case UInt8(ascii: "+"):
            return .simple(line)
        case UInt8(ascii: "-"):
            return .error(line)
        case UInt8(ascii: ":"):
            guard let value = Int64(line) else { throw RESPProtocolError(description: "the integer reply '\(line)' is not a number") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(line), length >= -1, length <= maxLength else {
                throw RESPProtocolError(description: "the bulk string length '\(line)' is not valid")
            }
            if length == -1 { return .bulk(nil) }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RESPProtocolError(description: "a bulk string does not end with CRLF")
            }
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1, count <= maxLength, depth < maxDepth else {
                throw RESPProtocolError(description: "the array length '\(line)' is not valid")
            }
            if count == -1 { return .array(nil) }
            var elements: [RESPValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                guard let element = try parse(&buffer, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        default:
            throw RESPProtocolError(description: "the reply type byte \(kind) is not one of + - : $ *")
        }
    }

    /// The text up to the next CRLF, which is consumed; nil when no CRLF has arrived.
    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        let view = buffer.readableBytesView
        guard let end = view.firstIndex(of: UInt8(ascii: "\r")), end + 1 < view.endIndex else { return nil }
        let length = end - view.startIndex
        let line = buffer.readString(length: length)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}
