import GatehouseCore
import GatehouseSecLang
import GatehouseWAF
import Yams

extension PolicyTypes {
    /// `waf`: request inspection. `mode: detect` (an alias of `shadow`) logs what would be blocked
    /// and lets the call through; `mode: block` (an alias of `enforce`, the default) blocks.
    /// With a `crs:` block the policy runs the OWASP Core Rule Set instead of the built-in
    /// detectors; its rule files are loaded here, once, so a bad file is a configuration error.
    static let waf = PolicyType(name: "waf", keys: ["paranoia", "threshold", "exclusions", "limits", "crs"]) { id, node, f, r in
        if let n = f["crs"] {
            for key in ["exclusions", "limits"] where f[key] != nil {
                r.error(
                    n, "\(key) is a setting of the built-in detectors; with crs, exclude rules in a SecLang file listed under crs.include")
            }
            guard let loaded = crs(n, f, r) else { return nil }
            return { _ in loaded.check(id) }
        }
        var config = WAFConfiguration()
        if let n = f["paranoia"], let v = r.int(n, range: 1...4) { config.paranoia = v }
        if let n = f["threshold"], let v = r.int(n, range: 1...1000) { config.threshold = v }
        if let n = f["limits"], let lf = r.mapping(n, known: ["max_args", "max_arg_length", "max_body_inspect"]) {
            if let v = lf["max_args"].flatMap({ r.int($0, range: 1...100_000) }) { config.limits.maxArgs = v }
            if let v = lf["max_arg_length"].flatMap(r.size) { config.limits.maxArgLength = v }
            if let v = lf["max_body_inspect"].flatMap(r.size) { config.limits.maxBodyInspect = v }
        }
        if let n = f["exclusions"] {
            for item in r.list(n) {
                guard let ef = r.mapping(item, known: ["rule", "detector", "field", "routes"]) else { continue }
                let exclusion = WAFExclusion(
                    rule: ef["rule"].flatMap(r.string), detector: ef["detector"].flatMap(r.string),
                    field: ef["field"].flatMap(r.string), routes: ef["routes"].map(r.strings))
                for problem in WAFConfiguration(exclusions: [exclusion]).validate() { r.error(item, problem) }
                config.exclusions.append(exclusion)
            }
        }
        for problem in WAFConfiguration(paranoia: config.paranoia, threshold: config.threshold, limits: config.limits).validate() {
            r.error(node, problem)
        }
        let frozen = config
        return { _ in WAFCheck(id: id, configuration: frozen) }
    }

    /// Reads `crs: { paranoia, anomaly_threshold, setup, rules, include_before, include,
    /// second_opinion, second_opinion_score }` and loads
    /// the files. `paranoia` and `threshold` of the policy itself are the defaults of the block's.
    static func crs(_ n: ConfigNode, _ f: [String: ConfigNode], _ r: ConfigReader) -> CRSSettings.Loaded? {
        let issuesBefore = r.issues.count
        let keys = [
            "paranoia", "anomaly_threshold", "setup", "rules", "include_before", "include", "second_opinion", "second_opinion_score",
        ]
        var settings = CRSSettings()
        if let v = f["paranoia"].flatMap({ r.int($0, range: 1...4) }) { settings.paranoia = v }
        if let v = f["threshold"].flatMap({ r.int($0, range: 1...1000) }) { settings.anomalyThreshold = v }
        if case .scalar(let s) = n.node, ["true", "on", "yes", "default"].contains(s.string.lowercased()) {
            // `crs: true`: Debian's Core Rule Set with the defaults.
        } else {
            guard let cf = r.mapping(n, known: keys) else { return nil }
            if let v = cf["paranoia"].flatMap({ r.int($0, range: 1...4) }) { settings.paranoia = v }
            if let v = cf["anomaly_threshold"].flatMap({ r.int($0, range: 1...10_000) }) { settings.anomalyThreshold = v }
            if let v = cf["setup"].flatMap(r.string) { settings.setup = v == "none" ? nil : v }
            if let v = cf["rules"].map(r.strings) { settings.rules = v }
            if let v = cf["include_before"].map(r.strings) { settings.includeBefore = v }
            if let v = cf["include"].map(r.strings) { settings.include = v }
            if let v = cf["second_opinion"].flatMap(r.bool) { settings.secondOpinion = v }
            if let v = cf["second_opinion_score"].flatMap({ r.int($0, range: 0...10_000) }) { settings.secondOpinionScore = v }
        }
        if r.issues.count > issuesBefore { return nil }
        do {
            let loaded = try settings.load(baseDirectory: r.baseDirectory)
            for w in loaded.warnings { r.warning(n, w) }
            return loaded
        } catch {
            r.error(n, "the rule files do not load: \(error.description)")
            return nil
        }
    }
}
