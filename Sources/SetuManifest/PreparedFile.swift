import SetuConcurrency
import SetuStorage

/// One version of a file, read once: its bytes, its manifests decoded, and the
/// problems it has on its own (YAML, kind and place, schema, name against path).
///
/// History replay meets the same versions again and again (a subscription is
/// checked when it is committed, when it is approved, and when entitlements
/// are derived); a prepared file lets every later step reuse the first reading.
/// Two prepared files are equal when their paths and bytes are.
public struct PreparedFile: Sendable, Hashable {
    /// The path, from the repository root.
    public let path: String
    /// The file's bytes.
    public let bytes: [UInt8]
    /// The errors `MarketplaceValidator.checkFile` reports for this file.
    public let problems: [Diagnostic]
    /// What reading the file found, or its stored form until someone asks.
    private let reading: DecodedOnce<Reading>

    /// The documents that were not empty; none when the YAML could not be read.
    var documents: [JSONValue] { reading.value.documents }
    /// What loading found; `nil` for a file whose place holds no manifests
    /// (OpenAPI documents, ignored and misplaced files).
    var loaded: LoadedFile? { reading.value.loaded }

    /// Whether the file has none of the problems a file can have on its own.
    public var isValid: Bool { problems.isEmpty }

    /// The subscriptions the file holds, decoded (empty when it holds none or
    /// could not be read).
    public var subscriptions: [Subscription] {
        loaded?.manifests.compactMap { manifest in
            if case .subscription(let subscription) = manifest.entity { return subscription }
            return nil
        } ?? []
    }

    /// The APIs the file holds, decoded.
    public var apis: [API] {
        loaded?.manifests.compactMap { manifest in
            if case .api(let api, _, _) = manifest.entity { return api }
            return nil
        } ?? []
    }

    /// The consumers the file holds, decoded.
    public var consumers: [Consumer] {
        loaded?.manifests.compactMap { manifest in
            if case .consumer(let consumer) = manifest.entity { return consumer }
            return nil
        } ?? []
    }

    /// Whether an API the file holds names an OpenAPI document.
    public var referencesOpenAPI: Bool {
        loaded?.manifests.contains { manifest in
            if case .api(_, _, let openapi) = manifest.entity { return openapi != nil }
            return false
        } ?? false
    }

    /// The publishers the file holds, decoded.
    public var publishers: [Publisher] {
        loaded?.manifests.compactMap { manifest in
            if case .publisher(let publisher) = manifest.entity { return publisher }
            return nil
        } ?? []
    }

    public static func == (lhs: PreparedFile, rhs: PreparedFile) -> Bool {
        lhs.path == rhs.path && lhs.bytes == rhs.bytes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(path)
        hasher.combine(bytes)
    }

    // MARK: Storing

    /// Appends the file's binary form: what it takes to restore it without
    /// parsing or schema checks.
    public func write(to writer: inout ByteWriter) {
        writer.write(path)
        writer.write(bytes)
        writer.write(problems.count)
        for problem in problems { problem.write(to: &writer) }
        writer.write(section: reading.stored ?? reading.value.storedForm())
    }

    /// Restores a file `write(to:)` wrote. Only the path, the bytes and the
    /// problems are read now; the documents and manifests are decoded the first
    /// time something asks for them, so a state of thousands of files loads
    /// quickly when a run looks at few of them. The YAML is never parsed again
    /// and the schemas are never run again.
    public init(from reader: inout ByteReader) throws {
        path = try reader.readString()
        bytes = try reader.readBytes()
        problems = try (0..<reader.readCount()).map { _ in try Diagnostic(from: &reader) }
        let path = path, bytes = bytes
        reading = DecodedOnce(stored: try reader.readSection()) { stored in
            Reading(stored: stored, path: path) ?? Reading(readingAgain: path, bytes: bytes)
        }
    }

    /// Steps over a file `write(to:)` wrote, checking its form without building
    /// it: a form that passes is one `init(from:)` reads without failing.
    public static func skim(_ reader: inout ByteReader) throws {
        try reader.skipRun()
        try reader.skipRun()
        for _ in 0..<(try reader.readCount()) { try Diagnostic.skim(&reader) }
        try reader.skipRun()
    }

    init(path: String, bytes: [UInt8], problems: [Diagnostic], documents: [JSONValue], loaded: LoadedFile?) {
        self.path = path
        self.bytes = bytes
        self.problems = problems
        reading = DecodedOnce(Reading(documents: documents, loaded: loaded))
    }
}

/// What reading a prepared file found: its documents and manifests.
private struct Reading: Sendable {
    var documents: [JSONValue]
    var loaded: LoadedFile?

    init(documents: [JSONValue], loaded: LoadedFile?) {
        self.documents = documents
        self.loaded = loaded
    }

    /// The stored form: a flag for whether the file holds manifests, then loading's diagnostics and the documents.
    func storedForm() -> ArraySlice<UInt8> {
        var writer = ByteWriter()
        writer.write(loaded != nil)
        if let loaded {
            writer.write(loaded.diagnostics.count)
            for diagnostic in loaded.diagnostics { diagnostic.write(to: &writer) }
            writer.write(documents.count)
            for document in documents { document.write(to: &writer) }
        }
        return writer.bytes[...]
    }

    /// Reads a stored form; `nil` when it does not decode.
    init?(stored: ArraySlice<UInt8>, path: String) {
        var reader = ByteReader(stored)
        do {
            guard try reader.readBool() else {
                guard reader.isAtEnd else { return nil }
                self.init(documents: [], loaded: nil)
                return
            }
            let diagnostics = try (0..<reader.readCount()).map { _ in try Diagnostic(from: &reader) }
            let documents = try (0..<reader.readCount()).map { _ in try JSONValue(from: &reader) }
            guard reader.isAtEnd else { return nil }
            var loaded = ValidationRun.examine(documents, path: path, role: FileRole.of(path), schemas: nil) { _, _ in .start }
            loaded.diagnostics = diagnostics
            self.init(documents: documents, loaded: loaded)
        } catch {
            return nil
        }
    }

    /// A stored form that does not decode (a damaged state file) costs a fresh
    /// reading of the bytes, never a wrong answer.
    init(readingAgain path: String, bytes: [UInt8]) {
        let file = MarketplaceValidator().prepare(path: path, bytes: bytes)
        self.init(documents: file.documents, loaded: file.loaded)
    }
}

extension MarketplaceValidator {
    /// Reads and checks one version of a file on its own, keeping what was found
    /// for later validations to reuse (`SourceFile.Content.prepared`).
    public func prepare(path: String, bytes: [UInt8]) -> PreparedFile {
        let role = FileRole.of(path)
        var documents: [JSONValue] = []
        var loaded: LoadedFile?
        if !role.allowedKinds.isEmpty {
            let result = ValidationRun.load(path: path, bytes: bytes, role: role, limits: limits, schemas: ManifestSchemas.shared)
            loaded = result.file
            documents = result.documents
        }
        let unchecked = PreparedFile(path: path, bytes: bytes, problems: [], documents: documents, loaded: loaded)
        return PreparedFile(
            path: path, bytes: bytes, problems: checkFile(SourceFile(path: path, content: .prepared(unchecked))),
            documents: documents, loaded: loaded)
    }

    /// `prepare` for many files, in parallel; results in the order given.
    public func prepare(_ files: [(path: String, bytes: [UInt8])]) -> [PreparedFile] {
        files.withUnsafeBufferPointer { buffer in
            let pending = UnsafeSendable(buffer)
            return Parallel.map(pending.value.count) { index in
                prepare(path: pending.value[index].path, bytes: pending.value[index].bytes)
            }
        }
    }
}
