/// Every stage `chatter-parity` knows, in `--list` order.
let allStages: [any ParityStage] = [
    TorchLoadStage(),
    STFTStage(),
    ISTFTStage(),
    Conv1dStage(),
    LinearStage(),
    S3GenEncoderStage(),
    S3GenMuStage(),
    S3GenCFMStepStage(),
    S3GenMelStage(),
]
