import ChatterAudio
import ChatterModels
import ChatterTensor
import Chatterstream
import ChatterstreamServer
import Foundation

/// The fuzz targets: every reader of untrusted bytes, behind one function each. `chatter-fuzz`
/// runs them under libFuzzer (tools/fuzz/run) or replays files through them; FuzzRegressionTests
/// replays the kept crashes and seeds (tools/fuzz/regressions, tools/fuzz/seeds) in `swift test`.
///
/// Each target accepts any bytes: it may throw (a typed error is the expected answer to garbage),
/// never crash, and never read outside what it was given (AddressSanitizer watches).
public enum FuzzTarget: String, CaseIterable, Sendable {
    case safetensors, pt, audio, oggOpus, tokenizers, request, manifest, pickle, pkuseg

    /// Runs one input. Errors are the readers' typed refusals and are ignored.
    public func run(_ data: Data) {
        switch self {
        case .safetensors:
            guard let path = Scratch.write(data, name: "input.safetensors") else { return }
            guard let file = try? SafetensorsFile(path: path) else { return }
            for entry in file.entries {
                guard let tensor = try? file.tensor(entry.name) else { continue }
                touch(tensor)
            }
        case .pt:
            guard let path = Scratch.write(data, name: "input.pt") else { return }
            guard let checkpoint = try? TorchCheckpoint(path: path) else { return }
            for (_, tensor) in checkpoint.tensors() { touch(tensor) }
        case .audio:
            guard let path = Scratch.write(data, name: "input.audio") else { return }
            guard let audio = try? AudioFile.read(path: path, maxSeconds: 2) else { return }
            // The resampler every reference goes through next (bounded: garbage rates are refused or slow).
            if audio.samples.count <= 48_000, (8_000...96_000).contains(audio.sampleRate) {
                _ = try? resample(audio.samples, from: audio.sampleRate, to: 16_000)
            }
        case .oggOpus:
            // Our own Ogg Opus decoder (libogg + libopus; the library's public API, and what the
            // tests read our encoder's output with), at a rate of each kind.
            // maxSeconds bounds what a tiny file may ask for (a 1-byte packet can stand for 120 ms).
            _ = try? OggOpusDecoder.decode(data, sampleRate: 24_000, maxSeconds: 30)
            _ = try? OggOpusDecoder.decode(data, sampleRate: 48_000, maxSeconds: 30)
        case .tokenizers:
            // The first byte picks the language (none, or one of the tokenizer's), the rest is the
            // text. Running all 24 multilingual settings on every input cut the rate to ~6 inputs/s
            // under ASan; this way the fuzzer reaches each language's path at the full rate.
            guard let selector = data.first else { return }
            let text = String(decoding: data.dropFirst(), as: UTF8.self)
            for tokenizer in Tokenizers.all {
                let languages = [nil] + tokenizer.languages.map(\.code)
                _ = try? tokenizer.t3Input(for: text, language: languages[Int(selector) % languages.count])
            }
        case .request:
            // The server's own body decoding (field checks, options laid over the defaults).
            _ = try? SpeechRequest.decode(data, defaults: SynthesisOptions())
        case .manifest:
            guard let directory = Scratch.modelDirectory(manifest: data) else { return }
            _ = try? ConvertedModel(directory: directory)
        case .pickle:
            // The one pickle reader (`PickleReader`), as each of its users runs it: as torch's
            // weights_only subset over in-memory storages, then as plain data; a plain dict then
            // goes through pykakasi's dictionary checks (a folder the user names,
            // CHATTERSTREAM_KAKASI_DICTIONARIES) and a few lookups.
            if let root = try? PickleReader.read(data, objects: TorchObjectResolver(loadStorage: PickleStorages.load)) {
                touchTensors(in: root)
            }
            guard case .dict? = try? PickleReader.read(data), let directory = Scratch.kakasiDirectory(kanwa: data),
                  let normalizer = try? JapaneseHiraganaNormalizer(dictionaryDirectory: directory) else { return }
            for text in ["色", "そん色", "日本語\n本日", "漢字ｰ\u{FE00}", "本\u{FE00}\u{FE00}日", ""] { _ = normalizer.process(text) }
        case .pkuseg:
            runPkuseg(data)
        }
    }

    /// spacy-pkuseg's model files, as a folder a user names (CHATTERSTREAM_PKUSEG_MODEL) holds them.
    private func runPkuseg(_ data: Data) {
        // The first byte picks the file the rest is: features.msgpack (the MessagePack reader and the
        // feature table's checks) or weights.npz (the .npz/.npy readers and the weights' checks); the
        // other files are the seeds' small model. A model that loads then segments a few texts.
        guard let selector = data.first, let directory = Scratch.pkusegDirectory(fuzzing: selector % 2 == 0 ? .features : .weights,
                                                                                  with: data.dropFirst()),
              let segmenter = try? PkusegSegmenter(directory: directory) else { return }
        for text in ["中国学生", "中 国\n学生。", "12ab中-国", "", "e\u{301}中"] { _ = segmenter.cut(text) }
    }

    /// Every tensor in a pickled value, read (nesting is bounded by `PickleLimits.nestingDepth`).
    private func touchTensors(in value: PickleValue) {
        switch value {
        case let .tensor(tensor): touch(tensor)
        case let .tuple(items): items.forEach(touchTensors)
        case let .list(list): list.items.forEach(touchTensors)
        case let .dict(dict): dict.items.forEach { touchTensors(in: $0.key); touchTensors(in: $0.value) }
        default: break
        }
    }

    /// Reads every element (the way a model reads its weights) without keeping them.
    private func touch(_ tensor: Tensor) {
        guard tensor.count <= 1 << 20 else { return }
        if tensor.dtype == .q8_0 { _ = tensor.contiguous().count; return }
        _ = tensor.scalars().reduce(0, +)
        tensor.contiguous().withUnsafeRawBytes { _ = $0.reduce(0) { $0 &+ Int($1) } }
    }
}

/// The repository's checkout, found from this file's path (fixtures and assets are read from it).
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}

/// The three text front ends, loaded once from the committed tokenizer files (the multilingual one with
/// the fixture's synthetic Cangjie table, its skipped-processing warnings silenced).
enum Tokenizers {
    static let all: [any TextTokenizer] = {
        var result: [any TextTokenizer] = []
        let english = Repository.root.appendingPathComponent("Tests/Fixtures/tokenizers/chatterbox-en/tokenizer.json")
        let turbo = Repository.root.appendingPathComponent("Tests/Assets/tokenizers/chatterbox-turbo")
        let multilingual = Repository.root.appendingPathComponent("Tests/Assets/tokenizers/chatterbox-multilingual")
            .appendingPathComponent(MultilingualTokenizer.fileName)
        let cangjie = Repository.root.appendingPathComponent("Tests/Fixtures/tokenizers/cangjie_synthetic.json")
        do {
            result.append(try EnglishTokenizer(contentsOf: english))
            result.append(try TurboTokenizer(directory: turbo))
            let silent = TextProcessingLog(sink: { _ in })
            result.append(try MultilingualTokenizer(bpe: BPETokenizer(contentsOf: multilingual),
                                                    chinese: ChineseCangjieConverter(contentsOf: cangjie, log: silent),
                                                    japanese: nil, log: silent))
        } catch {
            fatalError("chatter-fuzz: cannot load the tokenizers from \(Repository.root.path): \(error)")
        }
        return result
    }()
}

/// The storages a fuzzed torch pickle names: any key holds up to 4,096 f32 elements (a larger
/// count is what `TorchCheckpoint` refuses as a storage shorter than its record).
enum PickleStorages {
    static let elements = 4096
    static let storage = Tensor(shape: [elements], scalars: (0..<elements).map(Float.init))

    static func load(_ record: TorchStorage) throws(PickleError.Kind) -> Tensor {
        guard record.dtype == .f32, record.count <= elements else {
            throw .malformed("storage 'data/\(record.key)' holds \(elements) f32 elements, not \(record.count) \(record.dtype)")
        }
        return Tensor(shape: [record.count], dtype: .f32, storage: storage.storage, byteOffset: storage.byteOffset)
    }
}

/// A per-process folder for the readers that take paths (memory-mapped formats, libsndfile).
enum Scratch {
    static let folder: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: base).appendingPathComponent("chatter-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static func write(_ data: Data, name: String) -> String? {
        let path = folder.appendingPathComponent(name).path
        return FileManager.default.createFile(atPath: path, contents: data) ? path : nil
    }

    /// A folder holding the fuzzed bytes as `kanwadict4.db` and empty (valid) `itaijidict4.db` and `halfkana3.db`.
    static func kakasiDirectory(kanwa: Data) -> URL? {
        let directory = folder.appendingPathComponent("kakasi")
        let emptyDict = Data([0x80, 4, 0x7D, 0x2E])  // pickle.dumps({}, protocol=4) without its frame
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in ["itaijidict4.db", "halfkana3.db"] where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            guard FileManager.default.createFile(atPath: directory.appendingPathComponent(name).path, contents: emptyDict) else { return nil }
        }
        return FileManager.default.createFile(atPath: directory.appendingPathComponent("kanwadict4.db").path, contents: kanwa) ? directory : nil
    }

    enum PkusegFile { case features, weights }

    /// A folder holding the fuzzed bytes as `file` and the seeds' small model's other file, with the
    /// fixture's word list as `default.pkl`: one folder per fuzzed file, so each run writes one file.
    static func pkusegDirectory(fuzzing file: PkusegFile, with data: Data) -> URL? {
        let seeds = Repository.root.appendingPathComponent("tools/fuzz/seeds/pkuseg")
        let directory = folder.appendingPathComponent(file == .features ? "pkuseg-features" : "pkuseg-weights")
        let features = directory.appendingPathComponent(PkusegModel.featuresFileName)
        let weights = directory.appendingPathComponent(PkusegModel.weightsFileName)
        let wordList = directory.appendingPathComponent(PkusegWordList.defaultFileName)
        if !FileManager.default.fileExists(atPath: wordList.path) {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            // The seeds are the selector byte then the file.
            guard let seedFeatures = try? Data(contentsOf: seeds.appendingPathComponent("features")).dropFirst(),
                  let seedWeights = try? Data(contentsOf: seeds.appendingPathComponent("weights")).dropFirst(),
                  FileManager.default.createFile(atPath: features.path, contents: Data(seedFeatures)),
                  FileManager.default.createFile(atPath: weights.path, contents: Data(seedWeights)),
                  (try? FileManager.default.copyItem(at: Repository.root.appendingPathComponent("Tests/Fixtures/tokenizers/pkuseg_words_cut.pkl"),
                                                    to: wordList)) != nil
            else { return nil }
        }
        return FileManager.default.createFile(atPath: (file == .features ? features : weights).path, contents: data) ? directory : nil
    }

    /// A model directory holding the fuzzed manifest and a small real tensor file under each name a
    /// manifest may list (`t3.safetensors` …), so that the size and format checks are reached.
    static func modelDirectory(manifest: Data) -> URL? {
        let directory = folder.appendingPathComponent("model")
        if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("t3.safetensors").path) {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let tensors = Repository.root.appendingPathComponent("Tests/Fixtures/formats/synthetic_checkpoint.safetensors")
            for name in ["t3", "s3gen", "ve", "conds"] {
                try? FileManager.default.copyItem(at: tensors, to: directory.appendingPathComponent("\(name).safetensors"))
            }
        }
        guard FileManager.default.createFile(atPath: directory.appendingPathComponent("manifest.json").path, contents: manifest) else {
            return nil
        }
        return directory
    }
}

