import GatehouseChecks
import GatehouseCore
import Yams

extension PolicyTypes {
    /// `cors`: `origins` (exact, `https://*.example.com`, or `*`), `methods`, `headers`,
    /// `credentials`, `max_age`, `expose_headers`.
    static let cors = PolicyType(
        name: "cors", keys: ["origins", "methods", "headers", "credentials", "max_age", "expose_headers"],
        required: ["origins"]
    ) { id, node, f, r in
        var origins: [OriginPattern] = []
        if let on = f["origins"] {
            let items: [ConfigNode]
            if case .sequence = (on.node) { items = r.list(on) } else { items = [on] }
            for item in items {
                guard let s = r.string(item) else { continue }
                switch OriginPattern.parse(s) {
                case .success(let o): origins.append(o)
                case .failure(let e): r.error(item, e.description)
                }
            }
        }
        let methods = f["methods"].map(r.strings)?.map { $0.uppercased() } ?? ["GET", "HEAD", "POST"]
        let headers = f["headers"].map(r.strings) ?? []
        let credentials = f["credentials"].flatMap(r.bool) ?? false
        if credentials, origins.contains(.any), let on = f["origins"] {
            r.error(on, "origin \"*\" cannot be combined with credentials: true (browsers refuse it); list the allowed origins instead")
        }
        if credentials, headers.contains("*"), let hn = f["headers"] {
            r.error(
                hn,
                "headers \"*\" cannot be combined with credentials: true (browsers treat it as a literal name); list the headers instead")
        }
        let maxAge = f["max_age"].flatMap(r.duration).map { Int($0.rounded()) }
        let expose = f["expose_headers"].map(r.strings) ?? []
        let check = CORSCheck(
            id: id, origins: origins, methods: methods, headers: headers, credentials: credentials, maxAge: maxAge,
            exposeHeaders: expose)
        return { _ in check }
    }
}
