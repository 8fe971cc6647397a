import ChatterTensor
import Foundation

/// Why CAMPPlus could not embed a feature sequence.
public enum CAMPPlusError: Error, CustomStringConvertible, Equatable {
    /// The unbiased standard deviation of the stats pooling needs at least two frames after the
    /// stride-2 TDNN, so at least 3 fbank frames (upstream returns NaN below that).
    case tooShort(frames: Int, minimum: Int)
    /// The features are not `[T, featureBins]`.
    case badFeatures(shape: [Int], bins: Int)

    public var description: String {
        switch self {
        case let .tooShort(frames, minimum): "CAMPPlus: \(frames) fbank frames; at least \(minimum) are needed"
        case let .badFeatures(shape, bins): "CAMPPlus: features must be [T, \(bins)], got \(shape)"
        }
    }
}

/// The 3D-Speaker CAM++ speaker-verification network (`chatterbox.models.s3gen.xvector.CAMPPlus`),
/// which gives S3Gen its 192-d x-vector (`speaker_encoder.*` in the S3Gen checkpoint), in eval mode.
///
/// Input: the Kaldi fbank `[T, 80]` of 16 kHz audio (`torchaudio.compliance.kaldi.fbank`, computed by
/// ChatterAudio); `embed(fbank:)` applies upstream's per-bin mean normalisation (`extract_feature`)
/// itself. Channel counts, growth rate, bottleneck width and the number of layers per dense block are
/// read from the weights, so reduced test configurations of the upstream class load too.
public struct CAMPPlus: Sendable {
    struct ResBlock: Sendable {
        let conv1: Conv2d, bn1: BatchNorm1d, conv2: Conv2d, bn2: BatchNorm1d
        let shortcut: (Conv2d, BatchNorm1d)?

        func callAsFunction(_ x: Tensor) -> Tensor {
            let inner = relu(bn1(conv1(x).unsqueezed(0)).reshapedTo3())
            let out = bn2(conv2(inner).unsqueezed(0)).reshapedTo3()
            let skip = shortcut.map { $0.1($0.0(x).unsqueezed(0)).reshapedTo3() } ?? x
            return relu(add(out, skip))
        }
    }

    struct DenseLayer: Sendable {
        let bn1: BatchNorm1d, linear1: Conv1d, bn2: BatchNorm1d
        /// `cam_layer.linear_local`, dilated, "same" padding.
        let local: Conv1d
        /// `cam_layer.linear1` / `linear2`: the context attention.
        let cam1: Conv1d, cam2: Conv1d

        func callAsFunction(_ x: Tensor) -> Tensor {  // [1, C, T] → [1, growth, T]
            let h = relu(bn2(linear1(relu(bn1(x)))))
            let y = local(h)
            let context = CAMPPlus.globalPlusSegmentMeans(h)
            let a = sigmoid(cam2(relu(cam1(context))))
            return mul(y, a)
        }
    }

    struct Transit: Sendable {
        let bn: BatchNorm1d, linear: Conv1d
        func callAsFunction(_ x: Tensor) -> Tensor { linear(relu(bn(x))) }
    }

    public static let featureBins = 80
    static let dilations = [1, 2, 2]

    let conv1: Conv2d, bn1: BatchNorm1d
    let resBlocks: [ResBlock]
    let conv2: Conv2d, bn2: BatchNorm1d
    let tdnn: Conv1d, tdnnBN: BatchNorm1d
    let blocks: [[DenseLayer]]
    let transits: [Transit]
    let outBN: BatchNorm1d
    let dense: Conv1d, denseBN: BatchNorm1d
    public var embeddingSize: Int { dense.outChannels }

    /// Loads the network from keys `head.*` and `xvector.*` (scope the S3Gen checkpoint with
    /// `.scoped("speaker_encoder.")`). Throws `TensorError` for missing or wrong-shaped tensors.
    public init(weights: any WeightStore) throws {
        let head = weights.scoped("head.")
        let m = try head.tensor("conv1.weight").shape.first ?? 0
        conv1 = try Conv2d(head, "conv1", out: m, in: 1, kernel: 3, strideH: 1)
        bn1 = try BatchNorm1d(head.scoped("bn1."), channels: m)
        var res: [ResBlock] = []
        for layer in ["layer1", "layer2"] {
            for index in 0..<2 {
                let w = head.scoped("\(layer).\(index).")
                let stride = index == 0 ? 2 : 1
                res.append(ResBlock(
                    conv1: try Conv2d(w, "conv1", out: m, in: m, kernel: 3, strideH: stride),
                    bn1: try BatchNorm1d(w.scoped("bn1."), channels: m),
                    conv2: try Conv2d(w, "conv2", out: m, in: m, kernel: 3, strideH: 1),
                    bn2: try BatchNorm1d(w.scoped("bn2."), channels: m),
                    shortcut: stride == 1 ? nil : (
                        try Conv2d(w, "shortcut.0", out: m, in: m, kernel: 1, strideH: stride),
                        try BatchNorm1d(w.scoped("shortcut.1."), channels: m))))
            }
        }
        resBlocks = res
        conv2 = try Conv2d(head, "conv2", out: m, in: m, kernel: 3, strideH: 2)
        bn2 = try BatchNorm1d(head.scoped("bn2."), channels: m)

        let x = weights.scoped("xvector.")
        let headChannels = m * (Self.featureBins / 8)
        let initChannels = try x.tensor("tdnn.linear.weight").shape.first ?? 0
        tdnn = try Conv1d(x, "tdnn.linear", out: initChannels, in: headChannels, kernel: 5, bias: false, stride: 2, padding: 2)
        tdnnBN = try BatchNorm1d(x.scoped("tdnn.nonlinear.batchnorm."), channels: initChannels)
        let bottleneck = try x.tensor("block1.tdnnd1.linear1.weight").shape.first ?? 0
        let growth = try x.tensor("block1.tdnnd1.cam_layer.linear_local.weight").shape.first ?? 0
        var channels = initChannels
        var blocks: [[DenseLayer]] = [], transits: [Transit] = []
        for (b, dilation) in Self.dilations.enumerated() {
            var layers: [DenseLayer] = []
            while x.contains("block\(b + 1).tdnnd\(layers.count + 1).linear1.weight") {
                let w = x.scoped("block\(b + 1).tdnnd\(layers.count + 1).")
                let c = channels + growth * layers.count
                layers.append(DenseLayer(
                    bn1: try BatchNorm1d(w.scoped("nonlinear1.batchnorm."), channels: c),
                    linear1: try Conv1d(w, "linear1", out: bottleneck, in: c, kernel: 1, bias: false),
                    bn2: try BatchNorm1d(w.scoped("nonlinear2.batchnorm."), channels: bottleneck),
                    local: try Conv1d(w, "cam_layer.linear_local", out: growth, in: bottleneck, kernel: 3, bias: false,
                                      padding: dilation * (3 - 1) / 2, dilation: dilation),
                    cam1: try Conv1d(w, "cam_layer.linear1", out: bottleneck / 2, in: bottleneck, kernel: 1),
                    cam2: try Conv1d(w, "cam_layer.linear2", out: growth, in: bottleneck / 2, kernel: 1)))
            }
            guard !layers.isEmpty else { throw TensorError.missingTensor(path: weights.source, tensor: "xvector.block\(b + 1).tdnnd1.linear1.weight") }
            channels += growth * layers.count
            blocks.append(layers)
            let t = x.scoped("transit\(b + 1).")
            transits.append(Transit(bn: try BatchNorm1d(t.scoped("nonlinear.batchnorm."), channels: channels),
                                    linear: try Conv1d(t, "linear", out: channels / 2, in: channels, kernel: 1, bias: false)))
            channels /= 2
        }
        self.blocks = blocks
        self.transits = transits
        outBN = try BatchNorm1d(x.scoped("out_nonlinear.batchnorm."), channels: channels)
        let embedding = try x.tensor("dense.linear.weight").shape.first ?? 0
        dense = try Conv1d(x, "dense.linear", out: embedding, in: 2 * channels, kernel: 1, bias: false)
        denseBN = try BatchNorm1d(x.scoped("dense.nonlinear.batchnorm."), channels: embedding, affine: false)
    }

    /// The x-vector `[embeddingSize]` of a raw Kaldi fbank `[T, 80]`, after subtracting each bin's
    /// mean over time (upstream `extract_feature`). Not L2-normalised (the flow does that).
    public func embed(fbank: Tensor) throws -> Tensor {
        guard fbank.rank == 2, fbank.shape[1] == Self.featureBins else {
            throw CAMPPlusError.badFeatures(shape: fbank.shape, bins: Self.featureBins)
        }
        let (frames, bins) = (fbank.shape[0], fbank.shape[1])
        guard frames >= 3 else { throw CAMPPlusError.tooShort(frames: frames, minimum: 3) }
        var values = fbank.contiguous().scalars()
        for b in 0..<bins {
            var sum: Float = 0
            for t in 0..<frames { sum += values[t * bins + b] }
            let mean = sum / Float(frames)
            for t in 0..<frames { values[t * bins + b] -= mean }
        }
        return try forward(features: Tensor(shape: [frames, bins], scalars: values))
    }

    /// The network on already-normalised features `[T, 80]` (upstream `forward`).
    public func forward(features: Tensor) throws -> Tensor {
        guard features.rank == 2, features.shape[1] == Self.featureBins else {
            throw CAMPPlusError.badFeatures(shape: features.shape, bins: Self.featureBins)
        }
        let frames = features.shape[0]
        guard frames >= 3 else { throw CAMPPlusError.tooShort(frames: frames, minimum: 3) }
        // Head: [1, F, T] as a one-channel image [C=1, H=F, W=T].
        var image = features.transposed(0, 1).contiguous().unsqueezed(0)
        image = relu(bn1(conv1(image).unsqueezed(0)).reshapedTo3())
        for block in resBlocks { image = block(image) }
        image = relu(bn2(conv2(image).unsqueezed(0)).reshapedTo3())
        var x = image.reshaped([1, image.shape[0] * image.shape[1], frames])  // row c·H' + f
        x = relu(tdnnBN(tdnn(x)))
        for (layers, transit) in zip(blocks, transits) {
            for layer in layers { x = concatenate([x, layer(x)], axis: 1) }
            x = transit(x)
        }
        x = relu(outBN(x))
        let stats = Self.meanAndStd(x)  // [1, 2C, 1]
        return denseBN(dense(stats)).reshaped([embeddingSize])
    }

    /// mean over time plus the 100-frame segment means (`avg_pool1d(ceil_mode=True)`, the last
    /// segment averaged over its actual length) repeated over each segment: `[1, C, T]`.
    static func globalPlusSegmentMeans(_ h: Tensor) -> Tensor {
        let (channels, frames) = (h.shape[1], h.shape[2])
        let values = h.contiguous().scalars()
        var out = [Float](repeating: 0, count: channels * frames)
        let segment = 100
        for c in 0..<channels {
            let row = values[(c * frames)..<((c + 1) * frames)]
            let mean = row.reduce(Float(0), +) / Float(frames)
            var start = 0
            while start < frames {
                let end = min(frames, start + segment)
                var sum: Float = 0
                for t in start..<end { sum += values[c * frames + t] }
                let segMean = sum / Float(end - start)
                for t in start..<end { out[c * frames + t] = mean + segMean }
                start = end
            }
        }
        return Tensor(shape: [1, channels, frames], scalars: out)
    }

    /// Stats pooling: [mean_t, unbiased std_t] per channel → `[1, 2C, 1]`.
    static func meanAndStd(_ x: Tensor) -> Tensor {
        let (channels, frames) = (x.shape[1], x.shape[2])
        let values = x.contiguous().scalars()
        var out = [Float](repeating: 0, count: 2 * channels)
        for c in 0..<channels {
            var sum = 0.0
            for t in 0..<frames { sum += Double(values[c * frames + t]) }
            let mean = sum / Double(frames)
            var squares = 0.0
            for t in 0..<frames { let d = Double(values[c * frames + t]) - mean; squares += d * d }
            out[c] = Float(mean)
            out[channels + c] = Float((squares / Double(frames - 1)).squareRoot())
        }
        return Tensor(shape: [1, 2 * channels, 1], scalars: out)
    }
}

private extension Tensor {
    /// `[1, C, H, W]` → `[C, H, W]`.
    func reshapedTo3() -> Tensor { reshaped(Array(shape.dropFirst())) }
}
