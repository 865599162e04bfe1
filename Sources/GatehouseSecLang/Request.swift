// The request as SecLang sees it, and how its parts become variables: arguments from the query
// string and form bodies, cookies, multipart parts with ModSecurity's strictness flags, XML text.
// Hand-written because these parsers must keep ModSecurity's exact splitting (every `&` piece
// an argument, invalid escapes left as written, multipart flags for each irregularity); the
// project's own request parser (GatehouseWAF.Fields) refuses or normalises the very inputs the
// Core Rule Set looks for.

import Foundation

/// A parsed HTTP request: what the rule engine inspects.
package struct SecLangRequest: Sendable {
    package var method: String
    /// The request target exactly as sent (origin form, or absolute form).
    package var target: [UInt8]
    /// `HTTP/1.1`, as sent.
    package var httpVersion: String
    package var headers: [(name: [UInt8], value: [UInt8])]
    package var body: [UInt8]
    package var remoteAddress: String
    package var remotePort: Int

    package init(
        method: String, target: [UInt8], httpVersion: String = "HTTP/1.1", headers: [(name: [UInt8], value: [UInt8])] = [],
        body: [UInt8] = [], remoteAddress: String = "127.0.0.1", remotePort: Int = 40000
    ) {
        self.method = method
        self.target = target
        self.httpVersion = httpVersion
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    /// The first value of header `name` (case-insensitive).
    package func header(_ name: String) -> [UInt8]? {
        let lower = Array(name.lowercased().utf8)
        return headers.first { $0.name.count == lower.count && zip($0.name, lower).allSatisfy { T.lower($0) == $1 } }?.value
    }
}

extension T {
    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c &- 0x41 < 26 ? c | 0x20 : c }
}

/// One entry of a collection: its name and value, as bytes.
package struct Entry: Sendable {
    package var key: [UInt8]
    package var lowerKey: String
    package var value: [UInt8]

    package init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.lowerKey = Entry.lowered(key)
        self.value = value
    }

    /// `key` with ASCII letters lowercased, as a String (invalid UTF-8 repaired as
    /// `String(decoding:as:)` does), written straight into the string's storage: one allocation
    /// at most, none for a name of up to 15 bytes.
    package static func lowered(_ key: [UInt8]) -> String {
        key.withUnsafeBufferPointer { k in
            String(unsafeUninitializedCapacity: k.count) { out in
                for i in 0..<k.count { out[i] = T.lower(k[i]) }
                return k.count
            }
        }
    }

    /// An entry whose value is its own name (`ARGS_NAMES`, `REQUEST_HEADERS_NAMES`).
    init(nameOf e: Entry) { self.init(key: e.key, lowerKey: e.lowerKey, value: e.key) }

    package init(_ key: String, _ value: [UInt8]) { self.init(key: Array(key.utf8), value: value) }

    /// An entry whose lowercase name is already known.
    init(key: [UInt8], lowerKey: String, value: [UInt8]) {
        self.key = key
        self.lowerKey = lowerKey
        self.value = value
    }
}

/// The parsers behind the request variables.
enum RequestParsing {
    /// ModSecurity's argument parsing: `&`-separated pieces, split at the first `=`, each side
    /// URL-decoded (with `+` as a space); a piece without `=` is a name with an empty value.
    static func arguments(_ s: ArraySlice<UInt8>) -> [Entry] {
        var out: [Entry] = []
        var start = s.startIndex
        while start < s.endIndex {
            let end = s[start...].firstIndex(of: 0x26) ?? s.endIndex
            let piece = s[start..<end]
            start = end + 1
            if piece.isEmpty { continue }
            if let eq = piece.firstIndex(of: 0x3D) {
                out.append(Entry(key: T.urlDecode(piece[..<eq], unicode: false), value: T.urlDecode(piece[(eq + 1)...], unicode: false)))
            } else {
                out.append(Entry(key: T.urlDecode(piece, unicode: false), value: []))
            }
        }
        return out
    }

    /// Cookie header: `;`-separated `name=value` pairs, leading spaces dropped.
    static func cookies(_ header: [UInt8]) -> [Entry] {
        var out: [Entry] = []
        for piece in header.split(separator: 0x3B, omittingEmptySubsequences: true) {
            var p = piece[...]
            while let f = p.first, f == 0x20 || f == 0x09 { p = p.dropFirst() }
            if p.isEmpty { continue }
            if let eq = p.firstIndex(of: 0x3D) {
                out.append(Entry(key: Array(p[p.startIndex..<eq]), value: Array(p[(eq + 1)...])))
            } else {
                out.append(Entry(key: Array(p), value: []))
            }
        }
        return out
    }

    /// Splits a request target into path and query (raw, undecoded); an absolute-form target
    /// loses its scheme and authority.
    static func splitTarget(_ target: [UInt8]) -> (path: [UInt8], query: [UInt8]?, uri: [UInt8]) {
        var t = target[...]
        if let schemeEnd = T.find(Array("://".utf8), in: target), schemeEnd < 10, target.first != 0x2F {
            let afterAuthority = target[(schemeEnd + 3)...].firstIndex(of: 0x2F) ?? target.endIndex
            t = target[afterAuthority...]
        }
        if let q = t.firstIndex(of: 0x3F) {
            return (Array(t[..<q]), Array(t[(q + 1)...]), Array(t))
        }
        return (Array(t), nil, Array(t))
    }
}

/// What a multipart/form-data body yields: form fields, files, part headers and ModSecurity's
/// irregularity flags.
struct MultipartResult {
    var args: [Entry] = []
    var files: [Entry] = []
    var fileNames: [Entry] = []
    var fileSizes: [Entry] = []
    var partHeaders: [Entry] = []
    var error: String?
    var flags: [Collection: Bool] = [:]

    var strictError: Bool {
        error != nil
            || [
                Collection.multipartBoundaryQuoted, .multipartBoundaryWhitespace, .multipartDataBefore, .multipartDataAfter,
                .multipartHeaderFolding, .multipartLFLine, .multipartMissingSemicolon, .multipartInvalidQuoting,
                .multipartInvalidPart, .multipartInvalidHeaderFolding, .multipartFileLimitExceeded,
            ].contains { flags[$0] == true }
    }

    /// Parses `body` with the boundary from `contentType`.
    static func parse(_ body: [UInt8], contentType: [UInt8]) -> MultipartResult {
        var r = MultipartResult()
        let ct = String(decoding: contentType, as: UTF8.self)
        guard let bRange = ct.range(of: "boundary", options: .caseInsensitive) else {
            r.error = "Multipart: Boundary not found in C-T."
            return r
        }
        var rest = ct[bRange.upperBound...]
        while rest.first == " " {
            r.flags[.multipartBoundaryWhitespace] = true
            rest = rest.dropFirst()
        }
        guard rest.first == "=" else {
            r.error = "Multipart: Invalid boundary in C-T."
            return r
        }
        rest = rest.dropFirst()
        if rest.first == " " { r.flags[.multipartBoundaryWhitespace] = true }
        rest = rest.drop { $0 == " " }
        var boundary = String(rest.prefix { $0 != ";" && $0 != "," })
        if boundary.hasPrefix("\"") {
            r.flags[.multipartBoundaryQuoted] = true
            boundary = String(boundary.dropFirst().prefix { $0 != "\"" })
        }
        if boundary.hasSuffix(" ") { r.flags[.multipartBoundaryWhitespace] = true }
        guard !boundary.isEmpty else {
            r.error = "Multipart: Invalid boundary in C-T."
            return r
        }
        let delimiter = Array("--\(boundary)".utf8)

        // Lines, each remembering whether it ended with CRLF or a bare LF.
        var lines: [(ArraySlice<UInt8>, Bool)] = []
        var start = 0
        var sawCRLF = false, sawLF = false
        for (i, c) in body.enumerated() where c == 0x0A {
            let crlf = i > start && body[i - 1] == 0x0D
            if crlf { sawCRLF = true } else { sawLF = true }
            lines.append((body[start..<(crlf ? i - 1 : i)], crlf))
            start = i + 1
        }
        let trailing = start < body.count ? body[start...] : nil
        if sawLF { r.flags[.multipartLFLine] = true }
        if sawLF && sawCRLF { r.flags[.multipartCRLFLFLines] = true }

        enum State { case preamble, headers, data, done }
        var state = State.preamble
        var headers: [(String, [UInt8])] = []
        var data: [UInt8] = []
        var dataStarted = false
        var parts = 0
        func isDelimiter(_ line: ArraySlice<UInt8>) -> (Bool, Bool) {
            guard line.starts(with: delimiter) else { return (false, false) }
            var after = line.dropFirst(delimiter.count)
            let closing = after.starts(with: [0x2D, 0x2D])
            if closing { after = after.dropFirst(2) }
            return (after.allSatisfy { $0 == 0x20 || $0 == 0x09 }, closing)
        }
        func finishPart() {
            parts += 1
            var name: [UInt8]? = nil
            var filename: [UInt8]? = nil
            var disposition = false
            for (h, v) in headers {
                guard h.lowercased() == "content-disposition" else { continue }
                disposition = true
                let parsed = parseDisposition(v, result: &r)
                name = parsed.name
                filename = parsed.filename
            }
            // MULTIPART_PART_HEADERS:<part name> holds each header line of that part.
            for (h, v) in headers { r.partHeaders.append(Entry(key: name ?? [], value: Array(h.utf8) + Array(": ".utf8) + v)) }
            if !disposition || name == nil {
                r.flags[.multipartInvalidPart] = true
                if !disposition { r.error = r.error ?? "Multipart: Part missing Content-Disposition header." }
            }
            if let filename {
                r.files.append(Entry(key: name ?? [], value: filename))
                r.fileNames.append(Entry(key: name ?? [], value: name ?? []))
                r.fileSizes.append(Entry(key: name ?? [], value: Array(String(data.count).utf8)))
            } else if let name {
                r.args.append(Entry(key: name, value: data))
            }
            headers = []
            data = []
            dataStarted = false
        }
        for (line, crlf) in lines {
            switch state {
            case .preamble:
                let (isDelim, closing) = isDelimiter(line)
                if isDelim {
                    if closing {
                        state = .done
                    } else {
                        state = .headers
                    }
                } else if !line.isEmpty {
                    r.flags[.multipartDataBefore] = true
                }
            case .headers:
                if line.isEmpty {
                    state = .data
                    continue
                }
                if let f = line.first, f == 0x20 || f == 0x09 {
                    r.flags[.multipartHeaderFolding] = true
                    if let last = headers.popLast() {
                        headers.append((last.0, last.1 + Array(line.drop { $0 == 0x20 || $0 == 0x09 })))
                    } else {
                        r.flags[.multipartInvalidHeaderFolding] = true
                    }
                    continue
                }
                guard let colon = line.firstIndex(of: 0x3A) else {
                    r.error = r.error ?? "Multipart: Invalid part header (colon missing)."
                    r.flags[.multipartInvalidPart] = true
                    continue
                }
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
                let value = Array(line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 })
                headers.append((name, value))
            case .data:
                let (isDelim, closing) = isDelimiter(line)
                if isDelim {
                    finishPart()
                    state = closing ? .done : .headers
                    continue
                }
                if dataStarted { data += [0x0D, 0x0A].suffix(crlf ? 2 : 1) }
                data += line
                dataStarted = true
            // The line ending before a delimiter belongs to the delimiter, so it is added
            // only when another data line follows.
            case .done:
                if !line.isEmpty { r.flags[.multipartDataAfter] = true }
            }
        }
        if let trailing, !trailing.isEmpty {
            if state == .data, isDelimiter(trailing).0 {
                finishPart()
                state = isDelimiter(trailing).1 ? .done : .headers
            } else if state == .done {
                r.flags[.multipartDataAfter] = true
            }
        }
        if state != .done {
            r.flags[.multipartUnmatchedBoundary] = true
            if parts == 0 { r.error = r.error ?? "Multipart: Final boundary missing." }
        }
        return r
    }

    /// `form-data; name="a"; filename="b"`.
    static func parseDisposition(_ v: [UInt8], result r: inout MultipartResult) -> (name: [UInt8]?, filename: [UInt8]?) {
        var name: [UInt8]? = nil, filename: [UInt8]? = nil
        let text = v[...]
        guard text.count >= 9, String(decoding: text.prefix(9), as: UTF8.self).lowercased() == "form-data" else {
            r.flags[.multipartInvalidPart] = true
            return (nil, nil)
        }
        var i = text.startIndex + 9
        let end = text.endIndex
        while i < end {
            while i < end, text[i] == 0x20 || text[i] == 0x09 { i += 1 }
            guard i < end else { break }
            if text[i] != 0x3B {
                r.flags[.multipartMissingSemicolon] = true
            } else {
                i += 1
            }
            while i < end, text[i] == 0x20 || text[i] == 0x09 { i += 1 }
            var key: [UInt8] = []
            while i < end, text[i] != 0x3D, text[i] != 0x3B { key.append(T.lower(text[i])); i += 1 }
            while let l = key.last, l == 0x20 { key.removeLast() }
            guard i < end, text[i] == 0x3D else { continue }
            i += 1
            while i < end, text[i] == 0x20 || text[i] == 0x09 { i += 1 }
            var value: [UInt8] = []
            if i < end, text[i] == 0x22 {
                i += 1
                while i < end, text[i] != 0x22 {
                    if text[i] == 0x5C, i + 1 < end, text[i + 1] == 0x22 || text[i + 1] == 0x5C {
                        i += 1
                    }
                    value.append(text[i])
                    i += 1
                }
                i += 1
            } else {
                while i < end, text[i] != 0x3B, text[i] != 0x20 {
                    if text[i] == 0x22 || text[i] == 0x27 || text[i] == 0x5C { r.flags[.multipartInvalidQuoting] = true }
                    value.append(text[i])
                    i += 1
                }
            }
            if key == Array("name".utf8) {
                name = value
            } else if key == Array("filename".utf8) || key == Array("filename*".utf8) {
                filename = value
            }
        }
        return (name, filename)
    }
}

/// XML bodies, read only as far as the rules need them: character data (`XML:/*`) and
/// attribute values (`XML://@*`). Malformed markup sets REQBODY_ERROR.
enum XMLText {
    static func parse(_ body: [UInt8]) -> (text: [UInt8], attributes: [[UInt8]], error: String?) {
        var text: [UInt8] = []
        var attributes: [[UInt8]] = []
        var depth = 0
        var sawRoot = false
        var i = 0
        let n = body.count
        while i < n {
            if body[i] != 0x3C {
                if depth > 0 { text.append(body[i]) }
                i += 1
                continue
            }
            if body[i...].starts(with: Array("<!--".utf8)) {
                guard let e = T.find(Array("-->".utf8), in: body, from: i + 4) else { return (text, attributes, "XML: comment not closed") }
                i = e + 3
                continue
            }
            if body[i...].starts(with: Array("<![CDATA[".utf8)) {
                guard let e = T.find(Array("]]>".utf8), in: body, from: i + 9) else { return (text, attributes, "XML: CDATA not closed") }
                text += body[(i + 9)..<e]
                i = e + 3
                continue
            }
            guard let close = body[i...].firstIndex(of: 0x3E) else { return (text, attributes, "XML: tag not closed") }
            let tag = body[(i + 1)..<close]
            i = close + 1
            if tag.first == 0x3F || tag.first == 0x21 { continue }
            if tag.first == 0x2F {
                depth -= 1
                if depth < 0 { return (text, attributes, "XML: end tag without start tag") }
                continue
            }
            if depth == 0 && sawRoot { return (text, attributes, "XML: extra content at the end of the document") }
            sawRoot = true
            // Attribute values in quotes.
            var j = tag.startIndex
            while j < tag.endIndex {
                if tag[j] == 0x22 || tag[j] == 0x27 {
                    let q = tag[j]
                    guard let e = tag[(j + 1)...].firstIndex(of: q) else { return (text, attributes, "XML: attribute value not closed") }
                    attributes.append(Array(tag[(j + 1)..<e]))
                    j = e + 1
                } else {
                    j += 1
                }
            }
            if tag.last != 0x2F { depth += 1 }
        }
        if !sawRoot { return (text, attributes, "XML: no document element") }
        if depth != 0 { return (text, attributes, "XML: premature end of data") }
        return (text, attributes, nil)
    }
}
