// swift-tools-version:6.0
// chatterstream: a pure-Swift streaming inference engine for Resemble AI's Chatterbox TTS models.
import Foundation
import PackageDescription

// Instruction-set policy (see README "Build flavours" and Sources/CChatterKernels/README.md):
// - The default build is portable (any x86-64, any arm64). The few kernels whose speed depends on
//   the instruction set (GEMV over f32 / bf16 weights) live in CChatterKernels, compiled once per
//   ISA with `__attribute__((target(...)))` and chosen at run time by cpuid.
// - The Swift SIMD loops of ChatterTensor are compiled for the baseline by default. Setting
//   CHATTERSTREAM_TARGET_CPU (e.g. `native`, `znver4`, `skylake-avx512`, `x86-64-v3`) at build time
//   recompiles them for that CPU; such a binary only runs on CPUs with that ISA.
let targetCPU = ProcessInfo.processInfo.environment["CHATTERSTREAM_TARGET_CPU"].flatMap {
    $0.isEmpty ? nil : $0
}
let tensorSwiftSettings: [SwiftSetting] = targetCPU.map { cpu in
    [.unsafeFlags(["-target-cpu", cpu == "native" ? ProcessInfo.processInfo.hostCPUName : cpu])]
} ?? []

extension ProcessInfo {
    /// The host CPU as LLVM names it, for `-target-cpu native` (swiftc has no `native` spelling).
    var hostCPUName: String {
        let task = Process()
        task.executableURL = URL(fileURLWithPath: "/bin/sh")
        task.arguments = ["-c", "clang -### -march=native -x c /dev/null 2>&1 | sed -n 's/.*\"-target-cpu\" \"\\([^\"]*\\)\".*/\\1/p'"]
        let pipe = Pipe()
        task.standardOutput = pipe
        try? task.run()
        task.waitUntilExit()
        let name = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? "x86-64" : name
    }
}

let package = Package(
    name: "chatterstream",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ChatterTensor", targets: ["ChatterTensor"]),
        .library(name: "ChatterAudio", targets: ["ChatterAudio"]),
        .library(name: "ChatterModels", targets: ["ChatterModels"]),
        .library(name: "Chatterstream", targets: ["Chatterstream"]),
        .library(name: "ChatterstreamServer", targets: ["ChatterstreamServer"]),
        .executable(name: "chatterstream", targets: ["chatterstream"]),
        .executable(name: "chatter-parity", targets: ["chatter-parity"]),
        .executable(name: "chatter-convert", targets: ["chatter-convert"]),
        .executable(name: "chatter-bench", targets: ["chatter-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Hummingbird's own HTTP field types (named for our X-Audio-* headers) and service group
        // (graceful shutdown when the serving task is cancelled).
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // Hummingbird's HTTP parts in NIO's pipeline (the server's slow-client guard is a handler there).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        // The server's /metrics (Prometheus text format) and voice uploads (multipart/form-data).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
    ],
    targets: [
        // Layer 1: system libraries (Debian: libopenblas-dev, libopus-dev, libogg-dev, libsoxr-dev,
        // libsndfile1-dev, libmp3lame-dev, libavcodec-dev, libsonic-dev), each linked for what the
        // comment beside it says.
        // OpenBLAS: cblas_sgemm for every GEMM (GEMMThreading splits the large ones over our pool).
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // libopus: the Ogg Opus streaming encoder (and `OggOpusDecoder`, which checks it).
        .systemLibrary(
            name: "COpus", path: "Sources/COpus", pkgConfig: "opus",
            providers: [.apt(["libopus-dev"])]),
        // Ogg framing for the Opus stream.
        .systemLibrary(
            name: "COgg", path: "Sources/COgg", pkgConfig: "ogg",
            providers: [.apt(["libogg-dev"])]),
        // libsoxr: the HQ resampler behind reference recordings at any rate (librosa's soxr_hq).
        .systemLibrary(
            name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr",
            providers: [.apt(["libsoxr-dev"])]),
        // LAME has no pkg-config file; the module map links "mp3lame" and includes <lame/lame.h>.
        .systemLibrary(
            name: "CLame", path: "Sources/CLame",
            providers: [.apt(["libmp3lame-dev"])]),
        // FFmpeg's libavcodec: its native AAC (ADTS) and FLAC encoders for the AAC and FLAC outputs.
        .systemLibrary(
            name: "CAVCodec", path: "Sources/CAVCodec", pkgConfig: "libavcodec",
            providers: [.apt(["libavcodec-dev"])]),
        // libsonic: the OpenAI API's `speed` (speech time-scaled without a pitch change). No pkg-config file.
        .systemLibrary(
            name: "CSonic", path: "Sources/CSonic",
            providers: [.apt(["libsonic-dev"])]),
        // libsndfile: reading FLAC, Ogg, MP3 and AIFF reference recordings (WAV is our own reader).
        .systemLibrary(
            name: "CSndfile", path: "Sources/CSndfile", pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"])]),
        // zlib: inflating the Perth checkpoint out of the resemble-perth wheel (ModelStore).
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        // glibc's <malloc.h> (arena cap, trim, heap statistics) for the long-running server.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),

        // ISA-dispatched C kernels (run-time cpuid selection), used by ChatterTensor only.
        .target(
            name: "CChatterKernels",
            exclude: ["README.md"],
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),

        // Layer 3: the tensor library.
        .target(
            name: "ChatterTensor",
            dependencies: [
                "COpenBLAS", "CChatterKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            // Always optimised: the parity tests run the kernels in debug builds too.
            swiftSettings: tensorSwiftSettings + [.unsafeFlags(["-O"])]),

        // Layer 4: audio (WAV, libsndfile for FLAC/MP3/Ogg, resampling: libsoxr HQ and scipy-style
        // polyphase; BS.1770 loudness; Ogg Opus encode/decode; MP3 through LAME; AAC and FLAC through
        // libavcodec; speed through libsonic; HLS over MPEG-TS).
        .target(
            name: "ChatterAudio",
            dependencies: ["ChatterTensor", "CSoxr", "CSndfile", "COpus", "COgg", "CLame", "CAVCodec", "CSonic"],
            swiftSettings: [.unsafeFlags(["-O"])]),

        // Layer 5: the networks, one folder each, built from upstream state-dict names.
        .target(
            name: "ChatterModels",
            dependencies: ["ChatterTensor", "ChatterAudio"],
            swiftSettings: [.unsafeFlags(["-O"])]),

        // Layer 6: the public library: the streaming engine (`Streaming/`) and the model store
        // (`ModelStore/`: download, verify, convert, cache; its tensor schemas in `Generated/`).
        .target(
            name: "Chatterstream",
            dependencies: ["ChatterTensor", "ChatterAudio", "ChatterModels", "CZlib",
                           .product(name: "Logging", package: "swift-log")],
            // Optimised in debug builds too: hashing gigabyte checkpoints at -Onone takes minutes.
            swiftSettings: [.unsafeFlags(["-O"])]),

        // Layer 7: the engine over HTTP (a library, so tests can run it in-process), the CLI, tools
        // and benchmarks.
        .target(
            name: "ChatterstreamServer",
            dependencies: [
                "Chatterstream", "ChatterAudio", "ChatterModels", "CMalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "MultipartKit", package: "multipart-kit"),
            ]),
        // The CLI's folder is `chatterstream-cli`, not `chatterstream`: a name that differs from the
        // library's `Chatterstream` only in case collides on case-insensitive file systems.
        .executableTarget(
            name: "chatterstream",
            dependencies: [
                "Chatterstream", "ChatterAudio", "ChatterTensor", "ChatterstreamServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/chatterstream-cli"),
        .executableTarget(
            name: "chatter-parity",
            dependencies: [
                "ChatterTensor", "ChatterAudio", "ChatterModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/chatter-parity"),
        .executableTarget(
            name: "chatter-convert",
            dependencies: [
                "Chatterstream", "ChatterModels", "ChatterTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/chatter-convert"),
        .executableTarget(
            name: "chatter-bench",
            dependencies: [
                "ChatterTensor", "ChatterModels", "Chatterstream", "COpenBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/chatter-bench"),
        // Fuzzing (tools/fuzz/README.md): the targets, one function per reader of untrusted bytes, and
        // the binary that runs them under libFuzzer (built apart by tools/fuzz/run) or replays files.
        .target(
            name: "ChatterFuzzTargets",
            dependencies: ["ChatterTensor", "ChatterAudio", "ChatterModels", "Chatterstream", "ChatterstreamServer"],
            path: "tools/fuzz/ChatterFuzzTargets"),
        .executableTarget(
            name: "chatter-fuzz",
            dependencies: ["ChatterFuzzTargets"],
            path: "tools/fuzz/chatter-fuzz"),

        // Fixture loading, parity measures and temporary folders shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: ["ChatterTensor"],
            path: "Tests/TestSupport"),
        .testTarget(
            name: "ChatterTensorTests",
            dependencies: ["TestSupport", "ChatterTensor", "COpenBLAS", "COpus", "COgg"]),
        .testTarget(
            name: "ChatterAudioTests",
            dependencies: ["TestSupport", "ChatterAudio", "ChatterTensor", "COgg", "CSndfile"]),
        .testTarget(
            name: "ChatterModelsTests",
            dependencies: ["TestSupport", "ChatterModels", "ChatterAudio", "ChatterTensor"]),
        // The tiny engine (fixture weights, real tokenizer) and a loopback HTTP client, shared by the
        // library's and the server's tests.
        .target(
            name: "ChatterstreamTestSupport",
            dependencies: ["TestSupport", "Chatterstream", "ChatterModels", "ChatterTensor"],
            path: "Tests/ChatterstreamTestSupport"),
        .testTarget(
            name: "ChatterstreamTests",
            dependencies: ["TestSupport", "ChatterstreamTestSupport", "Chatterstream", "ChatterModels", "ChatterAudio", "ChatterTensor",
                           "CZlib"]),
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["ChatterFuzzTargets"]),
        .testTarget(
            name: "ChatterstreamServerTests",
            dependencies: ["TestSupport", "ChatterstreamTestSupport", "ChatterstreamServer", "Chatterstream", "ChatterModels", "ChatterAudio"]),
    ]
)
