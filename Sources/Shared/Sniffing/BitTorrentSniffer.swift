/// The BitTorrent peer wire handshake: byte 19, then "BitTorrent protocol" (BEP 3). Operators block
/// it with `"protocol": ["bittorrent"]` rules.
enum BitTorrentSniffer {
    private static let header: [UInt8] = [19] + Array("BitTorrent protocol".utf8)

    static func sniff(_ bytes: ArraySlice<UInt8>) -> SniffResult {
        let n = min(bytes.count, header.count)
        guard bytes.prefix(n).elementsEqual(header.prefix(n)) else { return .unknown }
        return n == header.count ? .found(protocol: "bittorrent", domain: nil) : .needMore
    }
}
