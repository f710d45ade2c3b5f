import Mustache

/// The HTML pages of the admin listener and the portal, rendered from Mustache templates
/// (swift-mustache) embedded in the binary. Values are HTML-escaped unless a template says
/// otherwise; every page extends `page.mustache`, which holds the styles: no script, font
/// or stylesheet is fetched from anywhere.
public enum Pages {
    /// Every template by name, parsed once.
    static let library: MustacheLibrary = {
        let sources: [String: [UInt8]] = [
            "page": PackageResources.page_mustache,
            "login": PackageResources.login_mustache,
            "chart": PackageResources.chart_mustache,
            "dashboard": PackageResources.dashboard_mustache,
            "portal-header": PackageResources.portal_header_mustache,
            "catalog": PackageResources.catalog_mustache,
            "publisher": PackageResources.publisher_mustache,
            "api": PackageResources.api_mustache,
            "missing": PackageResources.missing_mustache,
        ]
        var library = MustacheLibrary()
        for (name, bytes) in sources {
            // The templates are part of the build; one that does not parse is a bug found by any test.
            try! library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        return library
    }()

    /// Renders the template `name` with `object`.
    static func render(_ name: String, _ object: Any) -> String {
        library.render(object, withTemplate: name) ?? ""
    }

    /// A number as the pages show it: up to three decimals, none when it is whole.
    static func number(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// A template's values without the absent ones: Mustache would show an absent optional as
    /// `nil`, where a missing key leaves its section out.
    static func present(_ values: [String: Any?]) -> [String: Any] {
        values.compactMapValues { $0 }
    }

    /// The admin listener's sign-in form; `next` is where it goes once signed in.
    public static func login(next: String, error: String?) -> String {
        render("login", present(["next": next, "error": error]))
    }
}
