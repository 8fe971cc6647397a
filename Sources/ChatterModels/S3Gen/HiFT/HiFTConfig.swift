/// Hyper-parameters of S3Gen's HiFT vocoder (`HiFTGenerator` as `S3Token2Wav` builds it, with its
/// `ConvRNNF0Predictor`). `chatterbox` is the shipped model; tests use reduced channel counts with the
/// same structure.
public struct HiFTConfig: Sendable, Equatable, Codable {
    public var inChannels = 80
    public var baseChannels = 512
    /// Width of the F0 predictor's five convolutions (`cond_channels`).
    public var f0CondChannels = 512
    /// Overtones above the fundamental (`nb_harmonics`); SineGen makes harmonics + 1 sines.
    public var harmonics = 8
    public var sampleRate = 24_000
    /// SineGen amplitude (`nsf_alpha`) and voiced noise std (`nsf_sigma`); unvoiced noise std is
    /// sineAmplitude / 3.
    public var sineAmplitude: Float = 0.1
    public var noiseStd: Float = 0.003
    /// f0 above this (Hz) is voiced.
    public var voicedThreshold: Float = 10
    public var upsampleRates = [8, 5, 3]
    public var upsampleKernels = [16, 11, 7]
    public var nFFT = 16
    public var hopLength = 4
    public var resblockKernels = [3, 7, 11]
    public var resblockDilations = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    public var sourceResblockKernels = [7, 7, 11]
    public var sourceResblockDilations = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    /// Leaky-ReLU slope before each transposed convolution (the one before conv_post is torch's
    /// default 0.01).
    public var lreluSlope: Float = 0.1
    public var audioLimit: Float = 0.99

    public init() {}

    /// The vocoder of Chatterbox's S3Gen (`mel2wav`).
    public static let chatterbox = HiFTConfig()

    /// Number of sines (fundamental + overtones).
    public var sines: Int { harmonics + 1 }
    /// Output samples per mel frame (480 for Chatterbox).
    public var samplesPerFrame: Int { upsampleRates.reduce(1, *) * hopLength }
    /// STFT bins of the source / conv_post magnitude half (n_fft/2 + 1).
    public var bins: Int { nFFT / 2 + 1 }
}
