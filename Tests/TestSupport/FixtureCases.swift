import ChatterTensor

extension Fixture {
    /// The case names of a fixture file, for `@Test(arguments:)` (`Case` holds JSON values and is not
    /// `Sendable`). A missing file gives no names here; `load(_:case:)` then reports it in the test.
    public static func caseNames(_ name: String) -> [String] {
        (try? Fixture(name))?.cases.map(\.name) ?? []
    }

    /// Loads `name` and finds the case called `caseName` in it.
    public static func load(_ name: String, case caseName: String) throws -> (Fixture, Case) {
        let fixture = try Fixture(name)
        guard let found = fixture.cases.first(where: { $0.name == caseName }) else {
            throw TensorError.invalidArgument("\(name): no case \(caseName)")
        }
        return (fixture, found)
    }
}
