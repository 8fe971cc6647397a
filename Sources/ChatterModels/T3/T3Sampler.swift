import ChatterTensor
import Foundation

/// Sampling settings of `ChatterboxTTS.generate` (chatterbox-tts 0.1.7) and their ranges; `.turbo`
/// holds `ChatterboxTurboTTS.generate`'s.
public struct T3SamplingParameters: Sendable, Equatable {
    public var temperature: Float = 0.8
    public var cfgWeight: Float = 0.5
    public var exaggeration: Float = 0.5
    public var repetitionPenalty: Float = 1.2
    public var minP: Float = 0.05
    public var topP: Float = 1.0
    /// Turbo-only in upstream (`TopKLogitsWarper`); `nil` (the original's behaviour) disables it.
    public var topK: Int? = nil
    /// Upstream `generate` passes 1000; the count includes the EOS token.
    public var maxNewTokens: Int = 1000

    public init(temperature: Float = 0.8, cfgWeight: Float = 0.5, exaggeration: Float = 0.5, repetitionPenalty: Float = 1.2,
                minP: Float = 0.05, topP: Float = 1.0, topK: Int? = nil, maxNewTokens: Int = 1000) {
        self.temperature = temperature
        self.cfgWeight = cfgWeight
        self.exaggeration = exaggeration
        self.repetitionPenalty = repetitionPenalty
        self.minP = minP
        self.topP = topP
        self.topK = topK
        self.maxNewTokens = maxNewTokens
    }

    /// `ChatterboxTurboTTS.generate` defaults: temperature 0.8, top_k 1000, top_p 0.95, repetition
    /// penalty 1.2; min_p, cfg_weight and exaggeration unused (upstream warns and ignores them);
    /// `inference_turbo(max_gen_len=1000)` draws one token after the prefill plus up to 1000 more.
    public static let turbo = T3SamplingParameters(temperature: 0.8, cfgWeight: 0, exaggeration: 0, repetitionPenalty: 1.2,
                                                   minP: 0, topP: 0.95, topK: 1000, maxNewTokens: 1001)

    /// Throws `T3Error.invalidParameter` for values upstream rejects or that make no sense.
    public func validate() throws {
        func bad(_ name: String, _ value: Float, _ reason: String) -> T3Error {
            .invalidParameter(name: name, value: Double(value), reason: reason)
        }
        guard temperature.isFinite, temperature > 0 else { throw bad("temperature", temperature, "must be > 0") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("top_p", topP, "must be in (0, 1]") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min_p", minP, "must be in [0, 1]") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw bad("repetition_penalty", repetitionPenalty, "must be > 0")
        }
        guard cfgWeight.isFinite, cfgWeight >= 0 else { throw bad("cfg_weight", cfgWeight, "must be ≥ 0") }
        guard exaggeration.isFinite else { throw bad("exaggeration", exaggeration, "must be finite") }
        if let topK, topK < 1 { throw bad("top_k", Float(topK), "must be ≥ 1") }
        guard maxNewTokens >= 1 else { throw bad("max_new_tokens", Float(maxNewTokens), "must be ≥ 1") }
    }

    /// `validate()`, and `max_new_tokens` within what `config`'s model can generate
    /// (`T3Config.maxGeneratedTokens`), so that no count reaches the decoder's arithmetic unbounded.
    public func validate(for config: T3Config) throws {
        try validate()
        guard maxNewTokens <= config.maxGeneratedTokens else {
            throw T3Error.invalidParameter(name: "max_new_tokens", value: Double(maxNewTokens),
                                           reason: "must be at most \(config.maxGeneratedTokens), the most speech tokens this model can generate (25 per second)")
        }
    }
}

/// A source of uniform draws in [0, 1), consumed once per sampled token.
public protocol T3UniformSource {
    mutating func next() -> Double
}

/// Seedable default source: SplitMix64, 53-bit mantissa (`(x >> 11) · 2⁻⁵³`).
public struct SplitMixUniforms: T3UniformSource, Sendable {
    var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    public mutating func next() -> Double { generator.nextUnitDouble() }
}

/// Replays a fixed list of uniforms (e.g. the ones dumped from upstream), then repeats the last.
public struct ReplayedUniforms: T3UniformSource, Sendable {
    let values: [Double]
    var index = 0
    public init(_ values: [Double]) { self.values = values }
    public mutating func next() -> Double {
        defer { index += 1 }
        return values.isEmpty ? 0 : values[min(index, values.count - 1)]
    }
}

/// The logits-processor chains of upstream, in their orders, then softmax:
/// `T3.inference` (original / multilingual): repetition penalty → temperature → min_p → top_p
/// (→ top_k if set); `T3.inference_turbo`: temperature → top_k → top_p → repetition penalty, each
/// only where upstream appends it (temperature ≠ 1, top_k set, top_p < 1, penalty ≠ 1).
public enum T3Sampler {
    /// `RepetitionPenaltyLogitsProcessor`: each distinct id of `history`: `l < 0 ? l·r : l/r`.
    public static func applyRepetitionPenalty(_ logits: inout [Float], history: [Int], penalty: Float) {
        for id in Set(history) where id >= 0 && id < logits.count {
            let l = logits[id]
            logits[id] = l < 0 ? l * penalty : l / penalty
        }
    }

    /// `torch.softmax` over f32 logits (max-subtracted; −inf gives 0).
    public static func softmax(_ logits: [Float]) -> [Float] {
        let m = logits.max() ?? 0
        guard m.isFinite else { return logits.map { $0 == m ? 1 : 0 } }
        var e = logits.map { Float.exp($0 - m) }
        var sum: Float = 0
        for x in e { sum += x }
        for i in e.indices { e[i] /= sum }
        return e
    }

    /// `MinPLogitsWarper`: remove ids with `p < min_p · max p` (the argmax is always kept).
    public static func applyMinP(_ logits: inout [Float], minP: Float) {
        let p = softmax(logits)
        guard let top = p.indices.max(by: { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }) else { return }
        let threshold = minP * p[top]
        for i in logits.indices where p[i] < threshold && i != top { logits[i] = -.infinity }
    }

    /// `TopPLogitsWarper`: sort ascending, remove ids whose cumulative probability ≤ 1 − top_p;
    /// the highest always survives.
    public static func applyTopP(_ logits: inout [Float], topP: Float) {
        let order = logits.indices.sorted { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let p = softmax(order.map { logits[$0] })
        var cumulative: Float = 0
        let cut = 1 - topP
        for (rank, id) in order.enumerated() where rank < order.count - 1 {
            cumulative += p[rank]
            if cumulative <= cut { logits[id] = -.infinity }
        }
    }

    /// `TopKLogitsWarper`: remove ids below the k-th largest logit (ties survive).
    public static func applyTopK(_ logits: inout [Float], topK: Int) {
        guard topK < logits.count else { return }
        let threshold = logits.sorted(by: >)[topK - 1]
        for i in logits.indices where logits[i] < threshold { logits[i] = -.infinity }
    }

    /// The processed distribution for CFG-combined `logits` and the token `history` (which, as
    /// upstream, starts with the start-of-speech token).
    public static func distribution(_ logits: [Float], history: [Int], parameters: T3SamplingParameters) -> [Float] {
        var l = logits
        applyRepetitionPenalty(&l, history: history, penalty: parameters.repetitionPenalty)
        if parameters.temperature != 1 {
            for i in l.indices { l[i] /= parameters.temperature }
        }
        applyMinP(&l, minP: parameters.minP)
        applyTopP(&l, topP: parameters.topP)
        if let k = parameters.topK { applyTopK(&l, topK: k) }
        return softmax(l)
    }

    /// `inference_turbo`'s `LogitsProcessorList` for `logits` and the repetition-penalty `history`
    /// (upstream passes `[start_speech]` for the first draw, then the generated tokens alone).
    /// On the surviving ids the penalty divides or multiplies finite logits; −inf stays −inf.
    public static func turboDistribution(_ logits: [Float], history: [Int], parameters: T3SamplingParameters) -> [Float] {
        var l = logits
        if parameters.temperature != 1 {
            for i in l.indices { l[i] /= parameters.temperature }
        }
        if let k = parameters.topK { applyTopK(&l, topK: k) }
        if parameters.topP < 1 { applyTopP(&l, topP: parameters.topP) }
        if parameters.repetitionPenalty != 1 {
            applyRepetitionPenalty(&l, history: history, penalty: parameters.repetitionPenalty)
        }
        return softmax(l)
    }

    /// Inverse-CDF draw standing in for `torch.multinomial(probs, 1)`: with `c_i = Σ_{j≤i} p_j`
    /// accumulated in f64, the first id with `p_i > 0` and `c_i > u · c_{V−1}` (argmax if none).
    public static func draw(_ probabilities: [Float], uniform u: Double) -> Int {
        var total = 0.0
        for p in probabilities { total += Double(p) }
        let target = u * total
        var c = 0.0
        for (i, p) in probabilities.enumerated() {
            c += Double(p)
            if p > 0 && c > target { return i }
        }
        return probabilities.indices.max(by: { probabilities[$0] < probabilities[$1] }) ?? 0
    }

    /// What `tts_turbo.generate` hands to S3Gen (before its three silence tokens): the last token
    /// dropped if it is end-of-speech (`inference_turbo`), then ids ≥ start-of-speech removed.
    public static func turboPostprocess(_ tokens: [Int], startSpeech: Int, stopSpeech: Int) -> [Int] {
        let trimmed = tokens.last == stopSpeech ? tokens.dropLast() : tokens[...]
        return trimmed.filter { $0 < startSpeech }
    }

    /// `drop_invalid_tokens` then `tokens < start_speech` (what `tts.generate` hands to S3Gen):
    /// keep what follows the first start-of-speech, cut at the first end-of-speech.
    public static func postprocess(_ tokens: [Int], startSpeech: Int, stopSpeech: Int) -> [Int] {
        // As Python's x[s:e] with both indices found over the whole list (empty if e < s).
        let s = tokens.firstIndex(of: startSpeech).map { $0 + 1 } ?? 0
        let e = tokens.firstIndex(of: stopSpeech) ?? tokens.count
        guard s < e else { return [] }
        return tokens[s..<e].filter { $0 < startSpeech }
    }
}
