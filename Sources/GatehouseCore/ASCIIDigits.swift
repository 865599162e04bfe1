/// The digits every byte writer of the project writes: HTTP heads and chunk sizes, problem bodies,
/// call-log rows, request ids. One table, one decimal routine.
public enum ASCIIDigits {
    /// The lowercase hexadecimal digit of `nibble` (its low four bits).
    @inlinable @inline(__always)
    public static func hex(_ nibble: Int) -> UInt8 {
        let v = UInt8(truncatingIfNeeded: nibble & 0xF)
        return v < 10 ? 0x30 + v : 0x57 + v  // "0"..."9", "a"..."f"
    }

    /// The value of a hexadecimal digit (either case), nil for any other byte.
    @inlinable @inline(__always)
    public static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    /// The most bytes `decimal` writes: 19 digits and a sign.
    public static let maxDecimalBytes = 20

    /// Writes the decimal digits of `value` ("-" first when negative) so that they end at the end of
    /// `buffer` (at least `maxDecimalBytes` long); returns how many bytes were written.
    @inlinable
    public static func decimal(_ value: Int, endingAt buffer: UnsafeMutableRawBufferPointer) -> Int {
        var v = value.magnitude
        var n = 0
        let end = buffer.count
        repeat {
            buffer[end - 1 - n] = UInt8(truncatingIfNeeded: 0x30 &+ v % 10)
            v /= 10
            n += 1
        } while v > 0
        if value < 0 {
            buffer[end - 1 - n] = 0x2D
            n += 1
        }
        return n
    }
}
