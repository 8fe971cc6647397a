/// Weight groups, each converted to its own file with its own compute dtype.
public enum WeightGroup: String, Sendable, CaseIterable, Codable {
    case t3
    case s3gen
    case voiceEncoder = "ve"

    /// The group's file in a converted model directory.
    public var convertedFile: String {
        switch self {
        case .t3: ConvertedFiles.t3
        case .s3gen: ConvertedFiles.s3gen
        case .voiceEncoder: ConvertedFiles.voiceEncoder
        }
    }
}

/// The file names of a converted model directory (weights-format.md), the same for every family:
/// the only place they are spelled.
public enum ConvertedFiles {
    /// T3's weights (upstream `t3_cfg`, `t3_turbo_v1`, `t3_mtl23ls_v2`, …).
    public static let t3 = "t3.safetensors"
    /// S3Gen's weights, with the S3Tokenizer (`tokenizer.`) and CAMPPlus (`speaker_encoder.`).
    public static let s3gen = "s3gen.safetensors"
    /// The VoiceEncoder's weights.
    public static let voiceEncoder = "ve.safetensors"
    /// The built-in voice, converted from upstream's `conds.pt`.
    public static let builtinVoice = "conds.safetensors"
    /// The built-in voice as upstream publishes it.
    public static let upstreamBuiltinVoice = "conds.pt"
    /// The built-in voice's T3 conditioning prefix, kept beside the weights by the engine (derived,
    /// not in the manifest; rewritten whenever it does not match the weights).
    public static let builtinVoicePrefix = "builtin-voice-t3-prefix.safetensors"
    /// The converter's manifest.
    public static let manifest = "manifest.json"
}

/// One upstream weight file and the converted file it becomes.
public struct ConversionStep: Sendable, Equatable {
    /// The upstream file name (`t3_turbo_v1.safetensors`, `s3gen.pt`, …).
    public let source: String
    public let group: WeightGroup
    /// The converted file name (`group.convertedFile`).
    public var output: String { group.convertedFile }

    public init(source: String, group: WeightGroup) {
        self.source = source
        self.group = group
    }
}
