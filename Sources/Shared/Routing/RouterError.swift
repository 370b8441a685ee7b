/// A routing model that cannot be compiled against the given outbounds. The config parser checks the
/// same things with file and JSON path, so this only fires when a model is built by hand or the
/// outbound list does not belong to the config.
public struct RouterError: Error, Equatable, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { reason }
}
