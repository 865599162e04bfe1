// Known scanners by the user-agents and headers their documentation says they send. A name list is
// the only way to recognise a tool by its self-description; it is not used for attack detection.

/// Known security scanners, by the user-agent and headers their documentation says they send.
enum ScannerDetector {
    static let agents: [String] = [
        "sqlmap", "nikto", "nmap scripting engine", "nmap nse", "masscan", "zgrab", "nuclei", "acunetix", "netsparker",
        "invicti", "w3af", "arachni", "skipfish", "wpscan", "dirbuster", "gobuster", "dirb/", "wfuzz", "ffuf", "feroxbuster",
        "havij", "commix", "fuzz faster u fool", "xsser", "fimap", "paros", "zmeu", "jorgee", "openvas", "nessus", "appscan", "webinspect",
        "owasp zap", "zaproxy", "burpcollaborator", "morfeus", "grabber", "brutus", "hydra", "struts-pwn", "jaeles",
        "whatweb", "bsqlbf", "sqlninja", "pangolin", "webshag", "vega/", "netlab360", "dotdotpwn", "wapiti",
        "joomscan", "droopescan", "cmsmap", "nmap", "qualys", "detectify", "censysinspect", "httpx - open-source",
    ]
    static let agentBytes: [[UInt8]] = agents.map { Array($0.utf8) }
    /// Agent indexes by first byte: one pass over the user-agent compares only plausible names.
    static let agentsByFirst: [[Int]] = {
        var t = [[Int]](repeating: [], count: 256)
        for (k, a) in agentBytes.enumerated() { t[Int(a[0])].append(k) }
        return t
    }()

    /// The first scanner name (by position in the user-agent) found in `ua` (lowercased).
    static func match(_ ua: [UInt8]) -> (Int, Int)? {
        let n = ua.count
        for i in 0..<n {
            for k in agentsByFirst[Int(ua[i])] {
                let p = agentBytes[k]
                guard i + p.count <= n else { continue }
                var j = 1
                while j < p.count, ua[i + j] == p[j] { j += 1 }
                if j == p.count { return (k, i) }
            }
        }
        return nil
    }
    static let headers: Set<String> = [
        "acunetix-product", "acunetix-scanning-agreement", "acunetix-user-agreement", "x-wipp", "x-scan-memo", "x-request-memo",
        "x-scanner", "x-pwnfox-color",
    ]
}
