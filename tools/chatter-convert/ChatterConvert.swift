import ArgumentParser
import ChatterModels
import ChatterTensor
import Chatterstream
import Foundation

/// `chatter-convert <upstream-dir> <out-dir> [--dtype …] [--force] [--strict]`
@main
struct ChatterConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatter-convert",
        abstract: "Convert an upstream Chatterbox checkpoint directory into chatterstream's format.",
        discussion: """
            The input is a checkpoint directory as published on the Hugging Face hub (original, Turbo, \
            multilingual or Nano; the family is detected from its T3 file). Files are checked against the \
            published sizes and sha256 (a mismatch warns; --strict refuses; a file whose identity this \
            build does not know, as Nano's, is hashed, recorded and warned about), validated tensor by tensor, weight-norm \
            folded, stripped of unused tensors, and written with a manifest into <out-dir> atomically.
            """)

    @Argument(help: "Upstream checkpoint directory.")
    var upstream: String

    @Argument(help: "Output directory (must not exist unless --force).")
    var output: String

    @Option(name: .long, parsing: .singleValue,
            help: "Compute dtype of weight matrices: f32, bf16 or f16 for every group, or GROUP=DTYPE (groups: t3, s3gen, ve; t3 also takes q8_0: its decode matrices block-quantised to 8 bits). Repeatable. Default f32.")
    var dtype: [String] = []

    @Flag(help: "Replace an existing output directory.")
    var force = false

    @Flag(help: "Refuse files that are not the published ones (size, sha256, unexpected tensors).")
    var strict = false

    @Flag(help: "Skip hashing the upstream files (sizes are still checked).")
    var skipHash = false

    @Option(help: "Convert as this family instead of the one detected from the T3 file (a directory holding both multilingual T3 files converts as chatterbox-multilingual, V3; pass chatterbox-multilingual-v2 for V2). One of: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")).")
    var family: String?

    mutating func run() throws {
        var options = ModelConverter.Options()
        options.force = force
        options.strict = strict
        options.verifySourceHashes = !skipHash
        options.dtypes = try Self.parseDTypes(dtype)
        if let family {
            guard let known = ModelFamily(rawValue: family) else {
                Self.fail("unknown family '\(family)' (known: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            options.family = known
        }
        options.progress = { line in FileHandle.standardError.write(Data("\(line)\n".utf8)) }
        let started = ContinuousClock.now
        do {
            let summary = try ModelConverter().convert(from: URL(fileURLWithPath: upstream), to: URL(fileURLWithPath: output), options: options)
            print("\(summary.family.rawValue) → \(summary.output.path)")
            for file in summary.manifest.files {
                let detail = [file.tensors.map { "\($0) tensors" }, file.dtype, "\(file.bytes) bytes"].compactMap { $0 }.joined(separator: ", ")
                print("  \(file.name): \(detail)")
            }
            print("  dropped \(summary.manifest.dropped.count) unused tensors; \(summary.warnings.count) warnings; \(ContinuousClock.now - started)")
        } catch let error as ConversionError {
            Self.fail(error.description)
        } catch let error as TensorError {
            Self.fail(error.description)
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("chatter-convert: error: \(message)\n".utf8))
        Foundation.exit(1)
    }

    static func parseDTypes(_ specs: [String]) throws -> [WeightGroup: DType] {
        var result: [WeightGroup: DType] = [:]
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard let dtype = DType(rawValue: parts.last!.uppercased()), [DType.f32, .bf16, .f16, .q8_0].contains(dtype) else {
                throw ValidationError("--dtype \(spec): the dtype must be f32, bf16, f16 or (t3 only) q8_0")
            }
            guard dtype != .q8_0 || parts.count == 2 && parts[0] == WeightGroup.t3.rawValue else {
                throw ValidationError("--dtype \(spec): q8_0 applies to T3 only (--dtype t3=q8_0)")
            }
            if parts.count == 1 {
                for group in WeightGroup.allCases { result[group] = dtype }
            } else if let group = WeightGroup(rawValue: parts[0]) {
                result[group] = dtype
            } else {
                throw ValidationError("--dtype \(spec): unknown group '\(parts[0])' (groups: t3, s3gen, ve)")
            }
        }
        return result
    }
}
