import ChatterTensor

/// Named weights, keyed by upstream PyTorch state-dict names. Models are built from a store, so the
/// same code loads an upstream safetensors file, a converted model file, or tensors made in a test.
public protocol WeightStore: Sendable {
    /// What the weights come from (a file path), for error messages.
    var source: String { get }
    func contains(_ key: String) -> Bool
    /// The tensor named `key`; throws `TensorError.missingTensor` when absent.
    func tensor(_ key: String) throws -> Tensor
    /// String notes stored with the weights (safetensors `__metadata__`), e.g. a layout marker.
    var metadata: [String: String] { get }
    /// The dtype in which layers built from this store hold their weight matrices (`Linear`,
    /// `Conv1d`): f32, or bf16 under `LayerDTypeWeights` (S3Gen's bf16 compute, `S3GenPrecision`).
    var layerMatrixDType: DType { get }
}

extension WeightStore {
    public var metadata: [String: String] { [:] }
    public var layerMatrixDType: DType { .f32 }

    /// `matrix` (f32, as a layer loaded it) in `layerMatrixDType`.
    func layerMatrix(_ matrix: Tensor) -> Tensor {
        matrix.dtype == layerMatrixDType ? matrix : matrix.converted(to: layerMatrixDType)
    }

    /// The tensor named `key`, checked against `shape`.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let tensor = try tensor(key)
        guard tensor.shape == shape else {
            throw TensorError.shapeMismatch(tensor: "\(source): \(key)", expected: shape, actual: tensor.shape)
        }
        return tensor
    }

    /// The tensor named `key`, checked against `shape` and converted to f32 if stored otherwise.
    public func float32(_ key: String, shape: [Int]) throws -> Tensor {
        let tensor = try tensor(key, shape: shape)
        return tensor.dtype == .f32 ? tensor : tensor.converted(to: .f32)
    }

    /// A GEMV weight `key` checked against `shape`: kept as stored when the kernels read that dtype
    /// in place (f32, bf16, f16, q8_0), otherwise (f64) converted to f32 once at load.
    public func matrix(_ key: String, shape: [Int]) throws -> Tensor {
        let tensor = try tensor(key, shape: shape)
        return gemvWeightDTypes.contains(tensor.dtype) ? tensor : tensor.converted(to: .f32)
    }

    /// A view of the keys under `prefix` (`"tfmr.layers.3."`), so a block loads its own names.
    public func scoped(_ prefix: String) -> ScopedWeights { ScopedWeights(base: self, prefix: prefix) }
}

extension SafetensorsFile: WeightStore {
    public var source: String { path }
}

/// The keys of another store that start with a prefix, addressed without it.
public struct ScopedWeights: WeightStore {
    let base: any WeightStore
    let prefix: String

    public var source: String { base.source }
    public var metadata: [String: String] { base.metadata }
    public var layerMatrixDType: DType { base.layerMatrixDType }
    public func contains(_ key: String) -> Bool { base.contains(prefix + key) }
    public func tensor(_ key: String) throws -> Tensor { try base.tensor(prefix + key) }
}

/// Tensors held in memory (tests, and weights computed at load time).
public struct InMemoryWeights: WeightStore {
    public let source: String
    public let tensors: [String: Tensor]
    public let metadata: [String: String]

    public init(_ tensors: [String: Tensor], source: String = "in-memory weights", metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.source = source
        self.metadata = metadata
    }

    public func contains(_ key: String) -> Bool { tensors[key] != nil }
    public func tensor(_ key: String) throws -> Tensor {
        guard let tensor = tensors[key] else { throw TensorError.missingTensor(path: source, tensor: key) }
        return tensor
    }
}

/// A weight store with some tensors replaced or added (tests that vary one tensor of a fixture;
/// a model built from one file with a tensor from another).
public struct OverlayWeights: WeightStore {
    public let base: any WeightStore
    public let overrides: [String: Tensor]

    public init(base: any WeightStore, overrides: [String: Tensor]) {
        self.base = base
        self.overrides = overrides
    }

    public var source: String { base.source }
    public var metadata: [String: String] { base.metadata }
    public var layerMatrixDType: DType { base.layerMatrixDType }
    public func contains(_ key: String) -> Bool { overrides[key] != nil || base.contains(key) }
    public func tensor(_ key: String) throws -> Tensor { try overrides[key] ?? base.tensor(key) }
}

/// Another store whose layers hold their weight matrices in `layerMatrixDType` (bf16: S3Gen's bf16
/// compute). The tensors themselves are the base's; each layer converts its matrix once at load.
public struct LayerDTypeWeights: WeightStore {
    public let base: any WeightStore
    public let layerMatrixDType: DType

    public init(base: any WeightStore, layerMatrixDType: DType) {
        self.base = base
        self.layerMatrixDType = layerMatrixDType
    }

    public var source: String { base.source }
    public var metadata: [String: String] { base.metadata }
    public func contains(_ key: String) -> Bool { base.contains(key) }
    public func tensor(_ key: String) throws -> Tensor { try base.tensor(key) }
}
