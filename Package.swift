// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "setu",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "setu", targets: ["setu"]),
        .library(name: "SetuManifest", targets: ["SetuManifest"]),
        .library(name: "SetuGit", targets: ["SetuGit"]),
        .library(name: "SetuTrust", targets: ["SetuTrust"]),
        .library(name: "SetuGateway", targets: ["SetuGateway"]),
        .library(name: "SetuServer", targets: ["SetuServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CLibYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Work spread over cores, values decoded once, work started on another thread.
        .target(name: "SetuConcurrency"),
        // The binary record form of state kept between runs, and state files replaced durably.
        .target(name: "SetuStorage"),
        // Text formats written on hot paths: JSON strings, RFC 3339 and HTTP dates.
        .target(name: "SetuFormats"),
        .target(
            name: "SetuGit",
            dependencies: ["CLibGit2"]
        ),
        .target(
            name: "SetuManifest",
            dependencies: [
                "CLibYAML",
                "SetuConcurrency",
                "SetuStorage",
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [
                .embedInCode("Schemas/common.schema.json"),
                .embedInCode("Schemas/publisher.schema.json"),
                .embedInCode("Schemas/api.schema.json"),
                .embedInCode("Schemas/consumer.schema.json"),
                .embedInCode("Schemas/subscription.schema.json"),
                .embedInCode("Schemas/platform.schema.json"),
                .embedInCode("Schemas/plan.schema.json"),
                .embedInCode("Schemas/consent-provider.schema.json"),
                .embedInCode("Schemas/alert-rule.schema.json"),
            ]
        ),
        // A marketplace's files as validation reads them: from a commit, or from the work tree.
        .target(
            name: "SetuSources",
            dependencies: ["SetuGit", "SetuManifest"]
        ),
        .target(
            name: "SetuEntitlements",
            dependencies: ["SetuManifest", "SetuConcurrency"]
        ),
        // The state kept between runs: the replay and the entitlements, in a state directory.
        .target(
            name: "SetuState",
            dependencies: [
                "SetuConcurrency",
                "SetuEntitlements",
                "SetuManifest",
                "SetuStorage",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SetuTrust",
            dependencies: [
                "SetuConcurrency",
                "SetuEntitlements",
                "SetuGit",
                "SetuManifest",
                "SetuSources",
                "SetuState",
                "SetuStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SetuHits",
            dependencies: [
                "SetuFormats",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SetuUsage",
            dependencies: [
                "SetuConcurrency",
                "SetuFormats",
                "SetuHits",
                "SetuStorage",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The admin listener's dashboard and the marketplace portal: HTML from Mustache templates.
        .target(
            name: "SetuPortal",
            dependencies: [
                "SetuFormats",
                "SetuHits",
                "SetuManifest",
                "SetuUsage",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            resources: [
                .embedInCode("Templates/page.mustache"),
                .embedInCode("Templates/login.mustache"),
                .embedInCode("Templates/chart.mustache"),
                .embedInCode("Templates/dashboard.mustache"),
                .embedInCode("Templates/portal-header.mustache"),
                .embedInCode("Templates/catalog.mustache"),
                .embedInCode("Templates/publisher.mustache"),
                .embedInCode("Templates/api.mustache"),
                .embedInCode("Templates/missing.mustache"),
            ]
        ),
        .target(
            name: "SetuGateway",
            dependencies: [
                "SetuEntitlements",
                "SetuFormats",
                "SetuHits",
                "SetuManifest",
                "SetuStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SetuServer",
            dependencies: [
                "SetuEntitlements",
                "SetuFormats",
                "SetuGateway",
                "SetuGit",
                "SetuHits",
                "SetuManifest",
                "SetuStorage",
                "SetuPortal",
                "SetuTrust",
                "SetuUsage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "setu",
            dependencies: [
                "SetuConcurrency",
                "SetuEntitlements",
                "SetuGateway",
                "SetuGit",
                "SetuHits",
                "SetuManifest",
                "SetuPortal",
                "SetuServer",
                "SetuSources",
                "SetuTrust",
                "SetuUsage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: [
                // jemalloc in place of glibc's malloc: replay and the gateway allocate from
                // several threads at once, where glibc's arenas cost a fifth of the run.
                .linkedLibrary("jemalloc", .when(platforms: [.linux]))
            ]
        ),
        .target(
            name: "SetuTestSupport",
            dependencies: ["SetuHits"],
            path: "Tests/SetuTestSupport"
        ),
        .testTarget(
            name: "SetuEntitlementsTests",
            dependencies: ["SetuEntitlements", "SetuManifest", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuUsageTests",
            dependencies: ["SetuUsage", "SetuHits", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuHitsTests",
            dependencies: ["SetuHits", "SetuFormats", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuGatewayTests",
            dependencies: [
                "SetuGateway", "SetuEntitlements", "SetuFormats", "SetuManifest", "SetuTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SetuGitTests",
            dependencies: ["SetuGit", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuManifestTests",
            dependencies: ["SetuGit", "SetuManifest", "SetuSources", "SetuStorage", "SetuTestSupport", "SetuTrust"]
        ),
        .testTarget(
            name: "SetuTrustTests",
            dependencies: ["SetuTrust", "SetuEntitlements", "SetuGit", "SetuManifest", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuServerTests",
            dependencies: [
                "SetuServer", "SetuGateway", "SetuHits", "SetuEntitlements", "SetuFormats", "SetuManifest", "SetuState",
                "SetuTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SetuCLITests",
            dependencies: ["SetuManifest", "SetuSources", "SetuTestSupport"]
        ),
    ]
)
