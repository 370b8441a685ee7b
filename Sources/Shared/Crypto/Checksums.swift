/// The two non-cryptographic checksums VMess uses.
public enum Checksum {
    /// CRC-32/IEEE (zlib): reflected polynomial 0xEDB88320, init and xor-out 0xFFFFFFFF (§5.2 AuthID).
    public static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// FNV-1a 32-bit (§6.1 command-section checksum, §9.10 legacy chunk checksum).
    @inline(__always)
    public static func fnv1a32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var h: UInt32 = 0x811C_9DC5
        for b in bytes { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }

    public static func fnv1a32(_ raw: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in raw { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }
}
