import ChatterFuzzTargets
import Foundation
import Testing

/// Replays every committed fuzz input through its target without libFuzzer: the seeds
/// (tools/fuzz/seeds/<target>) and every crash the fuzzers found (tools/fuzz/regressions/<target>,
/// each fixed). A crash here is a reader that regressed; a run of tools/fuzz/run finds new ones.
@Suite struct FuzzRegressionTests {
    static let fuzzFolder = Repository.root.appendingPathComponent("tools/fuzz")

    static func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let folder = fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { folder.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func committedInputsRunWithoutCrashing(target: FuzzTarget) throws {
        let seeds = Self.inputs("seeds", target), crashes = Self.inputs("regressions", target)
        for file in seeds + crashes { target.run(try Data(contentsOf: file)) }
        print("fuzz \(target.rawValue): \(seeds.count) seeds and \(crashes.count) kept crashes ran")
        #expect(!seeds.isEmpty, "tools/fuzz/seeds/\(target.rawValue) holds the seeds")
    }
}
