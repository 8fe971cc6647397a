import ChatterAudio
import ChatterTensor
import Foundation

/// Builds a voice's `Conditionals` from reference audio: upstream `prepare_conditionals`
/// (chatterbox-tts 0.1.7 `tts.py`, `tts_turbo.py`, `mtl_tts.py`), step for step:
///
/// 1. `librosa.load(path, sr=24000)`: decode (WAV, FLAC, Ogg, MP3 — `AudioFile`), average the
///    channels, soxr-HQ resample to 24 kHz.
/// 2. Turbo only: the reference must be longer than 5 s, then its loudness is normalised to −27 LUFS
///    (`Loudness.normalized`, pyloudnorm's BS.1770 meter; left as is when silent).
/// 3. `librosa.resample` 24 → 16 kHz (soxr HQ) of the whole (normalised) signal.
/// 4. S3Gen reference (`embed_ref`) from the first 10 s at 24 kHz: prompt mel (`prompt_feat`); the
///    same 10 s through torchaudio's sinc resampler to 16 kHz for the CAMPPlus x-vector and the
///    prompt tokens, cut to ⌊frames/2⌋ tokens as upstream does.
/// 5. T3 prompt tokens: S3Tokenizer on the first 6 s (Turbo: 15 s) of the 16 kHz signal, at most
///    150 (Turbo: 375) tokens.
/// 6. VoiceEncoder embedding of the whole 16 kHz signal (silence trimmed at 20 dB).
///
/// Differences from upstream, by design:
/// - Only the first `maximumReferenceSeconds` (60 s) are decoded, so an hour-long file costs a
///   minute of audio. The networks' windows (10 s, 6 s / 15 s) are far inside that, so only the
///   VoiceEncoder embedding of a longer reference differs from upstream (upstream embeds all of it).
/// - When the prompt mel has one frame more than twice the tokens (a reference whose length is not a
///   whole number of 40 ms tokens), upstream keeps the odd frame; `FlowReference.aligned` drops it
///   (see there).
/// - A silent reference is an error (`.silentReference`) where upstream returns NaN embeddings.
/// - Reference length: the original model takes any reference upstream takes that yields at least
///   one S3Gen prompt token (from ~30 ms; upstream raises below 481 samples at 16 kHz and returns an
///   empty prompt just above); shorter ones are `.referenceUnusable`. Turbo needs more than 5 s.
public struct ConditionalsBuilder: Sendable {
    /// What a model family's `prepare_conditionals` does with the reference (each family's is
    /// defined in its folder under `Families/` and held by its `ModelVariant.voiceRecipe`).
    public struct Recipe: Sendable, Equatable {
        /// `t3.hp.speech_cond_prompt_len` (nil: no prompt tokens).
        public var t3PromptTokens: Int?
        /// `ENC_COND_LEN` / 16 kHz.
        public var t3PromptSeconds: Double
        /// `DEC_COND_LEN` / 24 kHz.
        public var s3genPromptSeconds: Double
        /// Turbo's `norm_loudness` target (nil: not normalised).
        public var targetLoudnessLUFS: Double?
        /// Turbo's `assert len(wav) / sr > 5.0` (nil: any length upstream's front ends accept).
        public var minimumSeconds: Double?

        public init(t3PromptTokens: Int?, t3PromptSeconds: Double, s3genPromptSeconds: Double,
                    targetLoudnessLUFS: Double?, minimumSeconds: Double?) {
            self.t3PromptTokens = t3PromptTokens
            self.t3PromptSeconds = t3PromptSeconds
            self.s3genPromptSeconds = s3genPromptSeconds
            self.targetLoudnessLUFS = targetLoudnessLUFS
            self.minimumSeconds = minimumSeconds
        }
    }

    public static let s3genRate = 24_000
    /// The largest sample magnitude a reference may hold (60 dB above full scale): float recordings
    /// that clip a little above ±1 are accepted, values that would overflow the front ends are not.
    public static let maximumReferenceAmplitude: Float = 1000
    public static let tokenizerRate = 16_000

    public let voiceEncoder: VoiceEncoder
    public let tokenizer: S3Tokenizer
    public let speakerEncoder: CAMPPlus
    /// How much of a reference file is decoded (see the type's notes).
    public var maximumReferenceSeconds: Double = 60

    public init(voiceEncoder: VoiceEncoder, tokenizer: S3Tokenizer, speakerEncoder: CAMPPlus) {
        self.voiceEncoder = voiceEncoder
        self.tokenizer = tokenizer
        self.speakerEncoder = speakerEncoder
    }

    /// From a model's `ve.safetensors` and `s3gen.safetensors` stores (the S3Gen file holds the
    /// tokenizer under `tokenizer.` and CAMPPlus under `speaker_encoder.`, upstream and converted).
    public init(ve: some WeightStore, s3gen: some WeightStore) throws {
        let tokenizerWeights = s3gen.scoped("tokenizer.")
        self.init(voiceEncoder: try VoiceEncoder(weights: ve),
                  tokenizer: try S3Tokenizer(tokenizerWeights, config: try S3TokenizerConfig.inferred(from: tokenizerWeights)),
                  speakerEncoder: try CAMPPlus(weights: s3gen.scoped("speaker_encoder.")))
    }

    /// The conditionals of the reference audio file at `referenceURL` for a model of `family`.
    public func build(referenceURL: URL, for family: ModelVariant, exaggeration: Float = 0.5) throws -> Conditionals {
        guard exaggeration.isFinite else { throw ConditionalsError.invalidExaggeration(exaggeration) }
        let path = referenceURL.path
        guard maximumReferenceSeconds.isFinite, maximumReferenceSeconds > 0 else {
            throw ConditionalsError.referenceUnusable(path: path, reason: "maximumReferenceSeconds is \(maximumReferenceSeconds); it must be a positive number of seconds")
        }
        let audio = try AudioFile.load(path: path, sampleRate: Self.s3genRate, maxSeconds: maximumReferenceSeconds)
        return try build(reference24k: audio.samples, for: family, exaggeration: exaggeration, source: path)
    }

    /// The conditionals of a reference already decoded and resampled to 24 kHz (step 1 done);
    /// `source` names it in errors.
    public func build(reference24k: [Float], for family: ModelVariant, exaggeration: Float = 0.5,
                      source: String = "reference audio") throws -> Conditionals {
        guard exaggeration.isFinite else { throw ConditionalsError.invalidExaggeration(exaggeration) }
        let recipe = family.voiceRecipe
        let seconds = Double(reference24k.count) / Double(Self.s3genRate)
        if let minimum = recipe.minimumSeconds, !(seconds > minimum) {
            throw ConditionalsError.referenceTooShort(path: source, seconds: seconds, minimumSeconds: minimum, family: family.name)
        }
        guard reference24k.contains(where: { $0 != 0 }) else { throw ConditionalsError.silentReference(path: source) }
        guard reference24k.allSatisfy(\.isFinite) else {
            throw ConditionalsError.referenceUnusable(path: source, reason: "the decoded audio holds NaN or infinite samples")
        }
        // Finite but absurd values (a float WAV of ±3e38) overflow the loudness meter, the mels and
        // the networks into infinities and NaN; real recordings peak near ±1.
        let peak = reference24k.reduce(Float(0)) { max($0, abs($1)) }
        guard peak <= Self.maximumReferenceAmplitude else {
            throw ConditionalsError.referenceUnusable(path: source, reason: "its samples reach \(peak), more than \(Self.maximumReferenceAmplitude) (audio is expected within ±1, 0 dBFS); it is not a recording")
        }
        do {
            var wav24 = reference24k
            if let target = recipe.targetLoudnessLUFS {
                wav24 = Loudness.normalized(wav24, sampleRate: Self.s3genRate, targetLUFS: target)
            }
            let wav16 = try resample(wav24, from: Self.s3genRate, to: Self.tokenizerRate)

            let s3genPrompt = Array(wav24.prefix(Int(recipe.s3genPromptSeconds * Double(Self.s3genRate))))
            let gen = try flowReference(s3genPrompt, source: source)

            var promptTokens: [Int]?
            if let maximum = recipe.t3PromptTokens {
                let head = Array(wav16.prefix(Int(recipe.t3PromptSeconds * Double(Self.tokenizerRate))))
                promptTokens = try tokenizer.tokenize(head, maxLength: maximum)
            }
            let speaker = try voiceEncoder.embed(wav16).scalars()
            return Conditionals(t3: .init(speakerEmb: speaker, condPromptSpeechTokens: promptTokens, emotionAdv: exaggeration),
                                gen: gen, family: family)
        } catch let error as ConditionalsError {
            throw error
        } catch VoiceEncoderError.silent {
            throw ConditionalsError.silentReference(path: source)
        } catch {
            throw ConditionalsError.referenceUnusable(path: source, reason: "\(error)")
        }
    }

    /// `S3Gen.embed_ref(wav, 24000)`: prompt mel at 24 kHz; x-vector and tokens at 16 kHz from
    /// torchaudio's sinc resampler (not soxr).
    public func flowReference(_ wav24: [Float], source: String = "reference audio") throws -> FlowReference {
        let mel = try S3GenMel.compute(wav24)  // [80, F]
        let wav16 = SincResampler.resample(wav24, from: Self.s3genRate, to: Self.tokenizerRate)
        let xvector = try speakerEncoder.embed(fbank: KaldiFbank.compute(wav16))
        let tokens = try tokenizer.tokenize(wav16)
        guard !tokens.isEmpty, mel.shape[1] >= 2 else {
            throw ConditionalsError.referenceUnusable(path: source, reason: "\(wav24.count) samples at 24 kHz give no speech token")
        }
        return try FlowReference.aligned(promptTokens: tokens, promptMel: mel.transposed(0, 1).contiguous(), embedding: xvector)
    }
}
