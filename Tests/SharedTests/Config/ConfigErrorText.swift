@testable import Shared

/// The text of the error a config fails with, or nil when it parses (for tests that compare messages).
func configErrorText(_ text: String) -> String? {
    do {
        _ = try ConfigParser.parse(text: text, sourceFile: "config.json")
        return nil
    } catch {
        return "\(error)"
    }
}
