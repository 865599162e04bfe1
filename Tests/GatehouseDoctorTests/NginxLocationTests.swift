import Foundation
import GatehouseDoctor
import Testing

@Suite("nginx location precedence")
struct NginxLocationTests {
    /// Each location answers in a way that names it: `return 403` in some, auth_basic in one.
    static let config = """
        events {}
        http {
            server {
                listen 127.0.0.1:8080;
                server_name other.example;
                return 403;
            }
            server {
                listen 127.0.0.1:8080 default_server;
                root /nonexistent-root;
                location = /exact { return 403; }
                location /static/ { return 410; }
                location ^~ /static/images/ { return 411; }
                location ~* \\.(png|jpg)$ { return 412; }
                location /admin/ {
                    auth_basic "Admins";
                    auth_basic_user_file /nonexistent-htpasswd;
                    location /admin/public/ { auth_basic off; return 413; }
                }
            }
        }
        """

    func analyzer() throws -> (NginxAnalyzer, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ngx-loc-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.config.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        return (NginxAnalyzer(configFile: dir + "/nginx.conf", worker: WorkerIdentity(name: "nobody", uid: 65534, gids: [65534])), dir)
    }

    @Test(
        "exact, ^~ prefix, regex and longest prefix pick the location nginx picks",
        arguments: [
            ("/exact", 403), ("/static/app.js", 410), ("/static/images/a.png", 411), ("/static/b.png", 412), ("/x/c.JPG", 412),
        ])
    func precedence(_ path: String, _ status: Int) throws {
        let (a, dir) = try analyzer()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try a.analyze(path: path).status == status)
    }

    @Test("auth_basic answers 401 with missing_credentials; a nested location can turn it off")
    func authBasic() throws {
        let (a, dir) = try analyzer()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = try a.analyze(path: "/admin/panel")
        #expect(v.status == 401 && v.cause == .missingCredentials && v.directive == "auth_basic Admins;")
        #expect(try a.analyze(path: "/admin/public/x").status == 413)
    }

    @Test("--host picks the server by server_name; `return 403` there is a config deny")
    func host() throws {
        var (a, dir) = try analyzer()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        a.host = "other.example"
        let v = try a.analyze(path: "/anything")
        #expect(v.status == 403 && v.cause == .configDeny && v.directive == "return 403;")
    }
}
