import ArgumentParser
import ChatterModels
import COpenBLAS
import ChatterTensor
import Chatterstream
import Foundation

/// `swift run -c release chatter-bench <suite>`: one JSON document on stdout, notes on stderr.
@main
struct ChatterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatter-bench",
        abstract: "Benchmarks of chatterstream's building blocks, printed as JSON.")

    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case gemm, gemv, conv, attention, membw, load, perth, t3, s3gen, conditionals, stream, all
        case streamTax = "stream-tax"
        case t3KVCache = "t3-kv-cache"
        case firstRun = "first-run"
    }

    @Argument(help: "Which suite to run: \(Suite.allCases.map(\.rawValue).joined(separator: ", ")).")
    var suite: Suite = .all

    @Option(help: "Threads for our kernels and for OpenBLAS (default: CHATTERSTREAM_THREADS or all cores).")
    var threads: Int = ThreadPool.defaultThreadCount

    @Option(help: "Timed repetitions per case; the median is reported.")
    var repetitions: Int = 9

    @Option(help: "MiB of distinct weight copies the GEMV suite rotates through, to defeat the caches.")
    var weightFootprint: Int = 512

    @Option(help: "MiB read by the memory-bandwidth probe.")
    var bufferSize: Int = 1024

    @Option(help: "Converted model directory for the load suite (chatter-convert output).")
    var model: String?

    @Option(help: "Perth checkpoint for the perth suite (tools/perth/fetch-checkpoint.sh fetches it).")
    var perthCheckpoint: String = ".cache/perth/perth_net_250000.pth.tar"

    @Option(help: "Seconds of 24 kHz audio the perth suite watermarks per call.")
    var perthSeconds: Int = 10

    @Option(help: "Full-size T3 f32 weights for the t3 suite: a safetensors file or a directory holding t3.safetensors (or an upstream t3_*.safetensors).")
    var t3Model: String?

    @Option(help: "The upstream checkpoint file (or directory) PyTorch loads in the t3 suite; default: --t3-model. Needed when --t3-model is a converted Turbo T3 (its Conv1D weights are stored transposed).")
    var t3UpstreamModel: String?

    @Option(help: "bf16 T3 weights for the t3 suite (chatter-convert --dtype t3=bf16 output); default: converted in memory from --t3-model.")
    var t3Bf16Model: String?

    @Option(help: "f16 T3 weights for the t3 suite (chatter-convert --dtype t3=f16 output); default: converted in memory from --t3-model.")
    var t3F16Model: String?

    @Option(help: "q8_0 T3 weights for the t3 suite (chatter-convert --dtype t3=q8_0 output); default: converted in memory from --t3-model.")
    var t3Q8Model: String?

    @Option(help: "Teacher-forced steps and sampled tokens of the t3 suite's error budget of each reduced precision against f32 (0 skips it).")
    var t3ErrorSteps: Int = 200

    @Option(help: "KV cache precisions the t3-kv-cache suite compares, comma-separated, f32 first (the reference): \(KVCache.Precision.allCases.map(\.rawValue).joined(separator: ", ")).")
    var kvCachePrecisions = "f32,f16,bf16"

    @Option(help: "Context lengths (positions the first timed decode step attends over) of the t3-kv-cache suite, comma-separated.")
    var kvCacheContexts = "100,800"

    @Option(help: "Python of the reference venv (torch + chatterbox-tts) that times upstream PyTorch in the t3 and s3gen suites; empty to skip it.")
    var python: String = "tools/fixtures/.venv/bin/python"

    @Option(help: "Teacher-forced CFG decode steps timed by the t3 suite.")
    var t3Steps: Int = 40

    @Option(help: "Prefill repetitions of the t3 suite (the median is reported).")
    var t3PrefillRepetitions: Int = 3

    @Option(help: "S3Gen weights for the s3gen suite: a safetensors file with flow.* and mel2wav.* keys, or a directory holding s3gen.safetensors / s3gen_meanflow.safetensors.")
    var s3genModel: String?

    @Option(name: .customLong("stream-s3gen-precision"), help: "S3Gen's arithmetic in the stream suite's engines: auto (the engine's default: bf16 on CPUs with avx512_bf16), f32 or bf16.")
    var streamS3GenPrecision: S3GenPrecision = .auto

    @Option(name: .customLong("stream-strategy"), help: "Chunk strategy of the stream suite's engines: paced (the engine's default), adaptive or sentence_aligned.")
    var streamStrategy = SynthesisOptions().strategy

    @Option(name: .customLong("stream-flow-prompt-tokens"), help: "Voice prompt tokens the stream suite's first push decodes (0: the whole prompt; default: the engine's).")
    var streamFlowPromptTokens = SynthesisOptions().flowPromptTokens

    @Option(help: "S3Gen precisions the s3gen suite times, comma-separated, f32 first (the others report their error against it): f32, bf16, auto. bf16 is skipped, and said so, on a CPU without avx512_bf16.")
    var s3genPrecisions = "f32,bf16"

    @Option(help: "Timed repetitions of the s3gen suite (each is a full encoder + CFM + HiFT pass; the median is reported).")
    var s3genRepetitions: Int = 1

    @Option(help: "Prompt tokens of the s3gen suite's reference (250 = 10 s; the prompt mel has twice as many frames).")
    var s3genPromptTokens: Int = 250

    @Option(help: "New speech tokens the s3gen suite decodes (25 per second of audio).")
    var s3genTokens: Int = 50


    @Option(help: "Converted model directory for the stream suite.")
    var streamModel: String?

    @Option(help: "Upstream checkpoint directory (the files chatter-convert read) for the stream suite's PyTorch reference.")
    var streamUpstream: String?

    @Option(help: "Text the stream suite speaks.")
    var streamText = "Streaming speech synthesis in Swift: the first chunk arrives while the rest is still being generated."

    @Option(help: "Language of the stream suite's text for a multilingual model (one of its 23 codes; upstream gets it as language_id).")
    var streamLanguage: String?

    @Option(help: "Speech tokens per run of the stream suite (25 per second; random weights rarely stop early).")
    var streamTokens = 100

    @Option(help: "First-chunk sizes the stream suite measures, comma-separated.")
    var streamFirstChunks = "10,25"

    @Option(help: "Checkpoint directories for the stream-tax suite, comma-separated (s3gen(_meanflow).safetensors + conds.pt or conds.safetensors; one per seed).")
    var taxModels = "generated/chatterbox-turbo"

    @Option(help: "Speech tokens the stream-tax suite streams.")
    var taxTokens = 150

    @Option(help: "Chunk schedules of the stream-tax suite, ';'-separated; each a list of sizes whose last repeats (25,75 = 25 then 75 at a time).")
    var taxSchedules = "25,75"

    @Option(help: "Left contexts (tokens) of the stream-tax suite, comma-separated; 'all' for unbounded.")
    var taxContexts = "100,all"

    @Option(help: "Prompt tokens the first streamed push decodes in the stream-tax suite (later pushes decode all of it), comma-separated; 'all' for the whole prompt.")
    var taxPrompts = "all"

    @Option(name: .customLong("tax-s3gen-precision"), help: "S3Gen's arithmetic in the stream-tax suite: f32 (the reference path) or bf16 (what auto picks on avx512_bf16).")
    var taxS3GenPrecision: S3GenPrecision = .f32

    @Option(help: "The upstream timing script the s3gen suite runs.")
    var s3genScript: String = "tools/bench/s3gen_upstream.py"

    @Option(help: "Model directory for the conditionals suite: ve.safetensors and s3gen.safetensors (or s3gen_meanflow.safetensors), upstream or converted.")
    var conditionalsModel: String?

    @Option(help: "Timed repetitions of the conditionals suite per recipe (the median is reported).")
    var conditionalsRepetitions: Int = 3

    @Option(name: .customLong("first-run-model"), help: "Converted model directory for the first-run suite.")
    var firstRunModel: String?

    @Option(name: .customLong("first-run-processes"), help: "Fresh processes the first-run suite times (the median is reported).")
    var firstRunProcesses: Int = 3

    @Option(name: .customLong("first-run-syntheses"), help: "Syntheses each process of the first-run suite runs in a row (the first against the later ones).")
    var firstRunSyntheses: Int = 3

    @Flag(name: .customLong("first-run-one-shot"), help: "The first-run suite speaks one-shot (one S3Gen call, as `chatterstream say`) instead of streaming.")
    var firstRunOneShot = false

    @Flag(name: .customLong("first-run-child"), help: .hidden)
    var firstRunChild = false

    mutating func run() async throws {
        precondition(threads >= 1 && repetitions >= 1, "threads and repetitions must be positive")
        ThreadPool.shared.threadCount = threads
        openblas_set_num_threads(Int32(threads))
        if suite == .firstRun {
            guard let firstRunModel else { throw ValidationError("the first-run suite needs --first-run-model <converted model directory>") }
            guard firstRunProcesses >= 1, firstRunSyntheses >= 2 else { throw ValidationError("--first-run-processes ≥ 1 and --first-run-syntheses ≥ 2") }
            let bench = FirstRunBench(model: URL(fileURLWithPath: firstRunModel), text: streamText, maxTokens: streamTokens,
                                      processes: firstRunProcesses, syntheses: firstRunSyntheses, oneShot: firstRunOneShot, threads: threads)
            if firstRunChild { return try await bench.runChild() }
            let document: [String: Any] = ["machine": Machine.describe(threads: threads), "suite": suite.rawValue, "first_run": try bench.run()]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            FileHandle.standardOutput.write(data)
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        var document: [String: Any] = ["machine": Machine.describe(threads: threads), "suite": suite.rawValue]
        if suite == .membw || suite == .all {
            document["membw"] = MemoryBandwidth(megabytes: bufferSize, repetitions: repetitions).run()
        }
        if suite == .gemv || suite == .all {
            document["gemv"] = GEMVBench(footprintMiB: weightFootprint, repetitions: repetitions).run()
        }
        if suite == .conv || suite == .all {
            document["conv"] = ConvBench(repetitions: repetitions).run()
        }
        if suite == .attention || suite == .all {
            document["attention"] = AttentionBench(repetitions: repetitions).run()
        }
        if suite == .gemm || suite == .all {
            document["gemm"] = GEMMBench(repetitions: repetitions).run()
        }
        if suite == .s3gen || (suite == .all && s3genModel != nil) {
            guard let s3genModel else { throw ValidationError("the s3gen suite needs --s3gen-model <s3gen.safetensors or its directory>") }
            let gemm = (document["gemm"] as? [String: Any]) ?? GEMMBench(repetitions: repetitions).run()
            document["gemm"] = gemm
            let peak = ((gemm["cases"] as? [[String: Any]]) ?? []).compactMap { $0["gflop_s"] as? Double }.max() ?? 0
            var precisions = try s3genPrecisions.split(separator: ",").map {
                guard let p = S3GenPrecision(rawValue: String($0)) else {
                    throw ValidationError("--s3gen-precisions: '\($0)' is not one of \(S3GenPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return p
            }
            guard precisions.first == .f32 else { throw ValidationError("--s3gen-precisions: f32 comes first (the others are compared with it)") }
            if KernelISA.current < .avx512bf16 && precisions.contains(.bf16) {
                note("s3gen: skipping bf16: this CPU (\(KernelISA.current)) has no avx512_bf16, where bf16 weights are only widened back to f32")
                precisions.removeAll { $0 == .bf16 }
            }
            document["s3gen"] = try S3GenBench(model: s3genModel, precisions: precisions, repetitions: s3genRepetitions, threads: threads,
                                               promptTokens: s3genPromptTokens, newTokens: s3genTokens,
                                               python: python.isEmpty ? nil : python, script: s3genScript,
                                               gemmPeak: peak).run()
        }
        if suite == .load || (suite == .all && model != nil) {
            guard let model else { throw ValidationError("the load suite needs --model <converted model directory>") }
            document["load"] = try LoadBench(model: URL(fileURLWithPath: model), repetitions: repetitions).run()
        }
        if suite == .perth || (suite == .all && FileManager.default.fileExists(atPath: perthCheckpoint)) {
            document["perth"] = try PerthBench(checkpoint: perthCheckpoint, repetitions: repetitions, seconds: perthSeconds).run()
        }
        if suite == .t3 || (suite == .all && t3Model != nil) {
            guard let t3Model else { throw ValidationError("the t3 suite needs --t3-model <f32 T3 safetensors file or directory>") }
            let reduced = [DType.bf16: t3Bf16Model, .f16: t3F16Model, .q8_0: t3Q8Model].compactMapValues { $0 }
            document["t3"] = try T3Bench(weights: t3Model, upstreamWeights: t3UpstreamModel ?? t3Model, reducedWeights: reduced, python: python,
                                         script: "tools/bench/t3_upstream.py", threads: threads, steps: t3Steps,
                                         prefillRepetitions: t3PrefillRepetitions, bandwidthMiB: bufferSize, errorSteps: t3ErrorSteps).run()
        }
        if suite == .t3KVCache {
            guard let t3Model else { throw ValidationError("the t3-kv-cache suite needs --t3-model <f32 T3 safetensors file or directory>") }
            let precisions = try kvCachePrecisions.split(separator: ",").map {
                let name = $0.trimmingCharacters(in: .whitespaces)
                guard let precision = KVCache.Precision(rawValue: name) else {
                    throw ValidationError("--kv-cache-precisions: '\(name)' is not one of \(KVCache.Precision.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return precision
            }
            guard precisions.first == .f32 else { throw ValidationError("--kv-cache-precisions: f32 comes first (the others are compared with it)") }
            let contexts = kvCacheContexts.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !contexts.isEmpty, contexts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--kv-cache-contexts: positive integers, e.g. 100,800") }
            // The weights given, f32 first (the error budget's); --t3-f16-model is not read by this suite.
            let weights = [(DType.f32, t3Model), (.bf16, t3Bf16Model), (.q8_0, t3Q8Model)].compactMap { dtype, path in path.map { (dtype: dtype, path: $0) } }
            document["t3_kv_cache"] = try T3KVCacheBench(weights: weights, kvCachePrecisions: precisions, contexts: contexts, steps: t3Steps,
                                                         errorSteps: t3ErrorSteps).run()
        }
        if suite == .stream || (suite == .all && streamModel != nil) {
            guard let streamModel else { throw ValidationError("the stream suite needs --stream-model <converted model directory>") }
            let sizes = streamFirstChunks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError("--stream-first-chunks: positive integers, e.g. 10,25") }
            document["stream"] = try await StreamBench(model: URL(fileURLWithPath: streamModel), upstreamCheckpoint: streamUpstream,
                                                       python: python.isEmpty ? nil : python, threads: threads, text: streamText,
                                                       language: streamLanguage, maxTokens: streamTokens, firstChunkSizes: sizes, seed: 1,
                                                       s3genPrecision: streamS3GenPrecision, strategy: streamStrategy,
                                                       flowPromptTokens: streamFlowPromptTokens, perthCheckpoint: perthCheckpoint).run()
        }
        if suite == .streamTax {
            let schedules = taxSchedules.split(separator: ";").map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
            guard !schedules.isEmpty, schedules.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 > 0 } }) else {
                throw ValidationError("--tax-schedules: ';'-separated lists of positive sizes, e.g. 25,75;25,150")
            }
            let contexts: [Int?] = try taxContexts.split(separator: ",").map {
                let text = $0.trimmingCharacters(in: .whitespaces)
                if text == "all" { return nil }
                guard let n = Int(text), n > 0 else { throw ValidationError("--tax-contexts: positive token counts or 'all'") }
                return n
            }
            let prompts: [Int?] = try taxPrompts.split(separator: ",").map {
                let text = $0.trimmingCharacters(in: .whitespaces)
                if text == "all" { return nil }
                guard let n = Int(text), n > 0 else { throw ValidationError("--tax-prompts: positive token counts or 'all'") }
                return n
            }
            document["stream_tax"] = try StreamTaxBench(models: taxModels.split(separator: ",").map(String.init), tokens: taxTokens,
                                                        schedules: schedules, contexts: contexts, prompts: prompts,
                                                        precision: taxS3GenPrecision).run()
        }
        if suite == .conditionals || (suite == .all && conditionalsModel != nil) {
            guard let conditionalsModel else { throw ValidationError("the conditionals suite needs --conditionals-model <model directory>") }
            document["conditionals"] = try ConditionalsBench(model: conditionalsModel, repetitions: conditionalsRepetitions,
                                                             threads: threads, python: python.isEmpty ? nil : python,
                                                             script: "tools/bench/conditionals_upstream.py").run()
        }
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}

/// A human note on stderr (stdout carries only the JSON document).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Monotonic nanoseconds.
func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Rounds for JSON readability.
func rounded(_ value: Double, _ digits: Int = 3) -> Double {
    let scale = pow(10, Double(digits))
    return (value * scale).rounded() / scale
}
extension S3GenPrecision: ExpressibleByArgument {}
extension ChunkStrategy: ExpressibleByArgument {}
