// Hand-written: an HTML tag tokenizer (the subset of the WHATWG tokenizer rules that decides what
// a browser treats as a tag and its attributes), plus checks for JavaScript string breakouts,
// dangerous URL schemes and template expressions. Findings need markup or script *structure*: a
// tag a browser would parse with an event handler, a script tag, a javascript: URL in a place a
// browser follows; a lone "<" or the word "javascript" in prose passes. Ideas from the OWASP XSS
// Filter Evasion Cheat Sheet and PortSwigger's XSS cheat sheet (vector families, not payloads).

/// A match found by the XSS analysis.
struct PatternMatch {
    var rule: String
    var start: Int
    var end: Int
    var message: String
}

package enum XSSDetector {
    static let dangerousTags: Set<String> = [
        "iframe", "frame", "frameset", "object", "embed", "applet", "base", "isindex", "portal", "import", "xml",
    ]
    static let urlAttributes: Set<String> = [
        "href", "src", "action", "formaction", "data", "xlink:href", "background", "lowsrc", "dynsrc", "poster",
        "code", "codebase", "to", "from", "values", "by", "srcdoc", "content", "ping", "cite", "longdesc", "usemap",
        "manifest", "icon", "archive", "classid", "folder", "xmlns", "style",
    ]

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C }
    @inline(__always) static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }

    static func scan(_ s: [UInt8], lowercased low: [UInt8], bytes set: ByteSet, into out: inout [PatternMatch]) {
        let hasLT = set.has(0x3C), hasColon = set.has(0x3A), hasBrace = set.has(0x7B), hasParen = set.has(0x28), hasEq = set.has(0x3D)
        let hasQuote = set.has(0x22) || set.has(0x27) || set.has(0x60)
        if !(hasLT || hasColon || hasBrace || hasQuote || hasParen || hasEq) { return }
        if hasLT { scanTags(low, into: &out) }
        if hasQuote && hasEq { scanAttributeBreakout(low, into: &out) }
        if hasColon { scanSchemes(low, into: &out) }
        if hasBrace || hasLT { scanTemplates(low, into: &out) }
        if hasParen || set.has(0x60) { scanSinks(low, into: &out) }
        if hasColon, hasParen { scanCSS(low, into: &out) }
    }

    /// Removes what browsers ignore inside a URL scheme: ASCII whitespace and control characters.
    static func schemeText(_ v: ArraySlice<UInt8>, limit: Int = 16) -> [UInt8] {
        var out: [UInt8] = []
        for c in v {
            if c <= 0x20 { if out.isEmpty { continue } else { continue } }
            out.append(c)
            if out.count >= limit { break }
        }
        return out
    }

    static func startsWith(_ a: [UInt8], _ p: String) -> Bool {
        let pb = Array(p.utf8)
        return a.count >= pb.count && Array(a[0..<pb.count]) == pb
    }

    static func classifyURLValue(_ v: ArraySlice<UInt8>) -> (String, String)? {
        let decoded = Decoding.htmlEntityDecode(Array(v))
        let head = Decoding.lowercased(schemeText(decoded[...], limit: 24))
        if startsWith(head, "javascript:") || startsWith(head, "vbscript:") || startsWith(head, "livescript:") {
            return ("941120", "script URL in an attribute")
        }
        if startsWith(head, "data:") {
            let rest = String(decoding: head.dropFirst(5), as: UTF8.self)
            if rest.hasPrefix("text/html") || rest.hasPrefix("image/svg") || rest.hasPrefix("text/xml")
                || rest.hasPrefix("application/xhtml")
                || rest.hasPrefix("text/javascript") || rest.hasPrefix("application/javascript") || rest.hasPrefix("application/x-")
                || rest.hasPrefix(",") || rest.hasPrefix(";base64")
            {
                return ("941130", "data: URL with active content in an attribute")
            }
        }
        return nil
    }

    static func scanTags(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        var i = 0
        while i < n {
            guard s[i] == 0x3C, i + 1 < n else { i += 1; continue }
            var j = i + 1
            let closing = s[j] == 0x2F
            if closing { j += 1 }
            guard j < n, isAlpha(s[j]) else { i += 1; continue }
            let nameStart = j
            while j < n, !isSpace(s[j]), s[j] != 0x2F, s[j] != 0x3E, s[j] != 0x3C, s[j] != 0 { j += 1 }
            let name = String(decoding: s[nameStart..<j], as: UTF8.self)
            if closing { i = j; continue }
            let tagStart = i
            // Attributes until '>' (or the end: browsers and sloppy templates accept an unterminated tag).
            var attrs: [(name: String, value: ArraySlice<UInt8>, start: Int)] = []
            while j < n, s[j] != 0x3E {
                if isSpace(s[j]) || s[j] == 0x2F || s[j] == 0x22 || s[j] == 0x27 { j += 1; continue }
                if s[j] == 0x3C { break }
                let aStart = j
                while j < n, !isSpace(s[j]), s[j] != 0x2F || (j > aStart && attrs.isEmpty && false), s[j] != 0x3E, s[j] != 0x3D { j += 1 }
                let aName = String(decoding: s[aStart..<j], as: UTF8.self)
                var k = j
                while k < n, isSpace(s[k]) { k += 1 }
                var value: ArraySlice<UInt8> = []
                if k < n, s[k] == 0x3D {
                    k += 1
                    while k < n, isSpace(s[k]) { k += 1 }
                    if k < n, s[k] == 0x22 || s[k] == 0x27 || s[k] == 0x60 {
                        let q = s[k]
                        var e = k + 1
                        while e < n, s[e] != q { e += 1 }
                        value = s[(k + 1)..<e]
                        k = min(n, e + 1)
                    } else {
                        var e = k
                        while e < n, !isSpace(s[e]), s[e] != 0x3E { e += 1 }
                        value = s[k..<e]
                        k = e
                    }
                    j = k
                } else {
                    j = max(j, aStart + 1)
                }
                attrs.append((aName, value, aStart))
                if attrs.count > 32 { break }
            }
            let tagEnd = min(n, j + 1)
            func report(_ rule: String, _ msg: String, _ from: Int = tagStart) {
                out.append(PatternMatch(rule: rule, start: from, end: tagEnd, message: msg))
            }
            // A bare tag followed by prose ("The <script> tag runs JavaScript") names the element; with
            // attributes, code after it, or nothing after it, it is markup.
            let mentioned = attrs.isEmpty && j < n && s[j] == 0x3E && proseFollows(s, j + 1)
            if name == "script" {
                if mentioned { report("941105", "<script> named in text") } else { report("941100", "<script> tag") }
            } else if dangerousTags.contains(name) {
                if mentioned { report("941105", "<\(name)> named in text") } else { report("941140", "<\(name)> tag") }
            } else if name == "meta",
                attrs.contains(where: {
                    $0.name == "http-equiv" || $0.name == "content" && Decoding.find("url", in: Array($0.value)) != nil
                })
            {
                report("941140", "<meta> refresh or header")
            } else if name == "link",
                attrs.contains(where: {
                    $0.name == "rel" && ($0.value.elementsEqual("import".utf8) || $0.value.elementsEqual("stylesheet".utf8))
                }), attrs.contains(where: { $0.name == "href" })
            {
                report("941140", "<link> importing a resource")
            } else if name == "style",
                let gt = Decoding.find("@import", in: s, from: tagStart) ?? Decoding.find("expression", in: s, from: tagStart)
            {
                _ = gt
                report("941170", "<style> importing or evaluating script")
            }
            if let h = looseHandler(s, from: nameStart, to: min(n, j)) {
                // `<img src= onerror=…>`, `<body onload!#$%=…>`: handler-like text inside the tag even
                // where the attribute grammar would read it as part of a value.
                report("941110", "event handler \(h) on <\(name)>")
            }
            for a in attrs {
                if a.name.hasPrefix("on"), a.name.count >= 5, a.name.utf8.dropFirst(2).prefix(3).allSatisfy(isAlpha) {
                    report("941110", "event handler \(a.name) on <\(name)>")
                    break
                }
                if urlAttributes.contains(a.name) || a.name.hasSuffix(":href") {
                    if let (rule, msg) = classifyURLValue(a.value) { report(rule, msg + " (\(a.name) on <\(name)>)"); break }
                    if a.name == "srcdoc", a.value.contains(0x3C) || a.value.contains(0x26) { report("941100", "markup in srcdoc"); break }
                    if a.name == "style", let r = cssScript(Array(a.value)) { report("941170", r); break }
                }
            }
            i = max(i + 1, j)
        }
    }

    /// Whether the text after a tag reads as prose: two or more words, no code punctuation, no markup.
    static func proseFollows(_ s: [UInt8], _ from: Int) -> Bool {
        var words = 0
        var inWord = false
        var i = from
        while i < s.count {
            let c = s[i]
            if isAlpha(c) {
                if !inWord { words += 1; inWord = true }
            } else if isSpace(c) || c == 0x2C || c == 0x2E || c == 0x2D || c == 0x21 || c == 0x3F || c == 0x27 || (c >= 0x30 && c <= 0x39) {
                inWord = false
            } else {
                return false
            }
            i += 1
        }
        return words >= 2
    }

    /// `on` + at least three letters, after a separator, then (after any junk but no space) `=`.
    static func looseHandler(_ s: [UInt8], from: Int, to: Int) -> String? {
        var i = from
        while i + 4 < to {
            if s[i] == 0x6F, s[i + 1] == 0x6E, i > from, isSpace(s[i - 1]) || s[i - 1] == 0x2F || s[i - 1] == 0x22 || s[i - 1] == 0x27 {
                var j = i + 2
                while j < to, isAlpha(s[j]) { j += 1 }
                if j - i >= 5 {
                    var k = j
                    while k < to, !isSpace(s[k]), s[k] != 0x3D, s[k] != 0x3E, s[k] != 0x22, s[k] != 0x27 { k += 1 }
                    while k < to, isSpace(s[k]) { k += 1 }
                    if k < to, s[k] == 0x3D, k + 1 < to || k + 1 == s.count { return String(decoding: s[i..<j], as: UTF8.self) }
                }
                i = j
                continue
            }
            i += 1
        }
        return nil
    }

    static let eventNames: Set<String> = {
        let list = """
            abort afterprint animationend animationiteration animationstart auxclick beforecopy beforecut beforeinput \
            beforepaste beforeprint beforeunload begin blur canplay canplaythrough change click close contextmenu copy cuechange cut \
            dblclick drag dragend dragenter dragleave dragover dragstart drop durationchange end ended error focus focusin \
            focusout formdata fullscreenchange hashchange input invalid keydown keypress keyup load loadeddata loadedmetadata \
            loadend loadstart message mousedown mouseenter mouseleave mousemove mouseout mouseover mouseup mousewheel offline \
            online pagehide pageshow paste pause play playing pointerdown pointerenter pointerleave pointermove pointerout \
            pointerover pointerup pointerrawupdate popstate progress ratechange repeat reset resize scroll scrollend search seeked \
            seeking select selectionchange selectstart show stalled start storage submit suspend timeupdate toggle touchend \
            touchmove touchstart transitioncancel transitionend transitionrun transitionstart unload volumechange waiting wheel \
            beforetoggle contentvisibilityautostatechange securitypolicyviolation bounce finish activate readystatechange \
            filterchange errorupdate propertychange
            """
        return Set(list.split(separator: " ").map { "on" + $0 })
    }()

    /// `" onmouseover="alert(1)`: a quote closes the application's attribute, a handler follows.
    static func scanAttributeBreakout(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        var sawQuote = -1
        var i = 0
        while i < n {
            let c = s[i]
            if c == 0x22 || c == 0x27 || c == 0x60 { sawQuote = i; i += 1; continue }
            if sawQuote >= 0, c == 0x6F, i + 2 < n, s[i + 1] == 0x6E,
                i == 0 || isSpace(s[i - 1]) || s[i - 1] == 0x2F || s[i - 1] == 0x22 || s[i - 1] == 0x27
            {
                var j = i + 2
                while j < n, isAlpha(s[j]) { j += 1 }
                let name = String(decoding: s[i..<j], as: UTF8.self)
                var k = j
                while k < n, isSpace(s[k]) { k += 1 }
                if eventNames.contains(name), k + 1 < n, s[k] == 0x3D, !isSpace(s[k + 1]) || k + 2 < n {
                    out.append(
                        PatternMatch(
                            rule: "941110", start: sawQuote, end: min(n, k + 24), message: "attribute breakout with event handler \(name)"))
                    return
                }
                i = j
                continue
            }
            if sawQuote >= 0, c == 0x73, i + 5 < n, s[i + 1] == 0x74, s[i + 2] == 0x79, s[i + 3] == 0x6C, s[i + 4] == 0x65,
                (i == 0 || isSpace(s[i - 1]) || s[i - 1] == 0x22 || s[i - 1] == 0x27)
            {
                var k = i + 5
                while k < n, isSpace(s[k]) { k += 1 }
                if k < n, s[k] == 0x3D, let r = cssScript(Array(s[k...])) {
                    out.append(PatternMatch(rule: "941170", start: sawQuote, end: min(n, k + 40), message: "attribute breakout: " + r))
                    return
                }
            }
            i += 1
        }
    }

    static func cssScript(_ v: [UInt8]) -> String? {
        // Remove CSS comments and escapes that split keywords: exp/**/ression, \65xpression.
        var cleaned: [UInt8] = []
        var i = 0
        while i < v.count {
            if v[i] == 0x2F, i + 1 < v.count, v[i + 1] == 0x2A {
                var j = i + 2
                while j + 1 < v.count, !(v[j] == 0x2A && v[j + 1] == 0x2F) { j += 1 }
                i = j + 2
                continue
            }
            if v[i] == 0x5C { i += 1; continue }
            cleaned.append(Decoding.lower(v[i]))
            i += 1
        }
        if let e = Decoding.find("expression", in: cleaned) {
            var k = e + 10
            while k < cleaned.count, isSpace(cleaned[k]) { k += 1 }
            if k < cleaned.count, cleaned[k] == 0x28 { return "CSS expression()" }
        }
        if Decoding.find("-moz-binding", in: cleaned) != nil { return "CSS -moz-binding" }
        if let b = Decoding.find("behavior", in: cleaned), Decoding.find("url", in: cleaned, from: b) != nil { return "CSS behavior:url()" }
        if let u = Decoding.find("url(", in: cleaned) {
            var k = u + 4
            while k < cleaned.count, isSpace(cleaned[k]) || cleaned[k] == 0x22 || cleaned[k] == 0x27 { k += 1 }
            if startsWith(Array(cleaned[k...].prefix(11)), "javascript:") { return "CSS url(javascript:)" }
        }
        return nil
    }

    /// `javascript:` / `vbscript:` / `data:text/html` as the value itself or after `=`, a quote or `(`.
    static func scanSchemes(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        for (si, scheme) in ["javascript", "vbscript", "livescript"].enumerated() {
            let p = schemeBytes[si]
            var from = 0
            while let at = findScheme(p, in: s, from: from) {
                let (start, colon) = at
                from = colon + 1
                // Where it sits: the whole value, or a place a URL goes.
                var b = start - 1
                while b >= 0, s[b] <= 0x20 { b -= 1 }
                let placed = b < 0 || [0x3D, 0x22, 0x27, 0x28, 0x60, 0x3E].contains(s[b])
                guard placed else { continue }
                // What follows must be code: `alert(1)`, `//%0a`, `` a`x` ``; prose ("javascript: the good parts") is not.
                var k = colon + 1
                if k < n, s[k] == 0x2F, k + 1 < n, s[k + 1] == 0x2F { report(&out, "941120", start, n, "\(scheme): URL"); return }
                var idStart = k
                while k < n, s[k] <= 0x20 { k += 1 }
                idStart = k
                while k < n, SQLTokenizer.isWordByte(s[k]) || s[k] == 0x2E || s[k] == 0x5B || s[k] == 0x5D || s[k] == 0x27 || s[k] == 0x22 {
                    k += 1
                }
                let code = k < n && (s[k] == 0x28 || s[k] == 0x60 || s[k] == 0x3D) && (k == idStart || !isSpace(s[k - 1]))
                if code || (k == n && k > idStart && b < 0)
                    || (k < n && k == idStart && [0x28, 0x5B, 0x5C, 0x22, 0x27, 0x60, 0x25, 0x26].contains(s[k]))
                {
                    report(&out, "941120", start, min(n, k + 20), "\(scheme): URL")
                    return
                }
            }
        }
        var from = 0
        let dp = dataBytes
        while let at = findScheme(dp, in: s, from: from) {
            let (start, colon) = at
            from = colon + 1
            var b = start - 1
            while b >= 0, s[b] <= 0x20 { b -= 1 }
            guard b < 0 || [0x3D, 0x22, 0x27, 0x28, 0x60, 0x3E].contains(s[b]) else { continue }
            if classifyURLValue(s[start...]) != nil {
                report(&out, "941130", start, min(n, colon + 30), "data: URL with active content")
                return
            }
        }
    }

    static let schemeBytes: [[UInt8]] = ["javascript", "vbscript", "livescript"].map { Array($0.utf8) }
    static let dataBytes: [UInt8] = Array("data".utf8)

    /// Finds `scheme` followed by `:`, allowing control characters and whitespace between letters
    /// (browsers strip them: "java\tscript:").
    static func findScheme(_ p: [UInt8], in s: [UInt8], from: Int) -> (Int, Int)? {
        let n = s.count
        var i = from
        while i < n {
            if s[i] == p[0], i == 0 || !isAlpha(s[i - 1]) {
                var j = i, k = 0
                while j < n, k < p.count {
                    if s[j] == p[k] {
                        j += 1; k += 1
                    } else if s[j] == 0x09 || s[j] == 0x0A || s[j] == 0x0D || s[j] == 0 {
                        j += 1
                    } else {
                        break
                    }
                }
                if k == p.count {
                    while j < n, s[j] <= 0x20 { j += 1 }
                    if j < n, s[j] == 0x3A { return (i, j) }
                }
            }
            i += 1
        }
        return nil
    }

    static func report(_ out: inout [PatternMatch], _ rule: String, _ a: Int, _ b: Int, _ msg: String) {
        out.append(PatternMatch(rule: rule, start: a, end: max(a, b), message: msg))
    }

    /// `{{ 7*7 }}`, `${…}`, `#{…}`, `<%= … %>`, `{% … %}` holding code rather than a plain name.
    static func scanTemplates(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        var i = 0
        while i + 1 < n {
            var open = 0, closeA: UInt8 = 0, closeB: UInt8 = 0
            if s[i] == 0x7B, s[i + 1] == 0x7B {
                open = 2; closeA = 0x7D; closeB = 0x7D
            } else if s[i] == 0x7B, s[i + 1] == 0x25 {
                open = 2; closeA = 0x25; closeB = 0x7D
            } else if (s[i] == 0x24 || s[i] == 0x23 || s[i] == 0x2A || s[i] == 0x40), s[i + 1] == 0x7B {
                open = 2; closeA = 0x7D; closeB = 0
            } else if s[i] == 0x3C, s[i + 1] == 0x25 {
                open = 2; closeA = 0x25; closeB = 0x3E
            }
            if open == 0 { i += 1; continue }
            var j = i + open
            if j < n, s[j] == 0x3D { j += 1 }
            let innerStart = j
            var depth = 0
            while j < n {
                if closeB == 0 {
                    if s[j] == 0x7B { depth += 1 } else if s[j] == 0x7D { if depth == 0 { break }; depth -= 1 }
                } else if s[j] == closeA, j + 1 < n, s[j + 1] == closeB {
                    break
                }
                j += 1
            }
            let inner = Array(s[innerStart..<min(j, n)])
            if templateCode(inner) {
                report(&out, "941160", i, min(n, j + 2), "template expression")
                return
            }
            // Unclosed: every later opener would scan to the end again (`{{{{…` is quadratic).
            if j >= n { return }
            i = innerStart
        }
    }

    static func templateCode(_ v: [UInt8]) -> Bool {
        guard !v.isEmpty else { return false }
        for key in [
            "__", "constructor", "getclass", "runtime", "popen", "subprocess", "getruntime", "processbuilder", "mro", "globals", "builtins",
            "import", "lipsum", "cycler", "joiner", "self.", "request.application", "config.", "config}", "t(java", "#_memberaccess",
            "@java",
        ] {
            if Decoding.find(Array(key.utf8), in: v) != nil { return true }
        }
        // A call, or arithmetic on numbers: `7*7`, `fn()`.
        var prevDigit = false
        for (k, c) in v.enumerated() {
            if c == 0x28, k > 0, SQLTokenizer.isWordByte(v[k - 1]) || v[k - 1] == 0x29 { return true }
            if (c == 0x2A || c == 0x2B || c == 0x2D || c == 0x2F), prevDigit, k + 1 < v.count,
                v[(k + 1)...].first(where: { !isSpace($0) }).map({ $0 >= 0x30 && $0 <= 0x39 }) == true
            {
                return true
            }
            if c >= 0x30 && c <= 0x39 { prevDigit = true } else if !isSpace(c) { prevDigit = false }
        }
        return false
    }

    static let sinks: [String] = [
        "alert", "prompt", "confirm", "eval", "settimeout", "setinterval", "function", "fromcharcode", "atob",
        "document.write", "document.writeln", "fetch", "import", "execscript", "print", "open", "constructor",
    ]
    static let sinkBytes: [[UInt8]] = sinks.map { Array($0.utf8) }
    static let properties: [String] = [
        "document.cookie", "document.domain", "document.location", "window.location", "location.href", "innerhtml", "outerhtml",
        "localstorage",
    ]

    /// JavaScript sinks; a string breakout before them (`';alert(1)//`, `"-alert(1)-"`) is critical.
    static func scanSinks(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        var found: (Int, Int)? = nil
        var foundName = ""
        for (si, name) in sinks.enumerated() {
            let p = sinkBytes[si]
            var from = 0
            while let at = Decoding.find(p, in: s, from: from) {
                from = at + 1
                if at > 0, SQLTokenizer.isWordByte(s[at - 1]) { continue }
                var k = at + p.count
                if k < n, SQLTokenizer.isWordByte(s[k]) { continue }
                while k < n, s[k] == 0x29 || isSpace(s[k]) && name != "function" && name != "print" && name != "open" && name != "import" {
                    k += 1
                }
                if k < n, s[k] == 0x28 || s[k] == 0x60 {
                    if name == "function" || name == "print" || name == "open" || name == "import" || name == "constructor", s[k] == 0x28 {
                        // Common words: count them only with a breakout (checked below).
                    }
                    found = (at, k)
                    foundName = name
                    break
                }
            }
            if found != nil { break }
        }
        if found == nil {
            for name in properties {
                if let at = Decoding.find(Array(name.utf8), in: s) { found = (at, at + name.utf8.count); foundName = name; break }
            }
            // top['al'+'ert'](1), window["eval"](…), self[…](…)
            if found == nil {
                for obj in ["top[", "window[", "self[", "parent[", "frames[", "globalthis[", "this["] {
                    if let at = Decoding.find(Array(obj.utf8), in: s),
                        Decoding.find([0x5D, 0x28], in: s, from: at) != nil || Decoding.find([0x5D, 0x60], in: s, from: at) != nil
                    {
                        found = (at, at + obj.utf8.count); foundName = obj; break
                    }
                }
            }
        }
        if found == nil {
            // `";a=prompt,a()//`: after a quote breakout, a sink referenced (not called) and a call later.
            if let q = s.firstIndex(where: { $0 == 0x22 || $0 == 0x27 }), q + 1 < n {
                var k = q + 1
                while k < n, isSpace(s[k]) { k += 1 }
                if k < n, s[k] == 0x3B || s[k] == 0x2B || s[k] == 0x2D,
                    Decoding.find([0x28, 0x29], in: s, from: k) != nil || Decoding.find([0x28], in: s, from: k) != nil
                {
                    for name in ["alert", "prompt", "confirm", "eval", "settimeout", "setinterval", "fromcharcode"] {
                        if let at = Decoding.find(Array(name.utf8), in: s, from: k), at == 0 || !SQLTokenizer.isWordByte(s[at - 1]),
                            at + name.utf8.count == n || !SQLTokenizer.isWordByte(s[at + name.utf8.count])
                        {
                            report(&out, "941150", q, min(n, at + 24), "string breakout then \(name)")
                            return
                        }
                    }
                }
            }
        }
        guard let (at, k) = found else { return }
        // Look back from the sink for a breakout: a quote, `</script>` or `;` followed only by operators.
        var b = at - 1
        var sawOperator = false
        while b >= 0 {
            let c = s[b]
            if isSpace(c) || c == 0x28 { b -= 1; continue }
            if [0x3B, 0x2B, 0x2D, 0x2A, 0x2F, 0x7C, 0x26, 0x2C, 0x7D, 0x29].contains(c) {
                sawOperator = true
                b -= 1
                continue
            }
            break
        }
        let breakout = b >= 0 && sawOperator && (s[b] == 0x22 || s[b] == 0x27 || s[b] == 0x60 || s[b] == 0x5C)
        let weakWords: Set<String> = ["function", "print", "open", "import", "constructor", "fetch", "atob", "eval"]
        if breakout {
            report(&out, "941150", b, min(n, k + 16), "string breakout then \(foundName)")
        } else if !weakWords.contains(foundName) || b < 0 {
            report(&out, "941180", at, min(n, k + 16), "JavaScript \(foundName)")
        }
    }

    static func scanCSS(_ s: [UInt8], into out: inout [PatternMatch]) {
        // `width:expression(alert(1))` outside a tag (a style attribute's value).
        guard
            let e = Decoding.find("expression", in: s) ?? Decoding.find("url(", in: s) ?? Decoding.find("binding", in: s)
                ?? Decoding.find("behavior", in: s)
        else { return }
        var b = e - 1
        while b >= 0, isSpace(s[b]) { b -= 1 }
        guard b >= 0, s[b] == 0x3A || s[b] == 0x2D || s[b] == 0x2F else { return }
        if let r = cssScript(Array(s[max(0, b)...])) {
            report(&out, "941170", max(0, b), min(s.count, e + 30), r)
        }
    }
}

extension XSSDetector {
    /// Whether `value` holds markup or script a browser would run: the SecLang engine's
    /// `@detectXSS`.
    package static func detects(_ value: [UInt8]) -> Bool {
        var found: [PatternMatch] = []
        scan(value, lowercased: Decoding.lowercased(value), bytes: ByteSet(value), into: &found)
        return !found.isEmpty
    }
}
