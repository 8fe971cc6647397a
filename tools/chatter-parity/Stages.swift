/// Every stage `chatter-parity` knows, in `--list` order.
let allStages: [any ParityStage] = [
    TorchLoadStage(),
    STFTStage(),
    ISTFTStage(),
    Conv1dStage(),
    LinearStage(),
    PerthApplyStage(),
    PerthDetectStage(),
    HiFTSourceStage(),
    HiFTWaveStage(),
    T3PrefillStage(),
    T3DecodeLogitsStage(),
    T3SampleStage(),
    S3GenEncoderStage(),
    S3GenMuStage(),
    S3GenCFMStepStage(),
    S3GenMelStage(),
]
