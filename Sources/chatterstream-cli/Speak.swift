import ArgumentParser
import ChatterAudio
import ChatterTensor
import Chatterstream
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension StreamingTTS.Device: ExpressibleByArgument {}
extension ChunkStrategy: ExpressibleByArgument {}
extension StreamingTTS.Precision: ExpressibleByArgument {}
extension KVCache.Precision: ExpressibleByArgument {}
extension S3GenPrecision: ExpressibleByArgument {}
extension AudioFormat: ExpressibleByArgument {}

/// Options shared by `say`, `stream` and `info`: which model, where it runs.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model family, fetched from the hub and cached on first use (\(ModelFamily.allCases.map(\.rawValue).joined(separator: ", "))).")
    var model: ModelFamily = .chatterbox

    @Option(name: .customLong("model-dir"), help: "A converted model directory (chatter-convert output) to use instead of the hub.")
    var modelDirectory: String?

    @Option(help: "Hub revision (branch, tag or commit).")
    var revision = "main"

    @Option(help: "cpu, cuda or auto.")
    var device: StreamingTTS.Device = .auto

    @Option(help: "T3 precision: auto (as converted), f32 or bf16.")
    var precision: StreamingTTS.Precision = .auto

    @Option(help: "How T3's KV cache stores keys and values: f32, f16 or bf16 (16 bits halve the cache bytes a decode step reads; default: f32 beside f32 T3 weights, f16 beside bf16, f16 or q8_0 ones).")
    var kvCachePrecision: KVCache.Precision?

    @Option(name: .customLong("s3gen-precision"),
            help: "S3Gen's matrix products: auto (bf16 on CPUs with avx512_bf16, else f32), f32 (the reference) or bf16.")
    var s3genPrecision: S3GenPrecision = .auto

    @Flag(name: .customLong("no-watermark"), help: "Do not embed the Perth watermark (on by default).")
    var noWatermark = false

    func engine(options: SynthesisOptions, maxQueuedRuns: Int? = nil) -> StreamingTTS {
        let source: StreamingTTS.ModelSource = modelDirectory.map { .directory(URL(fileURLWithPath: $0)) }
            ?? .family(model, revision: revision)
        return StreamingTTS(model: source, device: device, options: options, watermark: !noWatermark, precision: precision,
                            kvCachePrecision: kvCachePrecision, s3genPrecision: s3genPrecision, maxQueuedRuns: maxQueuedRuns)
    }
}

/// `SynthesisOptions` as command-line options (one flag per field, the field's wire name in kebab
/// case); unset sampling ones take the family's upstream defaults.
struct SynthesisArguments: ParsableArguments {
    @Option(help: "Reference recording to clone (WAV, FLAC, MP3, Ogg), a saved conditionals .safetensors, or 'builtin'.")
    var voice = "builtin"

    @Option(parsing: .unconditional, help: "Seed of every random draw: the same seed gives the same audio.")
    var seed: UInt64?

    @Option(help: "Language of the text, an ISO 639-1 code (multilingual models: \(ModelFamily.chatterboxMultilingual.languageCodes.joined(separator: ", ")); none: no language tag, as upstream).")
    var language: String?

    @Option(parsing: .unconditional, help: "Sampling temperature.") var temperature: Float?
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Top-k.") var topK: Int?
    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Top-p.") var topP: Float?
    @Option(name: .customLong("min-p"), parsing: .unconditional, help: "Min-p (original family).") var minP: Float?
    @Option(name: .customLong("repetition-penalty"), parsing: .unconditional, help: "Repetition penalty.") var repetitionPenalty: Float?
    @Option(name: .customLong("cfg-weight"), parsing: .unconditional, help: "Classifier-free guidance weight (original family).") var cfgWeight: Float?
    @Option(parsing: .unconditional, help: "Emotion exaggeration (original family).") var exaggeration: Float?
    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Most speech tokens per text piece (25 per second).") var maxTokens: Int?
    @Option(name: .customLong("first-chunk-tokens"), parsing: .unconditional, help: "Speech tokens in the first chunk.")
    var firstChunkTokens = SynthesisOptions().firstChunkTokens
    @Option(name: .customLong("chunk-tokens"), parsing: .unconditional, help: "Speech tokens in each later chunk (adaptive and sentence_aligned).")
    var chunkTokens = SynthesisOptions().chunkTokens
    @Option(help: "paced (later chunks sized by playback), adaptive (fixed sizes) or sentence_aligned.")
    var strategy = SynthesisOptions().strategy
    @Option(help: "Speed, 0.25 to 4 (pitch unchanged).") var speed: Float = 1
    @Option(name: .customLong("flow-steps"), parsing: .unconditional,
            help: "S3Gen flow-matching steps, 1 to 32 (default: the model's upstream count, 2 for Turbo, 10 for the original family).")
    var flowSteps: Int?
    @Option(name: .customLong("flow-prompt-tokens"), parsing: .unconditional,
            help: "Voice prompt tokens the first streamed chunk decodes: 0 for the whole prompt, or at least 10 (default: \(SynthesisOptions().flowPromptTokens)).")
    var flowPromptTokens: Int?

    /// Range checks at parse time, before any model is loaded (the model-dependent bound on
    /// `--max-tokens` and whether the model takes `--language` are checked by the engine). Every
    /// family's defaults are in range, so resolving for the multilingual one (which accepts every
    /// supported language) checks exactly the values given.
    func validate() throws {
        do {
            _ = try options.validate(for: .chatterboxMultilingual)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var options: SynthesisOptions {
        var c = SynthesisOptions()
        c.seed = seed
        c.language = language
        c.temperature = temperature
        c.topK = topK
        c.topP = topP
        c.minP = minP
        c.repetitionPenalty = repetitionPenalty
        c.cfgWeight = cfgWeight
        c.exaggeration = exaggeration
        c.maxTokens = maxTokens
        c.firstChunkTokens = firstChunkTokens
        c.chunkTokens = chunkTokens
        c.strategy = strategy
        c.speed = speed
        c.flowSteps = flowSteps
        if let flowPromptTokens { c.flowPromptTokens = flowPromptTokens }
        return c
    }
}

/// Counts chunks and audio, and draws a progress line on stderr when it is a terminal.
final class SynthesisProgress {
    let started = ContinuousClock.now
    let live = isatty(STDERR_FILENO) == 1
    var chunks = 0
    var samples = 0
    var firstChunk: Duration?

    var elapsed: Double { Self.seconds(ContinuousClock.now - started) }
    var audioSeconds: Double { Double(samples) / 24_000 }

    func add(_ chunk: AudioChunk) {
        chunks += 1
        samples += chunk.sampleCount
        if firstChunk == nil && chunk.sampleCount > 0 { firstChunk = ContinuousClock.now - started }
        if live {
            FileHandle.standardError.write(Data(String(format: "\r\u{1B}[K%d chunks, %.2f s of audio, RTF %.2f",
                                                       chunks, audioSeconds, elapsed / max(audioSeconds, 1e-9)).utf8))
        }
    }

    func summary() -> String {
        String(format: "%.2f s of audio in %d chunks; first chunk after %.3f s; %.2f s total, real-time factor %.3f",
               audioSeconds, chunks, firstChunk.map(Self.seconds) ?? 0, elapsed, elapsed / max(audioSeconds, 1e-9))
    }

    func finish(quiet: Bool) {
        if live { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if !quiet { FileHandle.standardError.write(Data((summary() + "\n").utf8)) }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// `chatterstream say "text" -o out.wav`: speak text to a file.
struct Say: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Speak text to an audio file (.wav, .mp3, .opus/.ogg, .aac, .flac, .pcm).",
        discussion: "The file appears only when synthesis succeeded (written beside it, then renamed).")

    @Argument(help: "The text to speak.") var text: String
    @Option(name: .shortAndLong, help: "Output file: .wav (16-bit PCM), .mp3, .opus/.ogg (Ogg Opus), .aac (ADTS), .flac or .pcm (raw s16le).") var output: String
    @OptionGroup var model: ModelOptions
    @OptionGroup var synthesis: SynthesisArguments
    @Flag(help: "No summary on stderr.") var quiet = false

    func run() async throws {
        let format = try AudioFormat(path: output)
        // Before the synthesis, so that an unwritable path does not cost the audio.
        try AudioFormat.checkDestination(output)
        // Nobody listens while a file is written: the whole utterance in the fewest S3Gen calls.
        var options = synthesis.options
        options.oneShot = true
        let tts = try await model.engine(options: options).load()
        let progress = SynthesisProgress()
        var samples: [Int16] = []
        for try await chunk in tts.synthesize(text, voice: Voice(argument: synthesis.voice)) {
            samples += chunk.samples
            progress.add(chunk)
        }
        // x/32767 and the writers' ×32767 with rounding give back the same int16 samples.
        try format.write(samples.map { Float($0) / 32767 }, sampleRate: 24_000, to: output)
        progress.finish(quiet: quiet)
    }
}

/// `chatterstream stream "text" | player`: chunks to stdout as they arrive.
struct Stream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream speech to stdout as it is generated: raw PCM (s16le, 24 kHz mono), Ogg Opus or MP3.",
        discussion: "Example: chatterstream stream \"Hello\" | aplay -f S16_LE -r 24000 -c 1")

    @Argument(help: "The text to speak.") var text: String
    @Option(help: "pcm (s16le), opus (Ogg Opus), mp3, aac (ADTS), flac or wav.") var format: AudioFormat = .pcm
    @OptionGroup var model: ModelOptions
    @OptionGroup var synthesis: SynthesisArguments
    @Flag(help: "No summary on stderr.") var quiet = false

    func run() async throws {
        let tts = try await model.engine(options: synthesis.options).load()
        let progress = SynthesisProgress()
        let stdout = FileHandle.standardOutput
        for try await chunk in tts.synthesize(text, voice: Voice(argument: synthesis.voice), encoding: format) {
            stdout.write(chunk.encoded)
            progress.add(chunk)
        }
        progress.finish(quiet: quiet)
    }
}

/// `chatterstream info`: what would run.
struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load the model and print its family, device, precision and watermark state.")
    @OptionGroup var model: ModelOptions

    func run() async throws {
        let info = try await model.engine(options: SynthesisOptions()).info()
        print("model:     \(info.family.rawValue)")
        print("device:    \(info.device.rawValue)")
        print("precision: T3 \(info.precision), KV cache \(info.kvCachePrecision), S3Gen \(info.s3genPrecision)")
        print("watermark: \(info.watermark)")
        print("threads:   \(info.threads)")
    }
}
