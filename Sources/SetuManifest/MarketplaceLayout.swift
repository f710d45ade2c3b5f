import Foundation

/// A file of a marketplace repository, as read from a commit or a work tree.
public struct SourceFile: Sendable {
    /// What was found at the path.
    public enum Content: Sendable {
        /// A regular file's bytes.
        case bytes([UInt8])
        /// A file over the size limit, with its size; it was not read.
        case tooLarge(Int)
        /// A symbolic link; never followed.
        case symlink
        /// A submodule; it has no content here.
        case submodule
        /// A regular file read and checked before (`MarketplaceValidator.prepare`):
        /// validation reuses what it found instead of parsing the bytes again.
        case prepared(PreparedFile)
    }

    /// Path from the repository root, with `/` separators.
    public var path: String
    /// What was found there.
    public var content: Content

    /// Creates a source file.
    public init(path: String, content: Content) {
        self.path = path
        self.content = content
    }
}

/// The top-level folders a marketplace repository keeps its manifests in.
public let marketplaceRoots = ["catalog", "policies", "subscriptions"]

/// What a path is in the marketplace layout, for code outside validation that
/// must agree with it (history replay's ownership and approval rules).
public enum MarketplacePath {
    /// Whether the path holds Subscriptions: `subscriptions/<consumer>/<name>.yaml`.
    public static func isSubscription(_ path: String) -> Bool {
        subscriptionConsumer(path) != nil
    }

    /// The consumer whose folder holds a Subscriptions path, `nil` for any other path.
    public static func subscriptionConsumer(_ path: String) -> String? {
        if case .subscriptions(let consumer, _) = FileRole.of(path) { return consumer }
        return nil
    }

    /// Whether the path registers who is who: the platform policy, a publisher or a consumer.
    public static func isRegistration(_ path: String) -> Bool {
        switch FileRole.of(path) {
        case .platform, .publisher, .consumer: return true
        default: return false
        }
    }
}

/// Where a file sits in the marketplace layout, which decides the kinds it may hold.
enum FileRole: Equatable {
    case platform
    case policies
    case publisher(String)
    case apis(publisher: String, stem: String)
    case consumer(String)
    case subscriptions(consumer: String, stem: String)
    case openapi
    case ignored
    case misplaced(String)

    var allowedKinds: [ManifestKind] {
        switch self {
        case .platform: return [.platform]
        case .policies: return [.plan, .consentProvider, .alertRule]
        case .publisher: return [.publisher]
        case .apis: return [.api]
        case .consumer: return [.consumer]
        case .subscriptions: return [.subscription]
        case .openapi, .ignored, .misplaced: return []
        }
    }

    var singleDocument: Bool {
        switch self {
        case .platform, .publisher, .consumer: return true
        default: return false
        }
    }

    static func of(_ path: String) -> FileRole {
        var path = path
        path.makeContiguousUTF8()
        return path.utf8.withContiguousStorageIfAvailable { bytes in of(path, bytes) }!
    }

    /// Every validation and every replayed change asks this, so it scans the
    /// path's bytes once, finding the slashes the layout cares about, and
    /// compares extensions byte by byte rather than lowercasing.
    private static func of(_ path: String, _ bytes: UnsafeBufferPointer<UInt8>) -> FileRole {
        let slash = UInt8(ascii: "/")
        var slashes = 0, first = -1, second = -1, last = -1
        for (offset, byte) in bytes.enumerated() where byte == slash {
            slashes += 1
            if first < 0 { first = offset } else if second < 0 { second = offset }
            last = offset
        }
        let components = slashes + 1
        let fileStart = last + 1
        func text(_ start: Int, _ end: Int) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        func hasExtension(_ suffix: StaticString) -> Bool {
            let length = suffix.utf8CodeUnitCount
            guard bytes.count - fileStart >= length else { return false }
            let expected = UnsafeBufferPointer(start: suffix.utf8Start, count: length)
            for index in 0..<length {
                let byte = bytes[bytes.count - length + index]
                let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
                if lowered != expected[index] { return false }
            }
            return true
        }
        func top(is name: StaticString) -> Bool {
            let end = first < 0 ? bytes.count : first
            return end == name.utf8CodeUnitCount && memcmp(bytes.baseAddress!, name.utf8Start, end) == 0
        }
        let root = top(is: "catalog") ? "catalog" : top(is: "policies") ? "policies" : top(is: "subscriptions") ? "subscriptions" : ""
        let isOpenAPI = hasExtension(".openapi.yaml") || hasExtension(".openapi.yml") || hasExtension(".openapi.json")
        if root == "catalog", components >= 3, isOpenAPI { return .openapi }
        if hasExtension(".yml") { return .misplaced("use the .yaml extension: rename it to \(text(fileStart, bytes.count - 4)).yaml") }
        guard hasExtension(".yaml") else { return .ignored }
        let stem = text(fileStart, bytes.count - 5)
        switch (root, components) {
        case ("policies", 2):
            return stem == "platform" ? .platform : .policies
        case ("catalog", 3):
            let publisher = text(first + 1, second)
            return stem == "publisher" ? .publisher(publisher) : .apis(publisher: publisher, stem: stem)
        case ("subscriptions", 3):
            let consumer = text(first + 1, second)
            return stem == "consumer" ? .consumer(consumer) : .subscriptions(consumer: consumer, stem: stem)
        case ("policies", _):
            return .misplaced("policy files sit directly in policies/, e.g. policies/plans.yaml")
        case ("catalog", _):
            return .misplaced("catalog files sit in catalog/<publisher>/, e.g. catalog/cbse/class-xii-marksheet.yaml")
        default:
            return .misplaced("subscription files sit in subscriptions/<consumer>/, e.g. subscriptions/acme-bank/cbse-marksheet.yaml")
        }
    }
}
