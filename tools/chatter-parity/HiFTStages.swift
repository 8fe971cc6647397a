import ChatterModels
import ChatterTensor
import Foundation

/// Loads S3Gen's vocoder for a stage: `--model` is a converted model directory (its
/// `s3gen.safetensors`) or a safetensors file; keys under `prefix` (`mel2wav.`). `base_channels` and
/// `cond_channels` select a reduced config (the test fixture's), default the shipped 512 / 512.
private func loadHiFT(_ context: StageContext) throws -> HiFTGenerator {
    let path = try context.modelFile("s3gen.safetensors")
    var config = HiFTConfig.chatterbox
    config.baseChannels = try context.int("base_channels", default: config.baseChannels)
    config.f0CondChannels = try context.int("cond_channels", default: config.f0CondChannels)
    let store = try SafetensorsFile(path: path).scoped(context.string("prefix", default: "mel2wav."))
    return try HiFTGenerator(store, config: config)
}

/// The SineGen draws of a call: `phases` and `noise` from the input when present (both or neither),
/// else drawn from a generator seeded with `seed`.
private func draws(_ context: StageContext, _ model: HiFTGenerator, frames: Int) throws -> SineDraws {
    let phases = try context.optionalTensor("phases")?.converted(to: .f32)
    let noise = try context.optionalTensor("noise")?.converted(to: .f32)
    try require((phases == nil) == (noise == nil), "give both phases and noise, or neither")
    if let phases, let noise { return SineDraws(phases: phases.scalars(), noise: noise) }
    var generator = SplitMix64(seed: UInt64(try context.int("seed", default: 0)))
    return SineDraws.random(sines: model.config.sines, samples: frames * model.config.samplesPerFrame, using: &generator)
}

private func mel(_ context: StageContext) throws -> Tensor {
    let mel = try context.tensor("mel").converted(to: .f32)
    try require(mel.rank == 3 && mel.shape[2] > 0, "mel must be [1, 80, M], got \(mel.shape)")
    return mel
}

/// `hift-source`: HiFT's F0 predictor and neural source (`f0_predictor`, `m_source`, the
/// `cache_source` overwrite of `HiFTGenerator.inference`).
struct HiFTSourceStage: ParityStage {
    let name = "hift-source"
    let summary = "S3Gen vocoder: mel → f0 → SineGen → source (HiFTGenerator.inference's first half)"
    let inputs = ["mel [1, 80, M] f32", "phases [9] + noise [9, 480M] (optional: SineGen's U(−π,π) and N(0,1) draws)",
                  "cache_source [1, 1, C] (optional, C ≤ 480M)",
                  "f0 [1, M] (optional: drive SineGen with this f0 instead of the predictor's; f0 output echoes it)"]
    let parameters = ["seed (0; draws when phases/noise are absent)", "prefix (mel2wav.)",
                      "base_channels (512)", "cond_channels (512)"]
    let outputs = ["f0 [1, M]", "sines [9, 480M] (SineGen output: sine·uv + noise)", "source [1, 1, 480M]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let model = try loadHiFT(context)
        let mel = try mel(context)
        try model.validate(mel: mel)
        let draws = try draws(context, model, frames: mel.shape[2])
        var f0 = model.f0Predictor(mel)
        if let given = try context.optionalTensor("f0")?.converted(to: .f32) {
            try require(given.shape == [1, mel.shape[2]], "f0 must be [1, \(mel.shape[2])], got \(given.shape)")
            f0 = given.scalars()
        }
        let sines = try model.source.sines(f0: f0, draws: draws)
        let source = try model.excitation(f0: f0, cacheSource: try context.optionalTensor("cache_source")?.converted(to: .f32),
                                          draws: draws)
        return [("f0", Tensor(shape: [1, f0.count], scalars: f0)), ("sines", sines), ("source", source)]
    }
}

/// `hift-wave`: the whole vocoder call, or `decode` alone when `source` is given.
struct HiFTWaveStage: ParityStage {
    let name = "hift-wave"
    let summary = "S3Gen vocoder: mel (+ source) → 24 kHz waveform (HiFTGenerator.inference / decode)"
    let inputs = ["mel [1, 80, M] f32", "source [1, 1, 480M] (optional: run decode(mel, source) only)",
                  "phases [9] + noise [9, 480M] (optional draws)", "cache_source [1, 1, C] (optional)"]
    let parameters = ["seed (0)", "trim_fade (false: S3Gen's 960-sample fade-in)", "prefix (mel2wav.)",
                      "base_channels (512)", "cond_channels (512)"]
    let outputs = ["wave [1, 480M]", "source [1, 1, 480M]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let clock = ContinuousClock(), loadStart = clock.now
        let model = try loadHiFT(context)
        let loaded = clock.now
        let mel = try mel(context)
        try model.validate(mel: mel)
        defer {
            let seconds = Double(mel.shape[2] * model.config.samplesPerFrame) / Double(model.config.sampleRate)
            let call = (clock.now - loaded) / .milliseconds(1)
            FileHandle.standardError.write(Data(String(
                format: "hift-wave: load %.0f ms; vocoder %.0f ms for %.2f s of audio (%.0f ms per second)\n",
                (loaded - loadStart) / .milliseconds(1), call, seconds, call / seconds).utf8))
        }
        var wave: Tensor, source: Tensor
        if let given = try context.optionalTensor("source")?.converted(to: .f32) {
            let samples = mel.shape[2] * model.config.samplesPerFrame
            try require(given.shape == [1, 1, samples], "source must be [1, 1, \(samples)], got \(given.shape)")
            (wave, source) = (model.decode(mel: mel, source: given), given)
        } else {
            let output = try model.inference(speechFeat: mel, cacheSource: try context.optionalTensor("cache_source")?.converted(to: .f32),
                                             draws: try draws(context, model, frames: mel.shape[2]))
            (wave, source) = (output.wave, output.source)
        }
        if try context.bool("trim_fade", default: false) { S3GenTrimFade.apply(to: wave) }
        return [("wave", wave), ("source", source)]
    }
}
