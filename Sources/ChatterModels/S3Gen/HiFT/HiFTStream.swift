import ChatterTensor

/// HiFT over a mel that arrives in pieces, emitting the waveform as it becomes final, with no seam:
/// the samples it emits equal those of one `HiFTGenerator` call over the whole mel (with the same
/// `SineDrawSource`) to float rounding, and their count is exactly 480 per mel frame.
///
/// Why this is exact rather than crossfaded (CosyVoice2 and the Python package crossfade and drop or
/// blend samples): HiFT is convolutional, so a sample depends on a bounded span of mel frames
/// (its receptive field, ±`contextFrames`), plus the excitation, whose only long-range state is
/// SineGen's running phase per sine. So each push
/// 1. re-vocodes a window from `contextFrames` before the first unemitted frame to the last frame
///    received, and emits samples only up to `contextFrames` before that end (the rest waits for
///    right context, or for `finish`);
/// 2. builds the excitation from committed source samples (kept for the window) plus new ones,
///    carrying SineGen's running phases across pushes; a frame's excitation is committed only once
///    its F0 has its full right context, so it never changes afterwards;
/// 3. draws SineGen's noise and phases from a counter-based source indexed by absolute sample.
/// Work per push is the window (new frames + 2·context), independent of the utterance length.
public struct HiFTStream: Sendable {
    public let vocoder: HiFTGenerator
    public let draws: SineDrawSource
    /// Receptive-field margin in mel frames on each side of the emitted span.
    public let contextFrames: Int

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

    public init(vocoder: HiFTGenerator, draws: SineDrawSource, contextFrames: Int = 16) {
        precondition(contextFrames >= 0)
        self.vocoder = vocoder
        self.draws = draws
        self.contextFrames = contextFrames
        mel = Array(repeating: [], count: vocoder.config.inChannels)
        phases = Array(repeating: 0, count: vocoder.config.sines)
    }

    /// `SineDrawSource` for this vocoder's sine count.
    public init(vocoder: HiFTGenerator, seed: UInt64, contextFrames: Int = 16) {
        self.init(vocoder: vocoder, draws: SineDrawSource(seed: seed, sines: vocoder.config.sines), contextFrames: contextFrames)
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
        let emitEnd = final ? total : max(emittedFrames, total - contextFrames)
        guard emitEnd > emittedFrames else {
            if final && total == 0 { throw HiFTError.emptyMel }
            return []
        }
        let windowStart = max(melStart, emittedFrames - contextFrames)
        let window = windowStart..<total
        let windowMel = melTensor(window)
        let f0 = vocoder.f0Predictor(windowMel.reshaped([1, channels, window.count]))

        // Excitation for the window: committed samples, then new ones from this window's F0.
        let commitEnd = final ? total : max(committedFrames, total - contextFrames)
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
