// Every transport the config parser accepts — tcp, ws, httpupgrade, grpc, h2, each with security none or tls —
// is served by the worker (Sources/Worker/Transport), so nothing is refused any more. The function
// stays as the one place to list a transport that parses but is not served; its call sites can go
// once nothing is ever listed again.

import Shared

/// One line per inbound whose transport is not served; currently none.
func unservedTransportProblems(_ config: Config) -> [String] {
    []
}
