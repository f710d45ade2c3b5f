import SetuEntitlements
import SetuManifest
import SetuStorage

/// Keeps the entitlements last derived in a state directory
/// (`<state>/trust/entitlements.bin`), so a run after a few new commits
/// updates them instead of validating the whole marketplace again.
public struct EntitlementStore: Sendable {
    public let directory: String

    public init(_ directory: String) {
        self.directory = directory
    }

    private var path: String { directory + "/trust/entitlements.bin" }
    private static let magic = Array("setu entitlements\n".utf8)
    private static let format = 2

    /// The kept derivation and the trust root of the replay it came from, or
    /// `nil` when there is none or it cannot be used (then a full derivation follows).
    public func load() -> (trustRoot: String, derived: DerivedEntitlements)? {
        guard let bytes = AtomicFile.read(path), bytes.starts(with: Self.magic) else { return nil }
        var reader = ByteReader(bytes[Self.magic.count...])
        do {
            guard try reader.readInt() == Self.format else { return nil }
            let trustRoot = try reader.readString()
            let revision = try reader.readString()
            let today = try reader.readString()
            let verification = try reader.readString()
            let apiIDs = try reader.readStrings()
            var firstErrors: [String: Diagnostic] = [:]
            for _ in 0..<(try reader.readCount()) {
                let diagnostic = try Diagnostic(from: &reader)
                firstErrors[diagnostic.file] = diagnostic
            }
            var entitlements: [Entitlement] = []
            let count = try reader.readCount()
            entitlements.reserveCapacity(count)
            for _ in 0..<count {
                entitlements.append(try readEntitlement(&reader))
            }
            guard reader.isAtEnd else { return nil }
            return (
                trustRoot,
                DerivedEntitlements(
                    revision: revision, today: today, verification: verification,
                    entitlements: entitlements, firstErrors: firstErrors, apiIDs: apiIDs)
            )
        } catch {
            return nil
        }
    }

    public func save(_ derived: DerivedEntitlements, trustRoot: String) throws {
        var writer = ByteWriter()
        writer.write(Self.format)
        writer.write(trustRoot)
        writer.write(derived.revision)
        writer.write(derived.today)
        writer.write(derived.verification)
        writer.write(derived.apiIDs)
        writer.write(derived.firstErrors.count)
        for file in derived.firstErrors.keys.sorted() {
            derived.firstErrors[file]!.write(to: &writer)
        }
        writer.write(derived.entitlements.count)
        for entitlement in derived.entitlements {
            write(entitlement, to: &writer)
        }
        try replaceStateFile(path, with: Self.magic + writer.bytes, what: "the entitlements")
    }

    private func write(_ entitlement: Entitlement, to writer: inout ByteWriter) {
        writer.write(entitlement.consumer)
        writer.write(entitlement.subscription)
        writer.write(entitlement.api)
        writer.write(entitlement.plan)
        writer.write(entitlement.operations != nil)
        if let operations = entitlement.operations { writer.write(operations) }
        writer.write(entitlement.notAfter)
        writer.write(entitlement.state.rawValue)
        writer.write(entitlement.reason)
        writer.write(entitlement.approval)
        writer.write(entitlement.approvers)
        writer.write(entitlement.path)
        writer.write(entitlement.requestedIn)
    }

    private func readEntitlement(_ reader: inout ByteReader) throws -> Entitlement {
        let consumer = try reader.readString()
        let subscription = try reader.readString()
        let api = try reader.readString()
        let plan = try reader.readString()
        let operations = try reader.readBool() ? try reader.readStrings() : nil
        let notAfter = try reader.readOptionalString()
        guard let state = Entitlement.State(rawValue: try reader.readString()) else { throw ByteReader.Truncated() }
        let reason = try reader.readOptionalString()
        let approval = try reader.readApproval()
        return Entitlement(
            consumer: consumer, subscription: subscription, api: api, plan: plan, operations: operations,
            notAfter: notAfter, state: state, reason: reason, approval: approval,
            approvers: try reader.readStrings(), path: try reader.readString(), requestedIn: try reader.readOptionalString())
    }
}
