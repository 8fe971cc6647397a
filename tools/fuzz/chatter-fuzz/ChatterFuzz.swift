import ChatterFuzzTargets
import Foundation

// One binary holds every target; `CHATTER_FUZZ_TARGET` names the one libFuzzer drives. tools/fuzz/run
// builds it with `-sanitize=fuzzer,address -D FUZZING` into `.build-fuzz` (libFuzzer supplies
// `main`); the package's own build gets a `main` that replays files instead.

#if FUZZING
/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    FuzzMain.target.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}

/// libFuzzer's driver, started from the executable's entry point: SwiftPM's debug builds link an
/// executable's `main` as an alias of `<module>_main` (here `chatter_fuzz_main`), so libFuzzer's
/// own `main` is not the one that runs.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("chatter_fuzz_main")
public func chatterFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in fuzzOneInput(bytes, count) }
}

enum FuzzMain {
    static let target: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["CHATTER_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("set CHATTER_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return target
    }()
}
#else
/// Without libFuzzer: `chatter-fuzz <target> <file or folder>…` runs each file through the target
/// once (replaying a corpus or a crash), and prints how many ran.
@main
enum FuzzReplay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: chatter-fuzz <\(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))> <file or folder>…")
            exit(2)
        }
        var ran = 0
        for argument in arguments.dropFirst() {
            for file in files(at: URL(fileURLWithPath: argument)) {
                guard let data = FileManager.default.contents(atPath: file.path) else {
                    print("chatter-fuzz: cannot read \(file.path)")
                    exit(1)
                }
                target.run(data)
                ran += 1
            }
        }
        print("chatter-fuzz \(name): \(ran) inputs ran, none crashed")
    }

    static func files(at url: URL) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [url] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { url.appendingPathComponent($0) }
    }
}
#endif
