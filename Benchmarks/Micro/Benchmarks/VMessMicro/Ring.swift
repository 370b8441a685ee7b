/// Inputs used in turn, so that stateful checks (replay filter, session history) never see one twice
/// within their memory: each benchmark sizes those to remember far fewer than `items.count`.
final class Ring<Element> {
    private let items: [Element]
    private var next = 0

    init(_ items: [Element]) {
        precondition(!items.isEmpty)
        self.items = items
    }

    func take() -> Element {
        defer { next = next + 1 == items.count ? 0 : next + 1 }
        return items[next]
    }
}
