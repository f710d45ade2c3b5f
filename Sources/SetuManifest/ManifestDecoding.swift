/// Builds model values from schema-checked documents.
///
/// Decoding is lenient on purpose: a document with a schema error still yields
/// a value (missing fields become empty) so that one mistake does not hide every
/// manifest that refers to it behind a cascade of dangling-reference errors.
enum ManifestDecoding {
    static func member(_ value: JSONValue) -> Member {
        Member(
            email: value["email"]?.stringValue ?? "",
            name: value["name"]?.stringValue,
            sshKeys: strings(value["sshKeys"]))
    }

    static func members(_ value: JSONValue?) -> [Member] {
        value?.arrayValue?.map(member) ?? []
    }

    static func strings(_ value: JSONValue?) -> [String] {
        value?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func int(_ value: JSONValue?) -> Int? {
        value?.numberValue.flatMap { $0.isWholeNumber && abs($0) < 1e15 ? Int($0) : nil }
    }

    static func platform(_ value: JSONValue, name: String, origin: ManifestOrigin) -> Platform {
        let spec = value["spec"] ?? .null
        let upstreams = spec["upstreams"] ?? .null
        return Platform(
            name: name,
            displayName: spec["displayName"]?.stringValue ?? name,
            admins: members(spec["admins"]),
            verification: spec["verification"]?.stringValue.flatMap(Platform.Verification.init) ?? .none,
            allowedUpstreamHosts: upstreams["allow"].map { strings($0) },
            allowLoopback: upstreams["allowLoopback"]?.boolValue ?? false,
            allowPrivate: upstreams["allowPrivate"]?.boolValue ?? false,
            allowHTTP: upstreams["allowHTTP"]?.boolValue ?? false,
            origin: origin)
    }

    static func plan(_ value: JSONValue, name: String, origin: ManifestOrigin) -> Plan {
        let spec = value["spec"] ?? .null
        let rate = spec["rateLimit"] ?? .null
        let quota = spec["quota"] ?? .null
        return Plan(
            name: name,
            displayName: spec["displayName"]?.stringValue ?? name,
            requests: int(rate["requests"]) ?? 1,
            per: rate["per"]?.stringValue.flatMap(Plan.RatePeriod.init) ?? .second,
            burst: int(rate["burst"]),
            quotaRequests: int(quota["requests"]),
            quotaPer: quota["per"]?.stringValue.flatMap(Plan.QuotaPeriod.init),
            precision: spec["precision"]?.stringValue.flatMap(Plan.Precision.init) ?? .exact,
            failMode: spec["failMode"]?.stringValue.flatMap(Plan.FailMode.init) ?? .open,
            origin: origin)
    }

    static func consentProvider(_ value: JSONValue, name: String, origin: ManifestOrigin) -> ConsentProvider {
        let spec = value["spec"] ?? .null
        let keys =
            spec["keys"]?.arrayValue?.map {
                ConsentProvider.Key(
                    kid: $0["kid"]?.stringValue ?? "", algorithm: $0["alg"]?.stringValue ?? "",
                    publicKeyPEM: $0["publicKey"]?.stringValue ?? "")
            } ?? []
        return ConsentProvider(
            name: name,
            displayName: spec["displayName"]?.stringValue ?? name,
            issuer: spec["issuer"]?.stringValue ?? "",
            audience: spec["audience"]?.stringValue ?? "",
            algorithms: spec["algorithms"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            keys: keys,
            jwksURI: spec["jwksURI"]?.stringValue,
            jwksRefreshMilliseconds: spec["jwksRefresh"]?.stringValue.flatMap(ManifestDuration.milliseconds) ?? 300_000,
            clockSkewMilliseconds: spec["clockSkew"]?.stringValue.flatMap(ManifestDuration.milliseconds) ?? 60_000,
            maxLifetimeMilliseconds: spec["maxLifetime"]?.stringValue.flatMap(ManifestDuration.milliseconds) ?? 86_400_000,
            origin: origin)
    }

    static func alertRule(_ value: JSONValue, name: String, origin: ManifestOrigin) -> AlertRule {
        let spec = value["spec"] ?? .null
        let selector = spec["selector"] ?? .null
        return AlertRule(
            name: name,
            // A value the schema refuses keeps the file out of force; what it decodes to is never used.
            metric: spec["metric"]?.stringValue.flatMap(AlertRule.Metric.init) ?? .errorRate,
            threshold: spec["threshold"]?.numberValue ?? 0,
            window: spec["window"]?.stringValue ?? "",
            severity: spec["severity"]?.stringValue.flatMap(AlertRule.Severity.init) ?? .warning,
            description: spec["description"]?.stringValue,
            publisher: selector["publisher"]?.stringValue,
            api: selector["api"]?.stringValue,
            consumer: selector["consumer"]?.stringValue,
            webhook: spec["webhook"]?.stringValue,
            origin: origin)
    }

    static func publisher(_ value: JSONValue, name: String, origin: ManifestOrigin) -> Publisher {
        let spec = value["spec"] ?? .null
        return Publisher(
            name: name,
            displayName: spec["displayName"]?.stringValue ?? name,
            category: spec["type"]?.stringValue.flatMap(Publisher.Category.init) ?? .service,
            description: spec["description"]?.stringValue,
            contactEmail: spec["contact"]?["email"]?.stringValue ?? "",
            members: members(spec["members"]),
            approvers: members(spec["approvers"]),
            origin: origin)
    }

    static func api(_ value: JSONValue, publisher: String, name: String, origin: ManifestOrigin) -> API {
        let spec = value["spec"] ?? .null
        return API(
            publisher: publisher,
            name: name,
            title: spec["title"]?.stringValue ?? name,
            summary: spec["summary"]?.stringValue ?? "",
            description: spec["description"]?.stringValue,
            version: spec["version"]?.stringValue ?? "",
            tags: strings(spec["tags"]),
            basePath: spec["basePath"]?.stringValue,
            upstreamURL: spec["upstream"]?["url"]?.stringValue,
            upstreamTimeout: spec["upstream"]?["timeout"]?.stringValue,
            listingURL: spec["listing"]?["url"]?.stringValue,
            openapiPath: nil,
            plans: strings(spec["plans"]),
            consentSetting: spec["consent"]?.stringValue.flatMap(API.Consent.init),
            operations: [],
            validation: spec["validation"]?.stringValue.flatMap(API.Validation.init) ?? .enforce,
            origin: origin)
    }

    static func consumer(_ value: JSONValue, name: String, origin: ManifestOrigin) -> Consumer {
        let spec = value["spec"] ?? .null
        let credentials =
            spec["credentials"]?.arrayValue?.map {
                Consumer.Credential(
                    clientId: $0["clientId"]?.stringValue ?? "", keySHA256: $0["keySHA256"]?.stringValue ?? "",
                    notBefore: $0["notBefore"]?.stringValue, notAfter: $0["notAfter"]?.stringValue)
            } ?? []
        return Consumer(
            name: name,
            displayName: spec["displayName"]?.stringValue ?? name,
            category: spec["type"]?.stringValue.flatMap(Consumer.Category.init) ?? .offline,
            members: members(spec["members"]),
            credentials: credentials,
            partnerProvider: spec["partner"]?["provider"]?.stringValue,
            partnerClientId: spec["partner"]?["clientId"]?.stringValue,
            origin: origin)
    }

    static func subscription(_ value: JSONValue, consumer: String, name: String, origin: ManifestOrigin) -> Subscription {
        let spec = value["spec"] ?? .null
        return Subscription(
            consumer: consumer,
            name: name,
            api: spec["api"]?.stringValue ?? "",
            plan: spec["plan"]?.stringValue ?? "",
            purpose: spec["purpose"]?.stringValue,
            operations: spec["operations"]?.arrayValue?.compactMap(\.stringValue),
            notAfter: spec["notAfter"]?.stringValue,
            origin: origin)
    }
}
