import Foundation
import GatehouseDoctor
import Testing

/// Builds misconfigured sites in a temp dir, starts real nginx and Apache httpd on 127.0.0.1 with
/// configs of their own, confirms each site answers 403, then checks the doctor names the cause
/// and the directive or file.
@Suite("nginx and Apache analyzers against the real servers", .serialized)
struct ServerAnalyzerIntegrationTests {
    /// The file tree both servers serve; every broken site is a directory or file in it.
    struct Site {
        let root: URL
        var www: String { root.appendingPathComponent("www").path }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-doctor-\(UUID().uuidString.prefix(8))")
            let fm = FileManager.default
            func dir(_ p: String, _ mode: Int = 0o755) throws {
                try fm.createDirectory(atPath: root.path + "/" + p, withIntermediateDirectories: true)
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: root.path + "/" + p)
            }
            func file(_ p: String, _ text: String = "hello\n", _ mode: Int = 0o644) throws {
                try Data(text.utf8).write(to: URL(fileURLWithPath: root.path + "/" + p))
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: root.path + "/" + p)
            }
            try dir("")
            try dir("www")
            for d in ["www/deny", "www/office", "www/htdeny", "www/legacy", "www/noindex", "www/conf.d", "www/sites"] { try dir(d) }
            try dir("www/noexec", 0o700)  // no execute bit for www-data
            try file("www/index.html")
            for d in ["deny", "office", "htdeny", "legacy"] { try file("www/\(d)/index.html") }
            try file("www/noindex/file.txt")  // a directory without index file
            try file("www/noexec/secret.html")
            try file("www/unreadable.html", "secret\n", 0o600)  // root-owned, unreadable by www-data
            try fm.createSymbolicLink(atPath: www + "/broken.html", withDestinationPath: www + "/missing.html")
            try file("www/htdeny/.htaccess", "Require all denied\n")
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static let sites403 = ["/deny/", "/office/", "/noindex/", "/noexec/secret.html", "/unreadable.html", "/broken.html"]

    func preconditions() -> Bool {
        guard getuid() == 0 else {
            if inCI {
                Issue.record("these tests run the servers' workers as www-data and must run as root in CI")
            } else {
                print("skipping: run as root so the servers can drop to www-data")
            }
            return false
        }
        return true
    }

    func waitForPort(_ port: Int, _ server: ChildProcess, log: String) throws {
        for _ in 0..<100 {
            if httpStatus(port: port, path: "/") != nil { return }
            guard server.isRunning else { break }
            usleep(50_000)
        }
        let errors = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw ServerAnalysisError(description: "server did not start on port \(port): \(server.stderr) \(errors)")
    }

    @Test("nginx: deny rule, missing index, no execute bit, unreadable file, broken symlink, IP allow list")
    func nginx() throws {
        guard let nginx = requireBinary("nginx"), preconditions() else { return }
        let site = try Site()
        defer { site.remove() }
        let root = site.root.path, port = freePort()
        // The server block lives in an included file, as on a packaged install.
        try """
        user www-data;
        worker_processes 1;
        pid \(root)/nginx.pid;
        error_log \(root)/error.log;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(root)/tmp_body;
            proxy_temp_path \(root)/tmp_proxy;
            fastcgi_temp_path \(root)/tmp_fastcgi;
            uwsgi_temp_path \(root)/tmp_uwsgi;
            scgi_temp_path \(root)/tmp_scgi;
            include www/sites/*.conf;
        }
        """.write(toFile: root + "/nginx.conf", atomically: true, encoding: .utf8)
        try """
        server {
            listen 127.0.0.1:\(port);
            root \(site.www);
            location /deny/ {
                deny all;
            }
            location /office/ {
                allow 10.0.0.0/8;
                allow 192.168.0.0/16;
                deny all;
            }
            location = /broken.html {
                disable_symlinks on;
            }
        }
        """.write(toFile: site.www + "/sites/site.conf", atomically: true, encoding: .utf8)
        let server = try ChildProcess(nginx, ["-p", root + "/", "-c", root + "/nginx.conf", "-g", "daemon off;"])
        defer { server.stop() }
        try waitForPort(port, server, log: root + "/error.log")

        #expect(httpStatus(port: port, path: "/") == 200)
        for path in Self.sites403 { #expect(httpStatus(port: port, path: path) == 403, "nginx should answer 403 for \(path)") }

        let analyzer = NginxAnalyzer(configFile: root + "/nginx.conf", worker: try WorkerIdentity.lookup("www-data"))
        let siteConf = site.www + "/sites/site.conf"
        var v = try analyzer.analyze(path: "/deny/")
        #expect(v.status == 403 && v.cause == .configDeny)
        #expect(v.directive == "deny all;" && v.location == siteConf + ":5")

        v = try analyzer.analyze(path: "/office/")
        #expect(v.cause == .ipNotAllowed)
        #expect(v.directive == "deny all;" && v.location == siteConf + ":10")
        #expect(v.explanation.contains("not in the allow list (10.0.0.0/8, 192.168.0.0/16)"))

        v = try analyzer.analyze(path: "/noindex/")
        #expect(v.cause == .directoryListing)
        #expect(v.explanation.contains("autoindex is off"))

        v = try analyzer.analyze(path: "/noexec/secret.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/noexec")
        #expect(v.fix.first == "`chmod o+x \(site.www)/noexec` (lets www-data traverse it)")

        v = try analyzer.analyze(path: "/unreadable.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/unreadable.html")
        #expect(v.fix.first == "`chmod o+r \(site.www)/unreadable.html` (lets www-data read it)")

        v = try analyzer.analyze(path: "/broken.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/broken.html")
        #expect(v.explanation.contains("broken symbolic link"))

        v = try analyzer.analyze(path: "/")
        #expect(v.status == 200 && v.cause == nil)
    }

    @Test(
        "Apache: Require all denied, .htaccess deny, missing index, no execute bit, unreadable file, broken symlink, IP allow list, Deny from all"
    )
    func apache() throws {
        guard let apache = requireBinary("apache2"), preconditions() else { return }
        let site = try Site()
        defer { site.remove() }
        let root = site.root.path, port = freePort(), modules = "/usr/lib/apache2/modules"
        try """
        ServerRoot \(root)
        ServerName 127.0.0.1
        Listen 127.0.0.1:\(port)
        PidFile \(root)/httpd.pid
        ErrorLog \(root)/error.log
        DefaultRuntimeDir \(root)
        Mutex file:\(root) default
        LoadModule mpm_event_module \(modules)/mod_mpm_event.so
        LoadModule authz_core_module \(modules)/mod_authz_core.so
        LoadModule authz_host_module \(modules)/mod_authz_host.so
        LoadModule access_compat_module \(modules)/mod_access_compat.so
        LoadModule dir_module \(modules)/mod_dir.so
        LoadModule autoindex_module \(modules)/mod_autoindex.so
        User www-data
        Group www-data
        DocumentRoot \(site.www)
        DirectoryIndex index.html
        <Directory />
            Options None
            AllowOverride None
            Require all denied
        </Directory>
        <Directory \(site.www)>
            Options SymLinksIfOwnerMatch
            AllowOverride AuthConfig Limit
            Require all granted
        </Directory>
        IncludeOptional www/conf.d/*.conf
        """.write(toFile: root + "/httpd.conf", atomically: true, encoding: .utf8)
        try """
        <Directory \(site.www)/deny>
            Require all denied
        </Directory>
        <Directory \(site.www)/office>
            Require ip 10.0.0.0/8 192.168.1
        </Directory>
        <Directory \(site.www)/legacy>
            Order deny,allow
            Deny from all
        </Directory>
        """.write(toFile: site.www + "/conf.d/sites.conf", atomically: true, encoding: .utf8)
        let server = try ChildProcess(apache, ["-f", root + "/httpd.conf", "-DFOREGROUND"])
        defer { server.stop() }
        try waitForPort(port, server, log: root + "/error.log")

        #expect(httpStatus(port: port, path: "/") == 200)
        for path in Self.sites403 + ["/htdeny/", "/legacy/"] {
            #expect(httpStatus(port: port, path: path) == 403, "Apache should answer 403 for \(path)")
        }

        let analyzer = ApacheAnalyzer(configFile: root + "/httpd.conf", worker: try WorkerIdentity.lookup("www-data"))
        let sitesConf = site.www + "/conf.d/sites.conf"
        var v = try analyzer.analyze(path: "/deny/")
        #expect(v.cause == .configDeny && v.directive == "Require all denied" && v.location == sitesConf + ":2")

        v = try analyzer.analyze(path: "/htdeny/")
        #expect(v.cause == .configDeny && v.location == site.www + "/htdeny/.htaccess:1")

        v = try analyzer.analyze(path: "/office/")
        #expect(v.cause == .ipNotAllowed && v.directive == "Require ip 10.0.0.0/8 192.168.1" && v.location == sitesConf + ":5")
        #expect(
            try {
                var a = analyzer; a.clientAddress = "192.168.1.20"; return try a.analyze(path: "/office/").status
            }() == 200)

        v = try analyzer.analyze(path: "/legacy/")
        #expect(v.cause == .configDeny && v.directive == "Deny from all" && v.location == sitesConf + ":9")

        v = try analyzer.analyze(path: "/noindex/")
        #expect(v.cause == .directoryListing)
        #expect(v.explanation.contains("Options lacks Indexes"))

        v = try analyzer.analyze(path: "/noexec/secret.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/noexec")

        v = try analyzer.analyze(path: "/unreadable.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/unreadable.html")

        v = try analyzer.analyze(path: "/broken.html")
        #expect(v.cause == .filesystemPermission && v.location == site.www + "/broken.html")

        v = try analyzer.analyze(path: "/")
        #expect(v.status == 200 && v.cause == nil)

        // The permission walk uses www-data's own uid and groups, not the test runner's (root).
        let www = try WorkerIdentity.lookup("www-data")
        #expect(www.uid != 0 && !www.gids.contains(0))
    }

    @Test("a config error names the file and line")
    func parseErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gh-parse-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "http {\n  server {\n    listen 80\n  }\n}\n".write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        #expect {
            _ = try NginxConfigParser.parse(file: dir + "/nginx.conf")
        } throws: {
            ($0 as? ServerAnalysisError)?.description.contains("nginx.conf:3: directive 'listen' is not terminated") == true
                || ($0 as? ServerAnalysisError)?.description.contains("nginx.conf:3") == true
        }
        try "<Directory /x>\nRequire all denied\n".write(toFile: dir + "/httpd.conf", atomically: true, encoding: .utf8)
        #expect {
            _ = try ApacheConfigParser.parse(file: dir + "/httpd.conf")
        } throws: { ($0 as? ServerAnalysisError)?.description.contains("section <Directory> opened at line 1 is never closed") == true }
    }
}
