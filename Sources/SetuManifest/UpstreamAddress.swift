/// What kind of address an upstream host is, for the platform's upstream policy.
///
/// Names are judged by their spelling only: Setu does not resolve DNS while
/// validating, so a public name that resolves to a private address is the
/// gateway's concern when it connects.
enum UpstreamAddress: Equatable {
    case `public`
    case loopback
    case privateRange
    case linkLocal
    case metadata
    case unspecified

    var phrase: String {
        switch self {
        case .public: return "a public address"
        case .loopback: return "a loopback address"
        case .privateRange: return "a private-range address"
        case .linkLocal: return "a link-local address"
        case .metadata: return "a cloud metadata address"
        case .unspecified: return "the unspecified address"
        }
    }

    static func classify(_ rawHost: String) -> UpstreamAddress {
        var host = rawHost.lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        switch host {
        case "localhost", "ip6-localhost", "ip6-loopback": return .loopback
        case "metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal": return .metadata
        default: break
        }
        if host.hasSuffix(".localhost") { return .loopback }
        if let octets = ipv4(host) { return classify(ipv4: octets) }
        if host.contains(":") { return classify(ipv6: host) }
        return .public
    }

    private static func ipv4(_ host: String) -> [Int]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let octets = parts.compactMap { Int($0) }
        guard octets.count == 4, octets.allSatisfy({ (0...255).contains($0) }) else { return nil }
        return octets
    }

    private static func classify(ipv4 octets: [Int]) -> UpstreamAddress {
        switch (octets[0], octets[1]) {
        case (169, 254) where octets[2] == 169 && octets[3] == 254: return .metadata
        case (169, 254): return .linkLocal
        case (127, _): return .loopback
        case (0, _): return .unspecified
        case (10, _), (192, 168), (100, 64...127): return .privateRange
        case (172, 16...31): return .privateRange
        default: return .public
        }
    }

    private static func classify(ipv6 host: String) -> UpstreamAddress {
        if host == "::1" { return .loopback }
        if host == "::" { return .unspecified }
        if host.hasPrefix("::ffff:"), let octets = ipv4(String(host.dropFirst(7))) { return classify(ipv4: octets) }
        if host == "fd00:ec2::254" { return .metadata }
        if host.hasPrefix("fe8") || host.hasPrefix("fe9") || host.hasPrefix("fea") || host.hasPrefix("feb") { return .linkLocal }
        if host.hasPrefix("fc") || host.hasPrefix("fd") { return .privateRange }
        return .public
    }
}
