// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "setu",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "setu", targets: ["setu"]),
        .library(name: "SetuManifest", targets: ["SetuManifest"]),
        .library(name: "SetuGit", targets: ["SetuGit"]),
        .library(name: "SetuTrust", targets: ["SetuTrust"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .target(
            name: "SetuGit",
            dependencies: ["CLibGit2"]
        ),
        .target(
            name: "SetuManifest",
            dependencies: [
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
        .target(
            name: "SetuEntitlements",
            dependencies: ["SetuManifest"]
        ),
        .target(
            name: "SetuTrust",
            dependencies: [
                "SetuGit",
                "SetuManifest",
                "SetuEntitlements",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "setu",
            dependencies: [
                "SetuGit",
                "SetuManifest",
                "SetuTrust",
                "SetuEntitlements",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SetuTestSupport",
            path: "Tests/SetuTestSupport"
        ),
        .testTarget(
            name: "SetuGitTests",
            dependencies: ["SetuGit", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuManifestTests",
            dependencies: ["SetuManifest", "SetuTrust", "SetuGit", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuTrustTests",
            dependencies: ["SetuTrust", "SetuEntitlements", "SetuGit", "SetuManifest", "SetuTestSupport"]
        ),
        .testTarget(
            name: "SetuCLITests",
            dependencies: ["SetuManifest", "SetuTestSupport"]
        ),
    ]
)
