// libyaml, Debian's (the same release Yams builds in): its parser's events turn straight into values.
// Yams exposes no event API, and building its node tree (with a duplicate-key
// check that hashes every key node) cost three times libyaml's own parsing.
import CLibYAML

/// The common case of loading, done from libyaml's events without a parse tree:
/// plain, untagged YAML without anchors, aliases or repeated keys, within the
/// nesting limit. Anything else (or any error) returns `nil`, and `YAMLLoader`
/// reads the file the full way, which explains precisely what is wrong.
enum YAMLEvents {
    /// The documents' values and where each starts, or `nil` to take the full way.
    static func load(_ bytes: [UInt8], limits: LoadLimits) -> [(value: JSONValue, start: SourceLocation)]? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        return bytes.withUnsafeBufferPointer { buffer -> [(value: JSONValue, start: SourceLocation)]? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var builder = Builder(limits: limits)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch builder.take(&event) {
                case .more: continue
                case .done: return builder.documents
                case .unusual: return nil
                }
            }
        }
    }

    private struct Builder {
        enum Outcome { case more, done, unusual }

        /// An open collection: a sequence's elements, or a mapping's members and
        /// the key waiting for its value.
        enum Open {
            case sequence([JSONValue])
            case mapping([String: JSONValue], key: String?)
        }

        let limits: LoadLimits
        var documents: [(value: JSONValue, start: SourceLocation)] = []
        var stack: [Open] = []
        var start: SourceLocation?
        var nodes = 0

        init(limits: LoadLimits) {
            self.limits = limits
        }

        mutating func take(_ event: inout yaml_event_t) -> Outcome {
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_START_EVENT, YAML_DOCUMENT_END_EVENT:
                return .more
            case YAML_STREAM_END_EVENT:
                return .done
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                guard scalar.anchor == nil, scalar.tag == nil else { return .unusual }
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                if case .mapping(let members, key: nil)? = stack.last {
                    // A key: kept until its value arrives.
                    guard members[text] == nil else { return .unusual }
                    stack[stack.count - 1] = .mapping(members, key: text)
                    return .more
                }
                let value = scalar.style == YAML_PLAIN_SCALAR_STYLE ? YAMLLoader.coreValue(text) ?? .string(text) : .string(text)
                return add(value, at: event.start_mark)
            case YAML_SEQUENCE_START_EVENT:
                let sequence = event.data.sequence_start
                guard sequence.anchor == nil, sequence.tag == nil, opening(at: event.start_mark) else { return .unusual }
                stack.append(.sequence([]))
                return .more
            case YAML_MAPPING_START_EVENT:
                let mapping = event.data.mapping_start
                guard mapping.anchor == nil, mapping.tag == nil, opening(at: event.start_mark) else { return .unusual }
                stack.append(.mapping([:], key: nil))
                return .more
            case YAML_SEQUENCE_END_EVENT:
                guard case .sequence(let elements)? = stack.popLast() else { return .unusual }
                return add(.array(elements), at: event.start_mark)
            case YAML_MAPPING_END_EVENT:
                guard case .mapping(let members, key: nil)? = stack.popLast() else { return .unusual }
                return add(.object(members), at: event.start_mark)
            default:
                // Aliases, and anything libyaml adds later.
                return .unusual
            }
        }

        /// Whether a collection may open here: not as a mapping key, and within the nesting limit.
        private mutating func opening(at mark: yaml_mark_t) -> Bool {
            if case .mapping(_, key: nil)? = stack.last { return false }
            if stack.isEmpty { start = location(mark) }
            return stack.count < limits.maxDepth
        }

        private mutating func add(_ value: JSONValue, at mark: yaml_mark_t) -> Outcome {
            nodes += 1
            guard nodes <= limits.maxNodes else { return .unusual }
            switch stack.popLast() {
            case nil:
                documents.append((value, start ?? location(mark)))
                start = nil
            case .sequence(var elements):
                elements.append(value)
                stack.append(.sequence(elements))
            case .mapping(var members, let key?):
                members[key] = value
                stack.append(.mapping(members, key: nil))
            case .mapping(_, key: nil):
                return .unusual
            }
            return .more
        }

        private func location(_ mark: yaml_mark_t) -> SourceLocation {
            SourceLocation(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        }
    }
}
