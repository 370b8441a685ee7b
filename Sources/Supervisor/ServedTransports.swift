// The first release serves VMess over plain TCP only. This check is kept in one function so that
// deleting it (and its two call sites) is all the release that adds ws/httpupgrade/TLS needs.

import Shared

/// One line per inbound whose transport is not served yet, e.g.
/// `inbounds[0]: transport "ws" with security "tls" is not served yet (next release); use network tcp with security none`.
func unservedTransportProblems(_ config: Config) -> [String] {
    config.inbounds.compactMap { inbound in
        let stream = inbound.stream
        guard stream.network != .tcp || stream.security != .none else { return nil }
        return "\(inbound.jsonPath): transport \"\(stream.network.rawValue)\" with security \"\(stream.security.rawValue)\" "
            + "is not served yet (next release); use network tcp with security none"
    }
}
