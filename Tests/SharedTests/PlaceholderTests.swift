import XCTest
@testable import Shared
final class PlaceholderTests: XCTestCase { func testNothing() {} }
