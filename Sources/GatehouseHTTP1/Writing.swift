import GatehouseCore
import NIOCore
import NIOHTTP1

// MARK: Writing

extension ByteBuffer {
    @inline(__always)
    package mutating func writeField(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    @inline(__always)
    package mutating func writeField(_ name: StaticString, _ value: String) {
        writeStaticString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// Writes a field whose name or value comes from configuration or a check: every control
    /// character is dropped (C0 except HTAB, DEL, and C1 as UTF-8), so a value can neither end
    /// the field nor carry a terminal escape sequence to whoever prints the response.
    package mutating func writeCheckedField(_ name: String, _ value: String) {
        writeCheckedValue(name)
        writeStaticString(": ")
        writeCheckedValue(value)
        writeStaticString("\r\n")
    }

    package mutating func writeCheckedValue(_ value: String) {
        var value = value
        value.withUTF8 { u in
            // C1 controls (U+0080-U+009F) are the UTF-8 pairs C2 80 ... C2 9F.
            @inline(__always) func isControl(_ i: Int) -> Bool {
                let b = u[i]
                if b < 0x20 { return b != 0x09 }
                if b == 0x7F { return true }
                return b == 0xC2 && i + 1 < u.count && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F
            }
            var clean = true
            for i in 0..<u.count where isControl(i) { clean = false; break }
            if clean {
                writeBytes(UnsafeRawBufferPointer(u))
            } else {
                var i = 0
                while i < u.count {
                    if isControl(i) {
                        i += u[i] == 0xC2 ? 2 : 1
                    } else {
                        writeInteger(u[i])
                        i += 1
                    }
                }
            }
        }
    }

    /// Writes a status line for `status` with its standard reason phrase.
    package mutating func writeStatusLine(minor: Int, status: Int) {
        writeStaticString(minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeDecimal(status)
        writeStaticString(" ")
        // The standard reason phrase (NIOHTTP1 knows them all).
        writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        writeStaticString("\r\n")
    }

    @inline(__always)
    package mutating func writeDecimal(_ value: Int) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(0x30 + value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { d in
            let n = ASCIIDigits.decimal(value, endingAt: d)
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: d[(d.count - n)...]))
        }
    }

    /// Writes a chunk header (hex size CRLF).
    package mutating func writeChunkHeader(_ size: Int) {
        var shift = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4 * 4 - 4
        if size == 0 { writeInteger(UInt8(0x30)) }
        while shift >= 0 && size != 0 {
            writeInteger(ASCIIDigits.hex(size >> shift))
            shift -= 4
        }
        writeStaticString("\r\n")
    }
}
