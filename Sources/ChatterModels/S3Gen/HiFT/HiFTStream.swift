import ChatterTensor

/// HiFT over a mel that arrives in pieces, emitting the waveform as it becomes final, exactly 480
/// samples per mel frame, with seams that are exact or nearly so rather than crossfaded.
///
/// HiFT is convolutional: a sample depends on the mel within ±14 frames (conv_pre ±3, the
/// 400 Hz resblocks ±7.5, the later stages ±2.5) and on the excitation, whose only long-range state
/// is SineGen's running phase per sine. So each push
/// 1. re-vocodes a window from `contextFrames` before the first unemitted frame to the last frame
///    received, and emits samples up to `holdBackFrames` before that end (the rest is recomputed
///    with more right context by the next push, or emitted by the final one);
/// 2. builds the excitation from committed source samples plus new ones, carrying SineGen's running
///    phases across pushes; a frame's excitation is committed once its F0 has the F0 predictor's full
///    right context (5 frames), so it never changes afterwards;
/// 3. draws SineGen's noise and phases from a counter-based source indexed by absolute sample.
/// With `holdBackFrames` ≥ 14 (default 16) the stream equals one call over the whole mel to float
/// rounding. The first emission holds back only `firstHoldBackFrames` (default 8): the first chunk
/// is what a listener waits for, and 8 frames trade the outermost taps of the 400 Hz resblocks (a
/// small error at that one seam, measured in the tests) for 160 ms more audio in it. Work per push
/// is the window, independent of the utterance length.
public struct HiFTStream: Sendable {
    public let vocoder: HiFTGenerator
    public let draws: SineDrawSource
    /// Mel frames re-vocoded before the first unemitted one (left receptive field).
    public let contextFrames: Int
    /// Mel frames at the end of what was received whose samples wait for more right context.
    public let holdBackFrames: Int
    /// The same before anything was emitted.
    public let firstHoldBackFrames: Int
    /// Right receptive field of the F0 predictor (five k3 convolutions).
    static let f0Lookahead = 5

    /// Mel frames kept, channel-major [channels][frames], starting at absolute frame `melStart`.
    private var mel: [[Float]]
    private var melStart = 0
    /// Committed excitation samples, starting at absolute sample `sourceStart`.
    private var source: [Float] = []
    private var sourceStart = 0
    /// Frames whose excitation is committed (absolute).
    private var committedFrames = 0
    /// SineGen's running phases after the committed excitation.
    private var phases: [Double]
    public private(set) var emittedSamples = 0
    public private(set) var finished = false
    /// Mel frames vocoded so far, re-vocoded context and held-back frames included (the stream's
    /// work; one call over the whole mel vocodes each frame once).
    public private(set) var vocodedFrames = 0

    public init(vocoder: HiFTGenerator, draws: SineDrawSource, contextFrames: Int = 16, holdBackFrames: Int = 16,
                firstHoldBackFrames: Int = 8) {
        precondition(contextFrames >= Self.f0Lookahead && holdBackFrames >= 0 && firstHoldBackFrames >= 0)
        self.vocoder = vocoder
        self.draws = draws
        self.contextFrames = contextFrames
        self.holdBackFrames = holdBackFrames
        self.firstHoldBackFrames = firstHoldBackFrames
        mel = Array(repeating: [], count: vocoder.config.inChannels)
        phases = Array(repeating: 0, count: vocoder.config.sines)
    }

    /// `SineDrawSource` for this vocoder's sine count.
    public init(vocoder: HiFTGenerator, seed: UInt64, contextFrames: Int = 16, holdBackFrames: Int = 16,
                firstHoldBackFrames: Int = 8) {
        self.init(vocoder: vocoder, draws: SineDrawSource(seed: seed, sines: vocoder.config.sines),
                  contextFrames: contextFrames, holdBackFrames: holdBackFrames, firstHoldBackFrames: firstHoldBackFrames)
    }

    public var samplesPerFrame: Int { vocoder.config.samplesPerFrame }
    /// Mel frames received so far.
    public var receivedFrames: Int { melStart + (mel.first?.count ?? 0) }

    /// Appends mel frames [channels, k] (k ≥ 0; finite) and returns the samples that became final.
    /// `final: true` ends the utterance and returns everything left.
    public mutating func push(_ frames: Tensor, final: Bool = false) throws -> [Float] {
        guard !finished else { throw HiFTError.streamFinished }
        let channels = vocoder.config.inChannels
        guard frames.rank == 2, frames.shape[0] == channels else {
            throw HiFTError.melShape(expectedChannels: channels, actual: frames.shape)
        }
        let k = frames.shape[1]
        if k > 0 {
            let values = frames.contiguous().scalars()
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw HiFTError.nonFiniteMel(channel: bad / k, frame: receivedFrames + bad % k)
            }
            for c in 0..<channels { mel[c].append(contentsOf: values[(c * k)..<((c + 1) * k)]) }
        }
        if final { finished = true }
        let total = receivedFrames
        let perFrame = samplesPerFrame
        let emittedFrames = emittedSamples / perFrame
        let holdBack = emittedSamples == 0 ? firstHoldBackFrames : holdBackFrames
        let emitEnd = final ? total : max(emittedFrames, total - holdBack)
        guard emitEnd > emittedFrames else {
            if final && total == 0 { throw HiFTError.emptyMel }
            return []
        }
        let windowStart = max(melStart, emittedFrames - contextFrames)
        let window = windowStart..<total
        let windowMel = melTensor(window)
        vocodedFrames += window.count
        let f0 = vocoder.f0Predictor(windowMel.reshaped([1, channels, window.count]))

        // Excitation for the window: committed samples, then new ones from this window's F0.
        let commitEnd = final ? total : max(committedFrames, total - Self.f0Lookahead)
        var excitation = Array(source[(window.lowerBound * perFrame - sourceStart)...])
        var running = phases
        for segment in [committedFrames..<commitEnd, commitEnd..<total] where !segment.isEmpty {
            let f0Segment = Array(f0[(segment.lowerBound - windowStart)..<(segment.upperBound - windowStart)])
            let sineDraws = draws.draws(samples: (segment.lowerBound * perFrame)..<(segment.upperBound * perFrame))
            let samples = vocoder.source.merge(try vocoder.source.sines(f0: f0Segment, draws: sineDraws, cumulative: &running))
            excitation += samples
            if segment.lowerBound == committedFrames && segment.upperBound == commitEnd {
                source += samples
                phases = running
            }
        }
        committedFrames = commitEnd

        let wave = vocoder.decode(mel: windowMel.reshaped([1, channels, window.count]),
                                  source: Tensor(shape: [1, 1, excitation.count], scalars: excitation))
        let waveSamples = wave.contiguous().scalars()
        let from = emittedSamples - window.lowerBound * perFrame
        let to = emitEnd * perFrame - window.lowerBound * perFrame
        var out = Array(waveSamples[from..<to])
        // trim_fade belongs to the utterance's first 960 samples (upstream `S3Token2Wav.inference`).
        for i in 0..<out.count where emittedSamples + i < S3GenTrimFade.fade.count {
            out[i] *= S3GenTrimFade.fade[emittedSamples + i]
        }
        emittedSamples = emitEnd * perFrame
        dropHistory(before: emitEnd - contextFrames)
        return out
    }

    /// [channels, frames] for absolute frames `range` (inside what is kept).
    private func melTensor(_ range: Range<Int>) -> Tensor {
        var values = [Float]()
        values.reserveCapacity(mel.count * range.count)
        for row in mel { values += row[(range.lowerBound - melStart)..<(range.upperBound - melStart)] }
        return Tensor(shape: [mel.count, range.count], scalars: values)
    }

    /// Forgets mel frames and committed excitation before absolute frame `frame`.
    private mutating func dropHistory(before frame: Int) {
        let drop = min(frame, committedFrames) - melStart
        guard drop > 0 else { return }
        for c in mel.indices { mel[c].removeFirst(drop) }
        melStart += drop
        let dropSamples = melStart * samplesPerFrame - sourceStart
        source.removeFirst(dropSamples)
        sourceStart += dropSamples
    }
}
