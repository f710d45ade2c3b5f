import Foundation

/// The rules that span manifests (DESIGN.md §3): OpenAPI documents, APIs and their
/// upstreams, consumers and their credentials, subscriptions, alert rules.
extension ValidationRun {
    mutating func checkRules() {
        checkOpenAPIDocuments()
        checkAPIs()
        checkConsumers()
        checkSubscriptions()
        checkAlertRules()
        for path in openapiFiles.subtracting(referencedOpenAPI).sorted() {
            diagnostics.append(
                Diagnostic(
                    .warning, file: path, rule: .openapiUnreferenced,
                    message: "no API manifest refers to this OpenAPI document",
                    fix: "refer to it from an API's spec.openapi, or delete it"))
        }
    }

    mutating func checkOpenAPIDocuments() {
        var parsed: [String: OpenAPIDocument] = [:]
        for path in referencedOpenAPI.intersection(openapiFiles).sorted() {
            let bytes = bytesByPath[path] ?? []
            switch YAMLLoader.load(bytes, file: path, limits: limits) {
            case .failure(let diagnostic):
                diagnostics.append(diagnostic)
            case .success(let loaded):
                guard loaded.count == 1, let document = loaded.first else {
                    diagnostics.append(
                        Diagnostic(
                            file: path, rule: .openapiParse,
                            message: "an OpenAPI document is one YAML document, but this file has \(loaded.count)"))
                    continue
                }
                do {
                    let openapi = try OpenAPIDocument(document.value)
                    parsed[path] = openapi
                    var seen: [String: String] = [:]
                    for operation in openapi.operations {
                        let pointer = JSONPointer(["paths", operation.path, operation.method.lowercased()])
                        guard let id = operation.operationId else {
                            diagnostics.append(
                                Diagnostic(
                                    .warning, file: path, location: document.location(of: pointer), pointer: pointer,
                                    rule: .openapiOperationId,
                                    message: "\(operation.method) \(operation.path) has no operationId, so subscriptions cannot name it",
                                    fix: "add an operationId"))
                            continue
                        }
                        if let first = seen[id] {
                            diagnostics.append(
                                Diagnostic(
                                    file: path, location: document.location(of: pointer.appending("operationId")),
                                    pointer: pointer.appending("operationId"), rule: .openapiOperationId,
                                    message: "operationId '\(id)' is also used by \(first)",
                                    fix: "give each operation its own operationId"))
                        }
                        seen[id] = "\(operation.method) \(operation.path)"
                    }
                } catch {
                    diagnostics.append(
                        Diagnostic(
                            file: path, location: document.location(of: error.pointer), pointer: error.pointer,
                            rule: .openapiParse, message: error.message))
                }
            }
        }
        for (id, api) in marketplace.apis {
            if let path = api.openapiPath, let document = parsed[path] {
                marketplace.apis[id]?.operations = document.operations
                marketplace.apis[id]?.schemaDocument = document.schemaDocument
            }
        }
    }

    mutating func checkAPIs() {
        var basePaths: [(path: String, api: API)] = []
        for id in marketplace.apis.keys.sorted() {
            let api = marketplace.apis[id]!
            let origin = api.origin
            let fields = apiSpecFields[api.id] ?? []
            guard let publisher = marketplace.publishers[api.publisher] else {
                report(
                    origin, [], .refPublisher, "API \(api.id) has no publisher: catalog/\(api.publisher)/publisher.yaml is missing or invalid",
                    fix: "add catalog/\(api.publisher)/publisher.yaml")
                continue
            }
            if publisher.category == .listing {
                if api.listingURL == nil {
                    report(
                        origin, ["spec"], .apiListing, "is missing 'listing': \(api.publisher) is a listing publisher, so its APIs give a listing URL",
                        fix: "add listing: {url: https://…} where the API is documented")
                }
                for field in ["upstream", "basePath", "plans"] where fields.contains(field) {
                    report(
                        origin, ["spec", field], .apiListing, "is not allowed: listing APIs are never proxied by the gateway",
                        fix: "remove \(field)")
                }
                continue
            }
            if api.listingURL != nil {
                report(
                    origin, ["spec", "listing"], .apiListing,
                    "is only for listing publishers' APIs; \(api.publisher) is a \(publisher.category.rawValue) publisher",
                    fix: "remove listing")
            }
            if !fields.contains("upstream") {
                report(
                    origin, ["spec"], .apiUpstream, "is missing 'upstream': the gateway needs to know where to send calls",
                    fix: "add upstream: {url: https://…}")
            }
            if let basePath = api.basePath {
                basePaths.append((basePath, api))
            } else if !fields.contains("basePath") {
                report(
                    origin, ["spec"], .apiBasePath, "is missing 'basePath': the gateway serves each API under its own path",
                    fix: "add basePath: /\(api.publisher)/\(api.name)")
            }
            if api.plans.isEmpty {
                report(
                    origin, ["spec"], .apiPlans, "offers no plans, so nobody can subscribe",
                    fix: "add plans: [\(marketplace.plans.keys.sorted().first ?? "standard")]")
            }
            for (index, plan) in api.plans.enumerated() where marketplace.plans[plan] == nil {
                report(
                    origin, ["spec", "plans", String(index)], .refPlan, "names plan '\(plan)', which no policies file defines",
                    fix: marketplace.plans.isEmpty
                        ? "define it as a Plan in policies/plans.yaml"
                        : "use one of: \(marketplace.plans.keys.sorted().joined(separator: ", ")), or define it in policies/plans.yaml")
            }
            if let url = api.upstreamURL, !checkedUpstreams.contains(api.id) {
                checkUpstream(url, origin: origin)
            }
        }
        // Base paths: reserved prefix, then duplicates and overlaps (one a segment
        // prefix of another). Each path is checked against its own prefixes, looked
        // up by value, so the check stays linear in the number of APIs.
        basePaths.sort { ($0.path, $0.api.id) < ($1.path, $1.api.id) }
        var owners: [String: API] = [:]
        for entry in basePaths {
            if entry.path == "/-" || entry.path.hasPrefix("/-/") {
                report(
                    entry.api.origin, ["spec", "basePath"], .apiBasePath, "'\(entry.path)' is reserved for the marketplace's own pages",
                    fix: "choose a base path that does not start with /-")
            }
            var prefixes = [entry.path]
            var prefix = Substring(entry.path)
            while let slash = prefix.lastIndex(of: "/"), slash > prefix.startIndex {
                prefix = prefix[..<slash]
                prefixes.append(String(prefix))
            }
            if let (path, other) = prefixes.lazy.compactMap({ path in owners[path].map { (path, $0) } }).first {
                let how = path == entry.path ? "is the same as" : "lies under"
                report(
                    entry.api.origin, ["spec", "basePath"], .apiBasePath,
                    "'\(entry.path)' \(how) the base path '\(path)' of \(other.id) (\(other.origin.file))",
                    fix: "give each API a base path of its own that no other contains")
            }
            if owners[entry.path] == nil { owners[entry.path] = entry.api }
        }
    }

    mutating func checkUpstream(_ url: String, origin: ManifestOrigin) {
        let pointer = ["spec", "upstream", "url"]
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else {
            report(origin, pointer, .upstreamUrl, "'\(url)' is not a URL the gateway can call", fix: "write it as https://host/path")
            return
        }
        let platform = marketplace.platform
        if scheme == "http", platform?.allowHTTP != true {
            report(
                origin, pointer, .upstreamScheme, "'\(url)' uses plain http, which the platform does not allow",
                fix: "use https://, or set upstreams.allowHTTP: true in policies/platform.yaml")
        }
        let address = UpstreamAddress.classify(host)
        switch address {
        case .linkLocal, .metadata, .unspecified:
            report(
                origin, pointer, .upstreamAddress, "'\(host)' is \(address.phrase), which an upstream may never be",
                fix: "point the upstream at the API's real host")
            return
        case .loopback:
            if platform?.allowLoopback != true {
                report(
                    origin, pointer, .upstreamAddress, "'\(host)' is \(address.phrase), which the platform does not allow",
                    fix: "point the upstream at the API's real host, or set upstreams.allowLoopback: true in policies/platform.yaml")
            }
            return
        case .privateRange:
            if platform?.allowPrivate != true {
                report(
                    origin, pointer, .upstreamAddress, "'\(host)' is \(address.phrase), which the platform does not allow",
                    fix: "point the upstream at the API's real host, or set upstreams.allowPrivate: true in policies/platform.yaml")
            }
            return
        case .public:
            break
        }
        guard let allowed = platform?.allowedUpstreamHosts else { return }
        let matches = allowed.contains { pattern in
            pattern.hasPrefix("*.") ? host.hasSuffix(String(pattern.dropFirst(1))) : host == pattern
        }
        if !matches {
            report(
                origin, pointer, .upstreamAllowList, "host '\(host)' is not in the platform's upstream allow-list",
                fix:
                    "ask an admin to add it to upstreams.allow in policies/platform.yaml (allowed now: \(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))"
            )
        }
    }

    mutating func checkConsumers() {
        var clientIds: [String: String] = [:]
        var keyHashes: [String: String] = [:]
        for name in marketplace.consumers.keys.sorted() {
            let consumer = marketplace.consumers[name]!
            let origin = consumer.origin
            if consumer.category == .authorizedPartner {
                if consumer.partnerProvider == nil {
                    report(
                        origin, ["spec"], .consumerPartner, "is an authorized partner, so it needs 'partner': the consent provider and the client id it issued",
                        fix: "add partner: {provider: \(marketplace.consentProviders.keys.sorted().first ?? "meripehchaan"), clientId: …}")
                }
            } else if consumer.partnerProvider != nil {
                report(
                    origin, ["spec", "partner"], .consumerPartner, "is only for authorized partners; this consumer is offline",
                    fix: "remove partner, or set type: authorized-partner")
            }
            if let provider = consumer.partnerProvider, marketplace.consentProviders[provider] == nil {
                report(
                    origin, ["spec", "partner", "provider"], .refConsentProvider, "names consent provider '\(provider)', which policies do not define",
                    fix: marketplace.consentProviders.isEmpty
                        ? "define it as a ConsentProvider in policies/consent-providers.yaml"
                        : "use one of: \(marketplace.consentProviders.keys.sorted().joined(separator: ", "))")
            }
            for (index, credential) in consumer.credentials.enumerated() {
                let pointer = ["spec", "credentials", String(index)]
                // Several keys of one consumer may share a client id, so a key can be rotated
                // without changing what callers send; another consumer's may not.
                if let first = clientIds[credential.clientId], first != consumer.name {
                    report(
                        origin, pointer + ["clientId"], .credentialClientId, "client id '\(credential.clientId)' is already used by consumer \(first)",
                        fix: "choose another client id")
                } else {
                    clientIds[credential.clientId] = consumer.name
                }
                if let today, let notAfter = credential.notAfter, ManifestDate.isValid(notAfter), notAfter < today {
                    report(
                        origin, pointer + ["notAfter"], .credentialExpired,
                        "the key of client id '\(credential.clientId)' expired on \(notAfter); the gateway refuses it",
                        fix: "remove this credential, or rotate the key with `setu keygen --rotate --client-id \(credential.clientId)`",
                        severity: .warning)
                }
                if credential.keySHA256.utf8.count == 64 {
                    if let first = keyHashes[credential.keySHA256] {
                        report(
                            origin, pointer + ["keySHA256"], .credentialHash, "the same key hash is already used by \(first)",
                            fix: "make a new key with `setu keygen` for each credential")
                    } else {
                        keyHashes[credential.keySHA256] = "consumer \(consumer.name)"
                    }
                }
                checkDay(credential.notBefore, origin, pointer + ["notBefore"])
                checkDay(credential.notAfter, origin, pointer + ["notAfter"])
                if let start = credential.notBefore, let end = credential.notAfter, start > end {
                    report(
                        origin, pointer + ["notAfter"], .credentialDates, "\(end) comes before notBefore \(start)",
                        fix: "make notAfter later than notBefore")
                }
            }
        }
    }

    /// A date the schema's pattern let through may still name no day, like 2027-02-30.
    mutating func checkDay(_ date: String?, _ origin: ManifestOrigin, _ tokens: [String]) {
        guard let date, let missing = ManifestDate.missingDay(date) else { return }
        report(origin, tokens, .dateCalendar, "\(date) is not a day: \(missing.problem)", fix: "use a day that exists, such as \(missing.lastDay)")
    }

    mutating func checkSubscriptions() {
        // A registration that failed its schema may hold a kind it does not say: its own error is the one to report.
        let invalidFiles = Set(diagnostics.lazy.filter { $0.severity == .error }.map(\.file))
        for id in marketplace.subscriptions.keys.sorted() {
            let subscription = marketplace.subscriptions[id]!
            let origin = subscription.origin
            checkDay(subscription.notAfter, origin, ["spec", "notAfter"])
            if marketplace.consumers[subscription.consumer] == nil {
                report(
                    origin, [], .refConsumer,
                    "subscription \(subscription.id) has no consumer: subscriptions/\(subscription.consumer)/consumer.yaml is missing or invalid",
                    fix: "add subscriptions/\(subscription.consumer)/consumer.yaml")
            }
            guard let api = marketplace.apis[subscription.api] else {
                let suggestion = closest(to: subscription.api, in: knownAPIs ?? Array(marketplace.apis.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                report(
                    origin, ["spec", "api"], .refApi, "names API '\(subscription.api)', which the catalog does not list\(suggestion)",
                    fix: "use an API id from `setu catalog`")
                continue
            }
            let category = marketplace.publishers[api.publisher]?.category
            if category == .listing {
                report(
                    origin, ["spec", "api"], .subscriptionListing,
                    "names \(api.id), a listing API: listing APIs are for information only and cannot be subscribed to",
                    fix: "remove this subscription")
                continue
            }
            if let consumer = marketplace.consumers[subscription.consumer], consumer.category == .authorizedPartner,
                let publisher = marketplace.publishers[api.publisher], publisher.category != .document,
                !invalidFiles.contains(consumer.origin.file), !invalidFiles.contains(publisher.origin.file)
            {
                let category = publisher.category
                report(
                    origin, ["spec", "api"], .subscriptionConsumerType,
                    "names \(api.id), a \(category.rawValue) API, but \(consumer.name) is an authorized partner: partners reach users' documents with their consent, so they subscribe to document APIs only",
                    fix: "subscribe from an offline consumer, or to a document API")
            }
            if !subscription.plan.isEmpty, !api.plans.contains(subscription.plan) {
                report(
                    origin, ["spec", "plan"], .refPlan, "'\(subscription.plan)' is not a plan \(api.id) offers",
                    fix: api.plans.isEmpty ? "the API offers no plans yet" : "use one of: \(api.plans.joined(separator: ", "))")
            }
            if category == .document, (subscription.purpose ?? "").isEmpty {
                report(
                    origin, ["spec"], .subscriptionPurpose,
                    "is missing 'purpose': \(api.id) serves users' documents, so the publisher needs to know why you want it",
                    fix: "add purpose: a sentence on why you need the API")
            }
            if let operations = subscription.operations {
                let known = Set(api.operations.compactMap(\.operationId))
                if api.openapiPath == nil {
                    report(
                        origin, ["spec", "operations"], .refOperation, "names operations, but \(api.id) has no OpenAPI document to name them from",
                        fix: "remove operations to subscribe to the whole API")
                } else {
                    for (index, operation) in operations.enumerated() where !known.contains(operation) {
                        let suggestion = closest(to: operation, in: Array(known)).map { " (did you mean '\($0)'?)" } ?? ""
                        report(
                            origin, ["spec", "operations", String(index)], .refOperation,
                            "'\(operation)' is not an operationId of \(api.id)\(suggestion)",
                            fix: "use operationIds from `setu catalog show \(api.id)`")
                    }
                }
            }
        }
    }

    mutating func checkAlertRules() {
        for name in marketplace.alertRules.keys.sorted() {
            let rule = marketplace.alertRules[name]!
            if let api = rule.api, marketplace.apis[api] == nil {
                report(rule.origin, ["spec", "selector", "api"], .refApi, "names API '\(api)', which the catalog does not list", severity: .warning)
            }
            if let publisher = rule.publisher, marketplace.publishers[publisher] == nil {
                report(
                    rule.origin, ["spec", "selector", "publisher"], .refPublisher, "names publisher '\(publisher)', which the catalog does not list",
                    severity: .warning)
            }
            if let consumer = rule.consumer, marketplace.consumers[consumer] == nil {
                report(rule.origin, ["spec", "selector", "consumer"], .refConsumer, "names consumer '\(consumer)', which does not exist", severity: .warning)
            }
        }
    }

}
