import ChatterTensor

/// Checks a user-supplied input before an op's preconditions would stop the process.
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw StageError.badInput(message()) }
}

/// `stft`: torch.stft(signal, n_fft, hop_length, win_length, window, center, pad_mode, normalized,
/// onesided, return_complex=True), output as view_as_real.
struct STFTStage: ParityStage {
    let name = "stft"
    let summary = "short-time Fourier transform (torch.stft)"
    let inputs = ["signal [T] or [B, T] f32", "window [win_length] f32 (optional; rectangular if absent)"]
    let parameters = ["n_fft (required)", "hop_length (n_fft/4)", "win_length (n_fft)", "center (true)",
                      "pad_mode (reflect|constant)", "normalized (false)", "onesided (true)"]
    let outputs = ["spectrum [B?, n_fft/2+1, frames, 2] (real, imag)"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let signal = try context.tensor("signal").converted(to: .f32)
        let window = try context.optionalTensor("window")?.converted(to: .f32)
        let nFFT = try context.int("n_fft")
        let hop = try context.int("hop_length", default: max(1, nFFT / 4))
        let winLength = try context.int("win_length", default: nFFT)
        let center = try context.bool("center", default: true)
        let padModeName = context.string("pad_mode", default: "reflect")
        try require(signal.rank == 1 || signal.rank == 2, "signal must be [T] or [B, T], got \(signal.shape)")
        try require(nFFT >= 1 && hop >= 1 && winLength >= 1 && winLength <= nFFT, "need n_fft ≥ 1, hop_length ≥ 1, 1 ≤ win_length ≤ n_fft")
        try require(window == nil || window!.shape == [winLength], "window must be [\(winLength)], got \(window!.shape)")
        try require(["reflect", "constant"].contains(padModeName), "pad_mode must be reflect or constant")
        let length = signal.shape[signal.rank - 1]
        try require(!center || padModeName != "reflect" || nFFT / 2 < length, "reflect padding needs more than n_fft/2 samples")
        try require(center || length >= nFFT, "without centring the signal needs at least n_fft samples")
        let spectrum = stft(signal, nFFT: nFFT, hopLength: hop, winLength: winLength, window: window, center: center,
                            padMode: padModeName == "reflect" ? .reflect : .constant,
                            normalized: try context.bool("normalized", default: false),
                            onesided: try context.bool("onesided", default: true))
        return [("spectrum", spectrum)]
    }
}

/// `istft`: torch.istft of a view_as_real spectrum.
struct ISTFTStage: ParityStage {
    let name = "istft"
    let summary = "inverse short-time Fourier transform (torch.istft)"
    let inputs = ["spectrum [B?, bins, frames, 2] f32", "window [win_length] f32 (optional)"]
    let parameters = ["n_fft (required)", "hop_length (n_fft/4)", "win_length (n_fft)", "center (true)", "normalized (false)", "length (natural)"]
    let outputs = ["signal [B?, T]"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let spectrum = try context.tensor("spectrum").converted(to: .f32)
        let window = try context.optionalTensor("window")?.converted(to: .f32)
        let nFFT = try context.int("n_fft")
        let hop = try context.int("hop_length", default: max(1, nFFT / 4))
        let winLength = try context.int("win_length", default: nFFT)
        try require((spectrum.rank == 3 || spectrum.rank == 4) && spectrum.shape.last == 2, "spectrum must be [B?, bins, frames, 2], got \(spectrum.shape)")
        try require(nFFT >= 1 && hop >= 1 && winLength >= 1 && winLength <= nFFT, "need n_fft ≥ 1, hop_length ≥ 1, 1 ≤ win_length ≤ n_fft")
        let bins = spectrum.shape[spectrum.rank - 3]
        try require(bins == nFFT / 2 + 1 || bins == nFFT, "spectrum has \(bins) bins; n_fft \(nFFT) needs \(nFFT / 2 + 1) (onesided) or \(nFFT)")
        try require(window == nil || window!.shape == [winLength], "window must be [\(winLength)], got \(window!.shape)")
        let length = context.parameter("length").flatMap(Int.init)
        let signal = istft(spectrum, nFFT: nFFT, hopLength: hop, winLength: winLength, window: window,
                           center: try context.bool("center", default: true),
                           normalized: try context.bool("normalized", default: false), length: length)
        return [("signal", signal)]
    }
}

/// `conv1d`: torch.nn.functional.conv1d, plus the padding modes our layers use.
struct Conv1dStage: ParityStage {
    let name = "conv1d"
    let summary = "1-D convolution (F.conv1d; padding_mode zeros|reflect|replicate|causal)"
    let inputs = ["input [B, Cin, T] f32", "weight [Cout, Cin/groups, K]", "bias [Cout] (optional)"]
    let parameters = ["stride (1)", "padding (0)", "dilation (1)", "groups (1)", "padding_mode (zeros)"]
    let outputs = ["output [B, Cout, T']"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let x = try context.tensor("input").converted(to: .f32)
        let weight = try context.tensor("weight").converted(to: .f32)
        let bias = try context.optionalTensor("bias")?.converted(to: .f32)
        let stride = try context.int("stride", default: 1), padding = try context.int("padding", default: 0)
        let dilation = try context.int("dilation", default: 1), groups = try context.int("groups", default: 1)
        let modes: [String: Conv1dPadding] = ["zeros": .zeros, "reflect": .reflect, "replicate": .replicate, "causal": .causal]
        let modeName = context.string("padding_mode", default: "zeros")
        guard let mode = modes[modeName] else { throw StageError.badParameter("padding_mode", modeName, "zeros, reflect, replicate or causal") }
        try require(x.rank == 3 && weight.rank == 3, "input and weight must be rank 3, got \(x.shape) and \(weight.shape)")
        try require(stride >= 1 && dilation >= 1 && padding >= 0 && groups >= 1, "stride, dilation and groups must be ≥ 1, padding ≥ 0")
        try require(x.shape[1] % groups == 0 && weight.shape[0] % groups == 0 && weight.shape[1] == x.shape[1] / groups,
                    "weight \(weight.shape) does not fit input \(x.shape) with \(groups) groups")
        try require(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [\(weight.shape[0])]")
        try require(mode != .causal || padding == 0, "causal padding takes padding 0")
        let reach = (weight.shape[2] - 1) * dilation + 1
        let padded = x.shape[2] + (mode == .causal ? reach - 1 : 2 * padding)
        try require(padded >= reach, "the input is shorter than the kernel's reach (\(reach))")
        try require(mode != .reflect || padding < x.shape[2], "reflect padding must be shorter than the input")
        let y = conv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups, paddingMode: mode)
        return [("output", y)]
    }
}

/// `linear`: torch.nn.functional.linear (x @ weightᵀ + bias); up to 8 rows take our GEMV, more
/// take OpenBLAS. bf16 weights stay bf16 (compare with torch on `weight.float()`).
struct LinearStage: ParityStage {
    let name = "linear"
    let summary = "F.linear: input @ weightᵀ + bias (GEMV for ≤ 8 rows, sgemm above)"
    let inputs = ["input [..., K] f32", "weight [N, K] f32 or bf16", "bias [N] f32 (optional)"]
    let outputs = ["output [..., N]"]

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let x = try context.tensor("input").converted(to: .f32)
        var weight = try context.tensor("weight")
        let bias = try context.optionalTensor("bias")?.converted(to: .f32)
        if weight.dtype != .bf16 { weight = weight.converted(to: .f32) }
        try require(weight.rank == 2, "weight must be [N, K], got \(weight.shape)")
        try require(x.rank >= 1 && x.shape.last == weight.shape[1], "input \(x.shape) must end in K = \(weight.shape[1])")
        try require(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [\(weight.shape[0])]")
        return [("output", linear(x, weight: weight, bias: bias))]
    }
}
