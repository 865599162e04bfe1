import Foundation
import GatehouseCore

/// Reads the error objects that clients print instead of the raw body: a Python `dict` repr
/// (`{'error': {'code': 'rate_limit_exceeded'}}`), a Ruby hash (`{"id"=>"unauthorized"}`), a
/// JavaScript object literal (`{ message: "Invalid API key" }`), an object after a prefix
/// (`Error code: 429 - {…}`) or with typographic quotes. SDK exceptions and CLI logs show the
/// server's error this way, and its codes are the same evidence as in the raw JSON.
enum LenientJSON {
    /// The object or array in `text`, read as JSON5 after the notations above are normalised;
    /// nil for HTML and for text without one.
    static func parse(_ text: String) -> Any? {
        guard text.range(of: "<html|<!doctype|<body|<head", options: [.regularExpression, .caseInsensitive]) == nil,
            let start = text.firstIndex(where: { $0 == "{" || $0 == "[" })
        else { return nil }
        let close: Character = text[start] == "{" ? "}" : "]"
        guard let end = text.lastIndex(of: close), end > start else { return nil }
        var slice = String(text[start...end])
        slice = slice.replacingOccurrences(of: "“", with: "\"").replacingOccurrences(of: "”", with: "\"")
        slice = slice.replacingOccurrences(of: "=>", with: ":")
        for (python, json) in [("None", "null"), ("True", "true"), ("False", "false")] {
            slice = slice.replacingOccurrences(
                of: #"([:\[,]\s*)"# + python + #"\b"#, with: "$1" + json, options: .regularExpression)
        }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        guard let value = try? decoder.decode(JSONValue.self, from: Data(slice.utf8)) else { return nil }
        switch value {
        case .object(let o) where !o.isEmpty: return value.foundation
        case .array(let a) where !a.isEmpty: return value.foundation
        default: return nil
        }
    }
}

extension JSONValue {
    /// The Foundation objects `JSONSerialization` returns for this value (what the classifier reads).
    var foundation: Any {
        switch self {
        case .object(let o): o.mapValues(\.foundation)
        case .array(let a): a.map(\.foundation)
        case .string(let s): s
        case .number(let n): NSNumber(value: n)
        case .bool(let b): NSNumber(value: b)
        case .null: NSNull()
        }
    }
}
