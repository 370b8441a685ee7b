// The set of key paths a JSON document holds ("config.inbounds[].settings.users[].id"), for telling
// which keys one document has that another lacks. Array elements share one path ("[]"), so order and
// count do not matter, only which keys appear where.

import struct Foundation.Data
import class Foundation.JSONSerialization

public enum JSONKeyPaths {
    /// Every key path in `data` (a JSON document). Throws if it is not JSON.
    public static func of(_ data: Data) throws -> Set<String> {
        var paths = Set<String>()
        collect(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), prefix: "", into: &paths)
        return paths
    }

    /// The paths `data` has and `reference` does not, sorted.
    public static func missing(from reference: Data, in data: Data) throws -> [String] {
        try of(data).subtracting(of(reference)).sorted()
    }

    private static func collect(_ value: Any, prefix: String, into paths: inout Set<String>) {
        if let object = value as? [String: Any] {
            for (key, child) in object {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                paths.insert(path)
                collect(child, prefix: path, into: &paths)
            }
        } else if let array = value as? [Any] {
            for child in array { collect(child, prefix: "\(prefix)[]", into: &paths) }
        }
    }
}
