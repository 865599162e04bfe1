import GatehouseTestSupport
import Foundation
import GatehouseProxy
import Testing
import GatehouseServer
import GatehouseTesting

/// Whether Tests/browser/browser_test.py can run here: python3 with selenium, chromium, chromedriver.
enum BrowserPrerequisites {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = repoRoot + "/Tests/browser/browser_test.py"

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static var missing: [String] {
        var m: [String] = []
        if which("python3") == nil { m.append("python3") }
        if which("chromium") == nil && which("chromium-browser") == nil { m.append("chromium") }
        if which("chromedriver") == nil { m.append("chromedriver (chromium-driver)") }
        if let py = which("python3") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = ["-c", "import selenium"]
            p.standardError = FileHandle.nullDevice
            if (try? p.run()) == nil {
                m.append("selenium")
            } else {
                p.waitUntilExit()
                if p.terminationStatus != 0 { m.append("selenium (pip)") }
            }
        }
        return m
    }

    /// Runs the browser part in CI always (a missing prerequisite fails there), elsewhere only when present.
    static var shouldRun: Bool { inCI || missing.isEmpty }
}

@Suite(.serialized) struct BrowserTests {
    @Test(
        .enabled(
            if: BrowserPrerequisites.shouldRun,
            "needs python3 + selenium, chromium and chromium-driver (.ci/apt-packages, .ci/requirements.txt)"))
    func corsAndCSRFInHeadlessChromium() async throws {
        let missing = BrowserPrerequisites.missing
        try #require(missing.isEmpty, "browser test prerequisites missing: \(missing.joined(separator: ", "))")

        let upstream = try await startUpstream()
        // Page origins: the allowed one on 127.0.0.1, the disallowed (another site) on 127.0.0.2.
        let allowed = "127.0.0.1:\(try closedPort())"
        let denied = "127.0.0.2:\(try closedPort())"
        let site = "127.0.0.1:\(try closedPort())"
        let yaml = """
            upstreams:
              app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
              pages: { targets: ["http://\(site)"] }
            routes:
              - name: pages
                match: { methods: [GET], path: "/app/*" }
                upstream: pages
              - name: api
                match: { methods: [GET], path: /api/hello }
                upstream: app
                policies: [browser-cors]
              - name: form
                match: { methods: [POST], path: /form }
                upstream: app
                policies: [csrf]
            policies:
              browser-cors: { type: cors, origins: ["http://\(allowed)"], methods: [GET], headers: [X-Client], credentials: true }
              csrf: { type: csrf }
            """
        let gateway = try await LocalGateway(yaml: yaml)
        defer { gateway.stop() }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: BrowserPrerequisites.which("python3")!)
        p.arguments = [BrowserPrerequisites.script, "--gateway", gateway.url, "--allowed", allowed, "--denied", denied, "--site", site]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        await upstream.stop()
        try #require(p.terminationStatus == 0, "browser_test.py exited \(p.terminationStatus): \(e)")
        let seen = try #require(
            try JSONSerialization.jsonObject(with: o) as? [String: Any],
            "no JSON from browser_test.py: \(String(decoding: o, as: UTF8.self))")

        // The allowed origin's page read the response; the disallowed one's fetch failed in the browser.
        let ok = seen["allowed"] as? String ?? ""
        #expect(ok.hasPrefix("OK 200"), "allowed origin saw: \(ok)")
        #expect(ok.contains("/api/hello"))
        let blocked = seen["denied"] as? String ?? ""
        #expect(blocked.hasPrefix("BLOCKED TypeError"), "disallowed origin saw: \(blocked)")

        // The gateway's log shows why: the preflight from the disallowed origin was refused.
        let logs = try gateway.cli(["logs", "--json", "--reason", "cors_origin_not_allowed"]).stdout
        #expect(logs.contains("\"OPTIONS\""), "no refused preflight in the log: \(logs)")
        let allowedPreflight = try gateway.cli(["logs", "--json", "--status", "204"]).stdout
        #expect(allowedPreflight.contains("\"OPTIONS\""))

        // A cross-site form POST is refused by the CSRF check; a same-origin one passes.
        let cross = seen["cross_site"] as? [String: Any] ?? [:]
        #expect((cross["body"] as? String ?? "").contains("csrf_origin_mismatch"), "cross-site form saw: \(cross)")
        let csrfLog = try gateway.cli(["logs", "--json", "--reason", "csrf_origin_mismatch"]).stdout
        let csrfRecords = csrfLog.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(
            csrfRecords.contains { $0["method"] as? String == "POST" && ($0["presented"] as? [String]) == ["Origin: http://\(denied)"] },
            "the refusal names the foreign origin: \(csrfLog)")
        let same = seen["same_origin"] as? [String: Any] ?? [:]
        let sameBody = same["body"] as? String ?? ""
        #expect(sameBody.contains("\"uri\"") && sameBody.contains("/form") && sameBody.contains("POST"), "same-origin form saw: \(same)")
    }
}
