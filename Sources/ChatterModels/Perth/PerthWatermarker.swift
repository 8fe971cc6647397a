import ChatterAudio
import ChatterTensor
import Foundation

/// Why the Perth watermarker could not load or run.
public enum PerthError: Error, CustomStringConvertible, Equatable {
    /// The checkpoint file is missing, unreadable, not a torch checkpoint, or lacks / misshapes a
    /// PerthNet tensor. `reason` is the underlying error's message.
    case checkpoint(path: String, reason: String)
    /// The input holds a NaN or an infinity (at `index`); nothing sensible can be embedded or read.
    case nonFiniteInput(index: Int)
    /// A sample rate that is not positive.
    case invalidSampleRate(Int)

    public var description: String {
        switch self {
        case let .checkpoint(path, reason): return "Perth checkpoint \(path): \(reason)"
        case let .nonFiniteInput(index): return "Perth: input sample \(index) is not finite (NaN or infinity)"
        case let .invalidSampleRate(rate): return "Perth: sample rate must be positive, got \(rate)"
        }
    }
}

/// Resemble AI's Perth implicit watermarker (`perth.PerthImplicitWatermarker`, resemble-perth 1.0.1):
/// an imperceptible watermark in the 0–2 kHz band of a 32 kHz magnitude spectrogram, and a detector
/// that reports its presence (no payload bits). See frontends.md §8.
///
/// Behaviour where upstream has none (documented choices):
/// - Too short to analyse (at most 1024 samples once at 32 kHz, i.e. ≤ 768 samples at 24 kHz; upstream
///   raises inside torch's reflect padding): `apply` returns the input unchanged and `detect` returns 0.
/// - Silent input (no frame above the activity threshold; upstream returns NaN from 0/0): `apply`
///   leaves it (near) silent and `detect` returns 0, since there is no evidence of a watermark.
/// - Non-finite samples: both throw `PerthError.nonFiniteInput`.
public struct PerthWatermarker: Sendable {
    public let net: PerthNet
    public let processor: PerthAudioProcessor

    /// Loads the `perth_net_250000.pth.tar` checkpoint (a `{"model": state_dict, "step": N}` dict).
    /// Throws `PerthError.checkpoint` naming the file when it is missing, corrupt or incomplete.
    public init(checkpointPath path: String) throws {
        do {
            let checkpoint = try TorchCheckpoint(path: path)
            let tensors = Dictionary(checkpoint.tensors().map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
            try self.init(weights: InMemoryWeights(tensors, source: path).scoped("model."))
        } catch let error as PerthError {
            throw error
        } catch let error as TensorError {
            throw PerthError.checkpoint(path: path, reason: error.description)
        } catch {
            throw PerthError.checkpoint(path: path, reason: "\(error)")
        }
    }

    /// Builds from a store keyed like the checkpoint's `model` dict (`encoder.layers.0.conv.weight`, …,
    /// `ap.spectrogram.window`). The window is computed if the store lacks it.
    public init(weights: any WeightStore) throws {
        net = try PerthNet(weights: weights)
        if weights.contains("ap.spectrogram.window") {
            processor = PerthAudioProcessor(window: try weights.float32("ap.spectrogram.window", shape: [PerthAudioProcessor.nFFT]))
        } else {
            processor = PerthAudioProcessor()
        }
    }

    // MARK: - 32 kHz core

    /// Embeds the watermark in a 32 kHz signal: analyse, encode, resynthesise with the original
    /// phase. Output length 320·⌊L / 320⌋ (upstream). Signals too short to analyse come back unchanged.
    public func watermark32k(_ signal: [Float]) -> [Float] {
        guard signal.count >= PerthAudioProcessor.minimumSamples else { return signal }
        var magPhase = processor.analyse(signal)
        magPhase.magnitude = net.encode(magPhase.magnitude, frames: magPhase.frames)
        return processor.synthesise(magPhase)
    }

    /// The raw decoder score of a 32 kHz signal (upstream's value before clipping), or nil where
    /// upstream fails (too short) or returns NaN (no active frame).
    public func rawScore32k(_ signal: [Float]) -> Float? {
        guard signal.count >= PerthAudioProcessor.minimumSamples else { return nil }
        let magPhase = processor.analyse(signal)
        return net.decode(magPhase.magnitude, frames: magPhase.frames)
    }

    // MARK: - Upstream API

    /// `apply_watermark(wav, sample_rate)`: soxr HQ to 32 kHz, watermark, soxr HQ back. Like upstream
    /// the result is shorter than the input when the 32 kHz length is not a multiple of 320 samples
    /// (at 24 kHz: 240·⌊⌈4L/3⌉/320⌋ samples, up to 239 fewer). See `applyPreservingLength`.
    public func apply(_ wav: [Float], sampleRate: Int) throws -> [Float] {
        try validate(wav, sampleRate: sampleRate)
        let rate = PerthAudioProcessor.sampleRate
        guard sampleRate != rate else { return watermark32k(wav) }
        let x32 = try resample(wav, from: sampleRate, to: rate, quality: .hq)
        guard x32.count >= PerthAudioProcessor.minimumSamples else { return wav }
        return try resample(watermark32k(x32), from: rate, to: sampleRate, quality: .hq)
    }

    /// `apply` that returns exactly `wav.count` samples, for the streaming pipeline: the input is
    /// zero-padded at the end to a whole number of 10 ms hops (240 samples at 24 kHz; at other rates
    /// one hop more than needed), so upstream's truncation only removes padding, and the result is
    /// trimmed back to the input length. The watermark of the last partial hop is kept; frames near
    /// the end see the zero padding instead of upstream's reflection of the last samples.
    public func applyPreservingLength(_ wav: [Float], sampleRate: Int) throws -> [Float] {
        try validate(wav, sampleRate: sampleRate)
        let rate = PerthAudioProcessor.sampleRate, hop = PerthAudioProcessor.hop
        let padded: Int
        if (hop * sampleRate) % rate == 0 {
            let hopIn = hop * sampleRate / rate
            padded = (wav.count + hopIn - 1) / hopIn * hopIn
        } else {
            padded = wav.count + (hop * sampleRate + rate - 1) / rate + 1
        }
        var input = wav
        input.append(contentsOf: repeatElement(0, count: padded - wav.count))
        var output = try apply(input, sampleRate: sampleRate)
        if output.count < wav.count { output.append(contentsOf: repeatElement(0, count: wav.count - output.count)) }
        return Array(output.prefix(wav.count))
    }

    /// `get_watermark(wav, sample_rate, round)`: polyphase resampling to 32 kHz (scipy
    /// `resample_poly`, as upstream's `res_type="polyphase"`), decoder score clipped to [0, 1] and,
    /// with `round`, rounded half to even (so 0.5 → 0). 1 = watermarked. Silent or too-short input
    /// gives 0 (upstream: NaN or an exception).
    public func detect(_ wav: [Float], sampleRate: Int, round: Bool = true) throws -> Float {
        try validate(wav, sampleRate: sampleRate)
        let rate = PerthAudioProcessor.sampleRate
        let x32 = sampleRate == rate ? wav : try resamplePolyphase(wav, from: sampleRate, to: rate)
        guard let raw = rawScore32k(x32), raw.isFinite else { return 0 }
        let clipped = min(max(raw, 0), 1)
        return round ? clipped.rounded(.toNearestOrEven) : clipped
    }

    private func validate(_ wav: [Float], sampleRate: Int) throws {
        guard sampleRate > 0 else { throw PerthError.invalidSampleRate(sampleRate) }
        if let index = wav.firstIndex(where: { !$0.isFinite }) { throw PerthError.nonFiniteInput(index: index) }
    }
}
