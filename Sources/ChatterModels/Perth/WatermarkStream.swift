/// Perth watermarking of a stream without seams and without changing its length: each push
/// re-watermarks a window reaching `contextSamples` before the first unemitted sample and emits up
/// to `contextSamples` before the newest one (the rest waits for its right context or the end).
/// The first emission holds nothing back (`firstHoldBack` 0), so the watermark adds no latency to
/// the first chunk; that one seam is then approximate (the tests measure it), the rest are exact.
/// Perth's embedding path (soxr resampling, STFT, per-bin dB normalisation, a convolutional encoder)
/// is local in time, so with enough context the emitted samples equal one `applyPreservingLength`
/// over the whole stream to rounding (the test measures it), provided every window starts on the
/// whole signal's analysis grid: a multiple of Perth's 10 ms hop, which at 24 kHz is also a whole
/// number of the 3:4 resampler's phases.
package struct WatermarkStream: Sendable {
    package let watermarker: PerthWatermarker
    package let sampleRate: Int
    package let contextSamples: Int
    package let firstHoldBack: Int
    private var buffer: [Float] = []
    private var bufferStart = 0
    package private(set) var emitted = 0
    private var received: Int { bufferStart + buffer.count }

    /// Window starts are multiples of this (Perth's hop at `sampleRate`; 1 where it is not whole).
    package let grid: Int

    /// `contextSamples`: default 0.2 s, past Perth's reach (4,800 samples at 24 kHz are exact to
    /// float rounding; 2,400 give ~60 dB).
    package init(watermarker: PerthWatermarker, sampleRate: Int, contextSamples: Int? = nil, firstHoldBack: Int = 0) {
        self.watermarker = watermarker
        self.sampleRate = sampleRate
        self.contextSamples = contextSamples ?? sampleRate / 5
        self.firstHoldBack = firstHoldBack
        let hop = PerthAudioProcessor.hop * sampleRate
        grid = hop % PerthAudioProcessor.sampleRate == 0 ? hop / PerthAudioProcessor.sampleRate : 1
    }

    package mutating func push(_ samples: [Float], final: Bool) throws -> [Float] {
        buffer += samples
        let holdBack = emitted == 0 ? firstHoldBack : contextSamples
        let end = final ? received : max(emitted, received - holdBack)
        guard end > emitted else { return [] }
        let windowStart = max(bufferStart, (emitted - contextSamples) / grid * grid)
        let marked = try watermarker.applyPreservingLength(Array(buffer[(windowStart - bufferStart)...]), sampleRate: sampleRate)
        let out = Array(marked[(emitted - windowStart)..<(end - windowStart)])
        emitted = end
        let keepFrom = max(bufferStart, (end - contextSamples) / grid * grid)
        buffer.removeFirst(keepFrom - bufferStart)
        bufferStart = keepFrom
        return out
    }
}
