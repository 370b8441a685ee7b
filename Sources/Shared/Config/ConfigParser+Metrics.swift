// `vmessd.metrics` (MetricsSettings): {listen: "IP:port", userLabels: bool}; unknown keys are errors.

extension ConfigParser {
    static func readMetrics(_ node: ConfigNode) throws -> MetricsSettings {
        var r = try node.object()
        var metrics = MetricsSettings()
        if let listen = r.take("listen") {
            let expected = "\"IP:port\" with an IP address literal and a port 1-65535"
            let (host, port) = try readRedirect(listen)
            // The supervisor binds it itself: a name would need a resolver and could change meaning.
            guard let port, let host, let canonical = canonicalIPAddress(host) else { throw listen.mismatch(expected) }
            metrics.host = canonical
            metrics.port = port
        }
        if let labels = r.take("userLabels") { metrics.userLabels = try labels.bool() }
        try r.finish()
        return metrics
    }
}
