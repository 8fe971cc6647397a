import ChatterAudio
import ChatterTensor

/// `fbank`: torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=…) with every other default.
struct FbankStage: ParityStage {
    let name = "fbank"
    let summary = "Kaldi fbank (torchaudio.compliance.kaldi.fbank defaults; CAMPPlus's input)"
    let inputs = ["wav [T] f32 (16 kHz)"]
    let parameters = ["sample_rate (16000)", "num_mel_bins (80)", "subtract_mean (false: CAMPPlus CMN)"]
    let outputs = ["fbank [frames, num_mel_bins]"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.tensor("wav").converted(to: .f32)
        let rate = try context.int("sample_rate", default: 16000)
        let bins = try context.int("num_mel_bins", default: 80)
        try require(wav.rank == 1, "wav must be [T], got \(wav.shape)")
        try require(rate >= 100 && bins > 3, "need sample_rate ≥ 100 and num_mel_bins > 3")
        let feats = KaldiFbank.compute(wav.scalars(), sampleRate: rate, numMelBins: bins,
                                       subtractMean: try context.bool("subtract_mean", default: false))
        return [("fbank", feats)]
    }
}

/// `prompt-mel`: chatterbox s3gen/utils/mel.py `mel_spectrogram` of 24 kHz audio.
struct PromptMelStage: ParityStage {
    let name = "prompt-mel"
    let summary = "S3Gen prompt mel (s3gen/utils/mel.py mel_spectrogram, 24 kHz)"
    let inputs = ["wav [T] or [1, T] f32 (24 kHz, T > 720)"]
    let outputs = ["mel [1, 80, T/480]"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.tensor("wav").converted(to: .f32)
        try require(wav.rank == 1 || (wav.rank == 2 && wav.shape[0] == 1), "wav must be [T] or [1, T], got \(wav.shape)")
        do {
            let mel = try S3GenMel.compute(wav.scalars())
            return [("mel", mel.reshaped([1] + mel.shape))]
        } catch let error as AudioFrontEndError {
            throw StageError.badInput(error.description)
        }
    }
}

/// `resample-sinc`: torchaudio.functional.resample (sinc_interp_hann), as S3Gen.embed_ref uses it.
struct ResampleSincStage: ParityStage {
    let name = "resample-sinc"
    let summary = "torchaudio windowed-sinc resampler (transforms.Resample; embed_ref's 24k→16k)"
    let inputs = ["wav [T] f32"]
    let parameters = ["orig_freq (24000)", "new_freq (16000)", "lowpass_filter_width (6)", "rolloff (0.99)"]
    let outputs = ["wav [ceil(T·new/orig)]"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.tensor("wav").converted(to: .f32)
        let from = try context.int("orig_freq", default: 24000), to = try context.int("new_freq", default: 16000)
        let width = try context.int("lowpass_filter_width", default: 6)
        let rolloff = try context.float("rolloff", default: 0.99)
        try require(wav.rank == 1, "wav must be [T], got \(wav.shape)")
        try require(from > 0 && to > 0 && width > 0 && rolloff > 0, "rates, lowpass_filter_width and rolloff must be positive")
        let output = SincResampler.resample(wav.scalars(), from: from, to: to, lowpassFilterWidth: width, rolloff: Double(rolloff))
        return [("wav", Tensor(shape: [output.count], scalars: output))]
    }
}
