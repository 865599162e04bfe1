import Foundation
import GatehouseConfig
import GatehouseCore
import Testing

/// The `crs:` block of a `waf` policy: rule files loaded when the configuration is read, a file
/// that does not load reported with its place, what the engine does not run as warnings.
@Suite struct CRSConfigTests {
    static let crsInstalled = FileManager.default.fileExists(atPath: "/usr/share/modsecurity-crs/rules")

    let dir: String = {
        let d = NSTemporaryDirectory() + "crs-config-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func yaml(_ crs: String) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: r, match: { path: /r }, upstream: app, policies: [waf] }
        policies:
          waf: { type: waf, crs: \(crs) }
        """
    }

    func read(_ crs: String) throws -> ConfigDocument {
        try ConfigLoader.read(yaml: yaml(crs), file: dir + "/gatehouse.yaml", baseDirectory: dir)
    }

    func problems(_ crs: String) -> [String] {
        do {
            _ = try read(crs)
            return []
        } catch let e as ConfigError {
            return e.issues.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }

    @Test(.enabled(if: crsInstalled)) func debianCRSLoadsWithItsGapsAsWarnings() throws {
        let doc = try read("{ paranoia: 1, anomaly_threshold: 5 }")
        #expect(doc.warnings.count == 1)
        #expect(doc.warnings.first?.message.contains("not run by this engine") == true)
        #expect(doc.warnings.first?.path == "policies.waf.crs")
        let config = doc.provision(BuildContext(directory: NoDirectory(), baseDirectory: dir))
        let check = config.router.routes.first?.chain.links.first?.check
        #expect(check.map { String(describing: type(of: $0)) } == "CRSCheck")
    }

    @Test(.enabled(if: crsInstalled)) func anOperatorsUnsupportedDirectiveIsAWarningWithItsPlace() throws {
        try write("mine.conf", "SecRuleRemoveById 942100\nSecAuditEngine On\n")
        let doc = try read("{ include: [mine.conf] }")
        #expect(doc.warnings.contains { $0.message.contains("mine.conf:2") && $0.message.contains("SecAuditEngine") })
    }

    @Test func aRuleFileThatDoesNotLoadIsAnErrorWithFileAndLine() throws {
        try write("bad.conf", "# comment\nSecRule ARGS \"@rx (\" \"id:1,phase:2,deny\"\n")
        let regex = problems("{ setup: none, rules: [bad.conf] }")
        #expect(regex.count == 1)
        #expect(regex.first?.contains("bad.conf:2") == true)
        #expect(regex.first?.contains("policies.waf.crs") == true)

        try write("syntax.conf", "SecAction\n")
        #expect(problems("{ setup: none, rules: [syntax.conf] }").first?.contains("syntax.conf:1") == true)

        #expect(problems("{ setup: none, rules: [missing.conf] }").first?.contains("missing.conf") == true)
        #expect(problems("{ setup: none, rules: [\"nothing-here/*.conf\"] }").first?.contains("names no file") == true)
    }

    @Test(.enabled(if: crsInstalled)) func crsTrueIsDebiansRuleSet() throws {
        let doc = try read("true")
        #expect(doc.warnings.count == 1)
    }

    @Test func keysAreChecked() {
        let both =
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - { name: r, match: { path: /r }, upstream: app, policies: [waf] }\npolicies:\n  waf: { type: waf, exclusions: [{ rule: \"942100\" }], crs: { setup: none, rules: [] } }\n"
        let issues: [String]
        do {
            _ = try ConfigLoader.read(yaml: both, file: "t.yaml", baseDirectory: dir)
            issues = []
        } catch let e as ConfigError {
            issues = e.issues.map(\.description)
        } catch {
            issues = ["\(error)"]
        }
        #expect(issues.first?.contains("exclusions is a setting of the built-in detectors") == true, "\(issues)")
        #expect(problems("{ paranoia: 5, setup: none, rules: [] }").first?.contains("out of range") == true)
        #expect(problems("{ rule: [x.conf] }").first?.contains("did you mean \"rules\"") == true)
    }
}
