import GatehouseConfig
import GatehouseCore
import Testing

/// The router on canonical paths (`CanonicalTarget`): literals compare decoded and ignore
/// `;parameters`, parameters are decoded once, a trailing dot in the host is ignored.
@Suite struct RouterCanonicalPathTests {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:9"] }
        routes:
          - name: open
            match: { path: "/{rest*}" }
            upstream: app
          - name: admin
            match: { path: "/admin/{rest*}" }
            upstream: app
          - name: export
            match: { path: "/reports:export/{id}" }
            upstream: app
          - name: host-admin
            match: { host: admin.example.com, path: "/cap/{rest*}" }
            upstream: app
        """

    func route(_ path: String, host: String = "h") throws -> (String, [String: String]) {
        let c = try load(Self.yaml)
        let canonical = try CanonicalTarget.parse(path).get()
        switch c.router.route(host: host, method: "GET", path: Substring(canonical.path)) {
        case .matched(let r, let params): return (r.name, params)
        case .methodNotAllowed: return ("405", [:])
        case .notFound: return ("404", [:])
        }
    }

    @Test func whatBackEndsResolveToAProtectedRouteMeetsIt() throws {
        #expect(try route("/admin/users").0 == "admin")
        #expect(try route("/public/../admin/users").0 == "admin")
        #expect(try route("/%61dmin/users").0 == "admin")
        #expect(try route("/admin;jsessionid=1/users").0 == "admin")
        #expect(try route("/reports%3Aexport/7").0 == "export")
        #expect(try route("/reports%3aexport;v=2/7").0 == "export")
        #expect(try route("/adminx/users").0 == "open")
        #expect(try route("/x/admin/users").0 == "open")
    }

    @Test func parametersAreDecodedOnce() throws {
        #expect(try route("/reports:export/a%20b").1["id"] == "a b")
        #expect(try route("/reports:export/caf%C3%A9").1["id"] == "café")
        #expect(try route("/admin/a%3Bb/c%20d").1 == ["rest": "a;b/c d"])
        #expect(try route("/x/a%3Bb/c%20d").1["rest"] == "x/a;b/c d")
    }

    @Test func aTrailingDotInTheHostIsTheSameHost() throws {
        #expect(try route("/cap/x", host: "admin.example.com").0 == "host-admin")
        #expect(try route("/cap/x", host: "admin.example.com.").0 == "host-admin")
        #expect(try route("/cap/x", host: "other.example.com.").0 == "open")
    }
}
