// Geodata for one config parse: each file is read at most once and each (file, tag) decoded at most
// once, however many rules use it; everything is dropped when the parse ends, so a process holds only
// the expanded tags, never a whole .dat file.

final class GeoDataCache {
    /// Why a reference could not be expanded; `reason` is the text after the JSON path.
    struct Failure: Error, Equatable {
        var reason: String
    }

    /// geoip.dat is about 10 MB, geosite.dat a few MB; anything near this bound is not geodata.
    static let maximumFileSize = 512 << 20

    let locator: GeoDataLocator
    private var files: [String: (path: String, bytes: [UInt8])] = [:]
    private var sites: [String: [GeoDataDecoder.SiteDomain]] = [:]
    private var ips: [String: IPSet] = [:]

    init(locator: GeoDataLocator) {
        self.locator = locator
    }

    func site(file: String, code: String) throws -> [GeoDataDecoder.SiteDomain] {
        let key = file + "\u{0}" + code.uppercased()
        if let cached = sites[key] { return cached }
        let (path, bytes) = try load(file)
        let decoded: [GeoDataDecoder.SiteDomain]?
        do {
            decoded = try GeoDataDecoder.site(bytes, code: code)
        } catch let error as ProtobufReader.Malformed {
            throw Failure(reason: "\(path) is not a valid geosite file: \(error.reason) at byte \(error.offset)")
        }
        guard let decoded else { throw Failure(reason: "\(file) has no tag \(JSONC.quote(code)) (looked in \(path))") }
        sites[key] = decoded
        return decoded
    }

    func ip(file: String, code: String) throws -> IPSet {
        let key = file + "\u{0}" + code.uppercased()
        if let cached = ips[key] { return cached }
        let (path, bytes) = try load(file)
        let decoded: IPSet?
        do {
            decoded = try GeoDataDecoder.ip(bytes, code: code)
        } catch let error as ProtobufReader.Malformed {
            throw Failure(reason: "\(path) is not a valid geoip file: \(error.reason) at byte \(error.offset)")
        }
        guard let decoded else { throw Failure(reason: "\(file) has no tag \(JSONC.quote(code)) (looked in \(path))") }
        ips[key] = decoded
        return decoded
    }

    private func load(_ file: String) throws -> (path: String, bytes: [UInt8]) {
        if let cached = files[file] { return cached }
        guard let path = locator.find(file) else {
            throw Failure(reason: "\(file) not found (looked in \(locator.candidates(file).joined(separator: ", ")))")
        }
        do {
            let loaded = (path, try FileContents.load(path, limit: Self.maximumFileSize))
            files[file] = loaded
            return loaded
        } catch let failure as FileContents.Failure {
            throw Failure(reason: "cannot read \(path): \(failure.reason)")
        }
    }
}
