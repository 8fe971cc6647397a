import ChatterTensor
import Foundation

/// One Chatterbox model: its family (name, hub files, how they convert, the text front end, the
/// voice recipe, upstream's sampling defaults) and its sizes (T3, S3Gen's decoder heads, the
/// vocoder). Each family is defined once, in its folder beside this file (`Chatterbox/`, `Turbo/`,
/// `Multilingual/`, `Nano/`), with its published sizes; a loaded model takes its sizes from the manifest
/// or the weights (`resized`). Every layer above asks the variant; none tests for a family by name.
///
/// T3's backbone decides how it is driven (`T3Config.procedure`), so a family that reuses an
/// architecture (Nano: Turbo's procedure with a smaller GPT-2) needs no new code outside its folder.
public struct ModelVariant: Sendable, Equatable, CustomStringConvertible {
    /// The family's name in manifests, conditionals files, the CLI and the model cache (`chatterbox-turbo`).
    public let name: String
    /// The Hugging Face hub repository holding the upstream checkpoint.
    public let hubRepository: String
    /// The upstream files the family needs, with their published identities.
    public let publishedFiles: [PublishedFile]
    /// The upstream weight files and what they convert to (the built-in voice and the tokenizer
    /// files are carried over as well).
    public let conversion: [ConversionStep]
    /// The text front end.
    public let textTokenizer: TextTokenizerKind
    /// What `prepare_conditionals` does with a reference recording.
    public let voiceRecipe: ConditionalsBuilder.Recipe
    /// Upstream `generate`'s sampling defaults.
    public let samplingDefaults: T3SamplingParameters
    /// S3Gen tokens appended after each utterance (`tts_turbo.generate` appends three S3GEN_SIL).
    public let trailingSilenceTokens: Int
    /// Whether the audio of the utterance's final speech token is dropped (multilingual V3,
    /// upstream 3f35dfc: `wav[: max(1, n − 1) · S3GEN_SR / S3_TOKEN_RATE]`, ~40 ms of noise).
    public let finalTokenTrimmed: Bool
    /// Whether this build can synthesise speech with the family (the multilingual one converts only).
    public let synthesizes: Bool
    /// T3's sizes and special ids.
    public var t3: T3Config
    /// Attention heads of S3Gen's flow decoder (not readable from the weights).
    public var s3genDecoderHeads: Int
    /// The HiFT vocoder's configuration.
    public var vocoder: HiFTConfig

    /// `voiceEncoderFile`, `t3File` and `s3genFile`: the upstream weight files, converted (and
    /// downloaded) in that order; `carried`: the rest of the published files (built-in voice, tokenizer files).
    public init(name: String, hubRepository: String, voiceEncoderFile: PublishedFile, t3File: PublishedFile, s3genFile: PublishedFile,
                carried: [PublishedFile], textTokenizer: TextTokenizerKind, voiceRecipe: ConditionalsBuilder.Recipe,
                samplingDefaults: T3SamplingParameters, trailingSilenceTokens: Int = 0, finalTokenTrimmed: Bool = false,
                synthesizes: Bool = true, t3: T3Config,
                s3genDecoderHeads: Int = 8, vocoder: HiFTConfig = .chatterbox) {
        self.name = name
        self.hubRepository = hubRepository
        publishedFiles = [voiceEncoderFile, t3File, s3genFile] + carried
        conversion = [ConversionStep(source: voiceEncoderFile.name, group: .voiceEncoder),
                      ConversionStep(source: t3File.name, group: .t3), ConversionStep(source: s3genFile.name, group: .s3gen)]
        self.textTokenizer = textTokenizer
        self.voiceRecipe = voiceRecipe
        self.samplingDefaults = samplingDefaults
        self.trailingSilenceTokens = trailingSilenceTokens
        self.finalTokenTrimmed = finalTokenTrimmed
        self.synthesizes = synthesizes
        self.t3 = t3
        self.s3genDecoderHeads = s3genDecoderHeads
        self.vocoder = vocoder
    }

    public var description: String { name }

    /// The languages the family's text front end takes (`SynthesisOptions.language`).
    public var languages: [SpokenLanguage] { textTokenizer == .multilingualGraphemes ? SpokenLanguage.multilingual : [.english] }

    /// Every published family, in the order the CLI lists them. A new family adds its line here.
    /// (A directory holding several families' T3 files converts as the last one listed: multilingual
    /// V3 comes after V2 so that it is the default.)
    public static let published: [ModelVariant] = [.chatterbox, .chatterboxTurbo, .chatterboxMultilingualV2, .chatterboxMultilingual,
                                                   .chatterboxNano]

    /// The published family called `name`, or nil.
    public static func named(_ name: String) -> ModelVariant? { published.first { $0.name == name } }

    /// This family with a loaded model's sizes: `t3` as given (a reduced model's manifest) or read
    /// from `t3Weights` with what the shapes cannot tell taken from the family; S3Gen's decoder
    /// heads and the vocoder as given, else the family's. (The caller checks that the backbone is
    /// still the family's: `t3.procedure`.)
    public func resized(t3 given: T3Config?, s3genDecoderHeads: Int?, vocoder: HiFTConfig?,
                        t3Weights: some WeightStore) throws -> ModelVariant {
        resized(t3: try given ?? T3Config.inferred(from: t3Weights, like: t3), s3genDecoderHeads: s3genDecoderHeads ?? self.s3genDecoderHeads,
                vocoder: vocoder ?? self.vocoder)
    }

    /// This family with other sizes (a reduced model built in memory).
    public func resized(t3: T3Config, s3genDecoderHeads: Int, vocoder: HiFTConfig) -> ModelVariant {
        var variant = self
        variant.t3 = t3
        variant.s3genDecoderHeads = s3genDecoderHeads
        variant.vocoder = vocoder
        return variant
    }
}

extension ModelVariant {
    /// The published family whose upstream T3 file is called `fileName` (`t3_nano_v1.safetensors`), or nil.
    public static func published(t3File fileName: String) -> ModelVariant? {
        published.first { $0.conversion.contains { $0.group == .t3 && $0.source == fileName } }
    }

    /// The family of the T3 weights at `path`, for tools handed a bare T3 file: by its upstream
    /// name, or, for a converted `t3.safetensors`, the family its directory's manifest records.
    /// Nil when neither tells (the head count, which the weights cannot show, is then unknown).
    public static func family(ofT3File path: String) -> ModelVariant? {
        let url = URL(fileURLWithPath: path)
        if let family = published(t3File: url.lastPathComponent) { return family }
        guard url.lastPathComponent == ConvertedFiles.t3,
              let data = FileManager.default.contents(atPath: url.deletingLastPathComponent().appendingPathComponent(ConvertedFiles.manifest).path),
              let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let name = manifest["family"] as? String
        else { return nil }
        return named(name)
    }
}
