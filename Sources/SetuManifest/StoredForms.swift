import SetuStorage

/// The binary forms of JSON values and diagnostics, as the replay state keeps them.
extension JSONValue {
    /// Appends the value's binary form.
    public func write(to writer: inout ByteWriter) {
        switch self {
        case .null:
            writer.write(0)
        case .bool(let flag):
            writer.write(flag ? 2 : 1)
        case .number(let number):
            writer.write(3)
            writer.write(number)
        case .string(let text):
            writer.write(4)
            writer.write(text)
        case .array(let elements):
            writer.write(5)
            writer.write(elements.count)
            for element in elements { element.write(to: &writer) }
        case .object(let members):
            writer.write(6)
            writer.write(members.count)
            // In key order, so the same value always gives the same bytes.
            for key in members.keys.sorted() {
                writer.write(key)
                members[key]!.write(to: &writer)
            }
        }
    }

    /// Reads a value `write(to:)` wrote, nesting at most `depth` levels.
    public init(from reader: inout ByteReader, depth: Int = 64) throws {
        guard depth >= 0 else { throw ByteReader.Truncated() }
        switch try reader.readInt() {
        case 0: self = .null
        case 1: self = .bool(false)
        case 2: self = .bool(true)
        case 3: self = .number(try reader.readDouble())
        case 4: self = .string(try reader.readString())
        case 5:
            let count = try reader.readCount()
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try JSONValue(from: &reader, depth: depth - 1)) }
            self = .array(elements)
        case 6:
            let count = try reader.readCount()
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.readString()
                members[key] = try JSONValue(from: &reader, depth: depth - 1)
            }
            self = .object(members)
        default:
            throw ByteReader.Truncated()
        }
    }
}

extension Diagnostic {
    /// Appends the diagnostic's binary form.
    public func write(to writer: inout ByteWriter) {
        writer.write(severity == .error)
        writer.write(file)
        writer.write(location.line)
        writer.write(location.column)
        writer.write(pointer != nil)
        if let pointer { writer.write(pointer.tokens) }
        writer.write(rule.rawValue)
        writer.write(message)
        writer.write(fix)
    }

    /// Steps over a diagnostic `write(to:)` wrote, checking its form without building it.
    public static func skim(_ reader: inout ByteReader) throws {
        _ = try reader.readBool()
        try reader.skipRun()
        _ = try reader.readInt()
        _ = try reader.readInt()
        if try reader.readBool() { try reader.skipStrings() }
        try reader.skipRun()
        try reader.skipRun()
        if try reader.readBool() { try reader.skipRun() }
    }

    /// Reads a diagnostic `write(to:)` wrote.
    public init(from reader: inout ByteReader) throws {
        let severity: Severity = try reader.readBool() ? .error : .warning
        let file = try reader.readString()
        let location = SourceLocation(line: try reader.readInt(), column: try reader.readInt())
        let pointer = try reader.readBool() ? JSONPointer(try reader.readStrings()) : nil
        self.init(
            severity, file: file, location: location, pointer: pointer, rule: RuleID(rawValue: try reader.readString()),
            message: try reader.readString(), fix: try reader.readOptionalString())
    }
}
