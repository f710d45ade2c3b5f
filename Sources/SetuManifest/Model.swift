import Foundation

/// Where a manifest came from: its file and its place among the file's documents.
public struct ManifestOrigin: Sendable, Hashable {
    /// The file, relative to the repository root.
    public var file: String
    /// The document's index in the file, from 0.
    public var document: Int
}

/// A person who acts for a publisher, a consumer or the platform.
public struct Member: Sendable, Hashable {
    /// Their email, which is their identity in `authors` verification.
    public var email: String
    /// Their name, for people reading the manifest.
    public var name: String?
    /// Their SSH public keys, which identify them in `signatures` verification.
    public var sshKeys: [String]
}

/// The marketplace's own policy (`policies/platform.yaml`).
public struct Platform: Sendable, Hashable {
    /// How a commit's author is identified.
    public enum Verification: String, Sendable, Hashable {
        case none, authors, signatures
    }

    public var name: String
    public var displayName: String
    public var admins: [Member]
    public var verification: Verification
    /// Hosts upstreams may use: exact names, or `*.domain`; `nil` allows every public host.
    public var allowedUpstreamHosts: [String]?
    public var allowLoopback: Bool
    public var allowPrivate: Bool
    public var allowHTTP: Bool
    public var origin: ManifestOrigin
}

/// Rate limits and quotas an API may offer.
public struct Plan: Sendable, Hashable {
    public enum RatePeriod: String, Sendable, Hashable { case second, minute, hour }
    public enum QuotaPeriod: String, Sendable, Hashable { case day, month }
    /// How closely replicas sharing a store hold the plan (`setu serve --limits redis://…`).
    public enum Precision: String, Sendable, Hashable {
        /// Every request asks the store: one round trip, never over the limits.
        case exact
        /// Each replica counts locally and tells the store every 250 ms.
        case batched
    }
    /// What a replica does when the shared store cannot be reached.
    public enum FailMode: String, Sendable, Hashable {
        /// The replica's own counts limit requests until the store is back.
        case open
        /// Requests are refused with 503 `limits-unavailable` until the store is back.
        case closed
    }

    public var name: String
    public var displayName: String
    public var requests: Int
    public var per: RatePeriod
    public var burst: Int?
    public var quota: (requests: Int, per: QuotaPeriod)? {
        guard let quotaRequests, let quotaPer else { return nil }
        return (quotaRequests, quotaPer)
    }
    public var quotaRequests: Int?
    public var quotaPer: QuotaPeriod?
    public var precision: Precision = .exact
    public var failMode: FailMode = .open
    public var origin: ManifestOrigin
}

/// An issuer of consent tokens.
public struct ConsentProvider: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var kid: String
        public var algorithm: String
        public var publicKeyPEM: String
    }

    public var name: String
    public var displayName: String
    public var issuer: String
    public var audience: String
    /// The algorithms its consents may be signed with; empty for its keys' own.
    public var algorithms: [String] = []
    public var keys: [Key]
    /// Where it publishes further keys as a JWKS, fetched every `jwksRefreshMilliseconds`.
    public var jwksURI: String?
    public var jwksRefreshMilliseconds = 300_000
    /// How far clocks may disagree when a consent's times are checked.
    public var clockSkewMilliseconds = 60_000
    /// The longest a consent it grants may last: from `iat` to `exp`, or across `dateRange`.
    public var maxLifetimeMilliseconds = 86_400_000
    public var origin: ManifestOrigin
}

/// A condition on live traffic that fires an alert.
public struct AlertRule: Sendable, Hashable {
    /// What a rule watches.
    public enum Metric: String, Sendable, Hashable, CaseIterable {
        case errorRate = "error-rate"
        case latencyP50 = "latency-p50"
        case latencyP95 = "latency-p95"
        case latencyP99 = "latency-p99"
        case denialRate = "denial-rate"
        case quotaUse = "quota-use"
        case upstreamFailures = "upstream-failures"
    }

    /// How urgent a firing rule is.
    public enum Severity: String, Sendable, Hashable, CaseIterable {
        case warning, critical
    }

    public var name: String
    public var metric: Metric
    public var threshold: Double
    public var window: String
    public var severity: Severity
    /// What the rule watches for, in words, as alerts show it.
    public var description: String?
    public var publisher: String?
    public var api: String?
    public var consumer: String?
    public var webhook: String?
    public var origin: ManifestOrigin
}

/// A department or organisation that lists APIs.
public struct Publisher: Sendable, Hashable {
    /// What a publisher's APIs offer.
    public enum Category: String, Sendable, Hashable, CaseIterable {
        /// User-specific data that needs the user's consent.
        case document
        /// Non-user data.
        case service
        /// Listed for information only; never proxied.
        case listing
    }

    public var name: String
    public var displayName: String
    public var category: Category
    public var description: String?
    public var contactEmail: String
    public var members: [Member]
    public var approvers: [Member]
    public var origin: ManifestOrigin
}

/// One operation of an API, from its OpenAPI document.
public struct APIOperation: Sendable, Hashable {
    /// `GET`, `POST`, …
    public var method: String
    /// The path template, e.g. `/hscer` or `/users/{id}`.
    public var path: String
    /// The OpenAPI operationId, which subscriptions name.
    public var operationId: String?
    public var summary: String?
    /// Its parameters and request body, which the gateway checks requests against.
    public var request: OperationRequest

    /// Creates an operation.
    public init(method: String, path: String, operationId: String?, summary: String?, request: OperationRequest = .init()) {
        self.method = method
        self.path = path
        self.operationId = operationId
        self.summary = summary
        self.request = request
    }
}

/// An API a publisher lists.
public struct API: Sendable, Hashable {
    /// Whether calls need the user's consent.
    public enum Consent: String, Sendable, Hashable { case required, optional, none }
    /// Whether requests are checked against the OpenAPI document: refused when they do not
    /// match (`enforce`), passed on with the failure logged (`report`), or not checked.
    public enum Validation: String, Sendable, Hashable { case enforce, report, off }

    public var publisher: String
    public var name: String
    /// `<publisher>/<name>`.
    public var id: String { publisher + "/" + name }
    public var title: String
    public var summary: String
    public var description: String?
    public var version: String
    public var tags: [String]
    public var basePath: String?
    public var upstreamURL: String?
    public var upstreamTimeout: String?
    public var listingURL: String?
    /// The OpenAPI document's path from the repository root, when there is one.
    public var openapiPath: String?
    public var plans: [String]
    /// The consent setting written in the manifest, if any.
    public var consentSetting: Consent?
    /// Operations from the OpenAPI document.
    public var operations: [APIOperation]
    /// The OpenAPI document with its schemas in JSON Schema 2020-12's form, which the
    /// operations' schema pointers point into.
    public var schemaDocument: JSONValue?
    /// How requests are checked against the document; `enforce` unless written.
    public var validation: Validation = .enforce
    public var origin: ManifestOrigin

    /// Whether calls need consent: as written, else required for document publishers.
    public func consent(for category: Publisher.Category) -> Consent {
        consentSetting ?? (category == .document ? .required : .none)
    }
}

/// An organisation that calls APIs.
public struct Consumer: Sendable, Hashable {
    public enum Category: String, Sendable, Hashable {
        case offline
        case authorizedPartner = "authorized-partner"
    }

    /// A client id and the SHA-256 of its API key.
    public struct Credential: Sendable, Hashable {
        public var clientId: String
        public var keySHA256: String
        public var notBefore: String?
        public var notAfter: String?
    }

    public var name: String
    public var displayName: String
    public var category: Category
    public var members: [Member]
    public var credentials: [Credential]
    public var partnerProvider: String?
    public var partnerClientId: String?
    public var origin: ManifestOrigin
}

/// A consumer's request to call an API.
public struct Subscription: Sendable, Hashable {
    public var consumer: String
    public var name: String
    /// `<consumer>/<name>`.
    public var id: String { consumer + "/" + name }
    public var api: String
    public var plan: String
    public var purpose: String?
    public var operations: [String]?
    public var notAfter: String?
    public var origin: ManifestOrigin
}

/// Everything a marketplace repository declares, as read from one revision.
public struct Marketplace: Sendable {
    public var platform: Platform?
    public var plans: [String: Plan] = [:]
    public var consentProviders: [String: ConsentProvider] = [:]
    public var alertRules: [String: AlertRule] = [:]
    public var publishers: [String: Publisher] = [:]
    /// APIs by id (`<publisher>/<name>`).
    public var apis: [String: API] = [:]
    public var consumers: [String: Consumer] = [:]
    /// Subscriptions by id (`<consumer>/<name>`).
    public var subscriptions: [String: Subscription] = [:]

    /// Creates an empty marketplace.
    public init() {}

    /// How many manifests it holds.
    public var manifestCount: Int {
        (platform == nil ? 0 : 1) + plans.count + consentProviders.count + alertRules.count
            + publishers.count + apis.count + consumers.count + subscriptions.count
    }
}

/// The rule every `metadata.name` follows, for code that makes names.
public enum ManifestName {
    /// Whether `name` is 1-63 lowercase letters, digits and '-', starting and
    /// ending with a letter or digit (the schemas' `name` definition).
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool { (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) }
        return alphanumeric(bytes.first!) && alphanumeric(bytes.last!) && bytes.allSatisfy { alphanumeric($0) || $0 == 45 }
    }
}

/// The date form manifests use (`notAfter`, `notBefore`): YYYY-MM-DD.
public enum ManifestDate {
    /// Whether `text` names a day that exists, written YYYY-MM-DD.
    public static func isValid(_ text: String) -> Bool {
        parts(text).map { $0.day <= days(inMonth: $0.month, of: $0.year) } ?? false
    }

    /// Whether `text` is written YYYY-MM-DD with a month 01-12 and a day 01-31: the
    /// schemas' `date` pattern, which cannot tell that 2027-02-30 names no day.
    public static func isWritten(_ text: String) -> Bool {
        parts(text) != nil
    }

    /// Why a date written YYYY-MM-DD names no day ("February 2027 has 28 days"), and the
    /// month's last day; nil for a day that exists, or text not written so.
    public static func missingDay(_ text: String) -> (problem: String, lastDay: String)? {
        guard let (year, month, day) = parts(text) else { return nil }
        let last = days(inMonth: month, of: year)
        guard day > last else { return nil }
        let name = [
            "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
            "November", "December",
        ][month - 1]
        return ("\(name) \(text.prefix(4)) has \(last) days", "\(text.prefix(8))\(last)")
    }

    /// Year, month and day of text written YYYY-MM-DD with a month 01-12 and a day 01-31.
    /// Read byte by byte: a regular expression would load ICU's pattern tables on every
    /// start of `setu status`, for a ten-character string.
    private static func parts(_ text: String) -> (year: Int, month: Int, day: Int)? {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return (year, month, day)
    }

    /// Days in a month of the Gregorian calendar.
    private static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Today's date in UTC, as entitlements and credentials are judged by.
    public static func today() -> String {
        // The C calendar is enough for a UTC date, and spares loading Foundation's
        // calendar and time zone data on every start.
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        return String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
    }
}

/// The duration form manifests and options use: a whole number followed by `ms`, `s`,
/// `m` or `h` (the schemas' `duration` definition).
public enum ManifestDuration {
    /// `500ms`, `10s`, `2m`, `1h` in milliseconds; nil for anything else.
    public static func milliseconds(_ duration: String) -> Int? {
        let digits = duration.prefix { $0.isASCII && $0.isNumber }
        guard let value = Int(digits) else { return nil }
        switch duration.dropFirst(digits.count) {
        case "ms": return value
        case "s": return value * 1000
        case "m": return value * 60_000
        case "h": return value * 3_600_000
        default: return nil
        }
    }
}
