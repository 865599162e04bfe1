import GatehouseCore
import GatehouseWAF

extension PolicyTypes {
    /// `waf`: request inspection. `mode: detect` (an alias of `shadow`) logs what would be blocked
    /// and lets the call through; `mode: block` (an alias of `enforce`, the default) blocks.
    static let waf = PolicyType(name: "waf", keys: ["paranoia", "threshold", "exclusions", "limits"]) { id, node, f, r in
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
}
