import ArgumentParser
import ChatterTensor
import Foundation

/// `chatter-parity <stage> --model <dir> --input <in.safetensors> --output <out.safetensors>`, or the
/// text mode `chatter-parity tokenize --tokenizer <file|dir> --input <in.jsonl> --output <out.jsonl> [--normalize]`.
@main
struct ChatterParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatter-parity",
        abstract: "Run one named stage of the engine on named input tensors and write its named outputs.",
        discussion: """
            Inputs and outputs are safetensors files; stage parameters are read from the input \
            file's __metadata__ (string values). Tensor and parameter names per stage: --list, \
            and tools/README.md. Compare the output with upstream's dump of the same stage. \
            The text mode `tokenize` reads and writes JSON Lines instead (--tokenizer, --normalize).
            """)

    static let stages: [any ParityStage] = allStages

    @Argument(help: "The stage to run (see --list).")
    var stage: String?

    @Option(help: "Converted model directory (for model stages).")
    var model: String?

    @Option(help: "Input safetensors file with the stage's named tensors.")
    var input: String?

    @Option(help: "Where to write the stage's output tensors (safetensors).")
    var output: String?

    @Option(help: "tokenize: tokenizer.json, or a model directory holding it (default: --model).")
    var tokenizer: String?

    @Flag(help: "tokenize: apply the original model's punc_norm before encoding.")
    var normalize = false

    @Flag(help: "List the stages with their tensors and parameters.")
    var list = false

    mutating func run() throws {
        if list || stage == nil {
            for stage in Self.stages {
                print("\(stage.name)\(stage.needsModel ? " (needs --model)" : ""): \(stage.summary)")
                print("    inputs:  \(stage.inputs.joined(separator: "; "))")
                if !stage.parameters.isEmpty { print("    params:  \(stage.parameters.joined(separator: "; "))") }
                print("    outputs: \(stage.outputs.joined(separator: "; "))")
            }
            print("\(TokenizeMode.name) (text mode; needs --tokenizer or --model): \(TokenizeMode.summary)")
            print("    input:   JSON Lines {\"text\": ..., \"lang\": \"en\" (optional)}")
            print("    output:  JSON Lines {\"ids\": [...]}, one per non-blank input line")
            print("\(HiraganaMode.name) (text mode; --model: pykakasi's dictionaries, default found): \(HiraganaMode.summary)")
            return
        }
        if stage == HiraganaMode.name {
            guard let input, let output else { throw ValidationError("--input and --output are required") }
            try HiraganaMode.run(dictionaries: model, input: input, output: output)
            return
        }
        if stage == TokenizeMode.name {
            guard let location = tokenizer ?? model else {
                throw ValidationError("tokenize needs --tokenizer <tokenizer.json or model directory>")
            }
            guard let input, let output else { throw ValidationError("--input and --output are required") }
            try TokenizeMode.run(tokenizer: location, input: input, output: output, normalize: normalize)
            return
        }
        if tokenizer != nil || normalize {
            throw ValidationError("--tokenizer and --normalize only apply to the tokenize mode")
        }
        guard let name = stage, let selected = Self.stages.first(where: { $0.name == name }) else {
            throw ValidationError(StageError.unknownStage(stage ?? "", known: Self.stages.map(\.name) + [TokenizeMode.name, HiraganaMode.name]).description)
        }
        guard let input, let output else { throw ValidationError("--input and --output are required") }
        if selected.needsModel && model == nil { throw ValidationError(StageError.modelRequired(name).description) }
        let context = StageContext(input: try SafetensorsFile(path: input), model: model.map { URL(fileURLWithPath: $0) })
        let started = ContinuousClock.now
        let tensors = try selected.run(context)
        try SafetensorsWriter.write(tensors, metadata: ["stage": name, "engine": "chatterstream"], to: output)
        let elapsed = ContinuousClock.now - started
        FileHandle.standardError.write(Data("\(name): wrote \(tensors.map { "\($0.name)\($0.tensor.shape)" }.joined(separator: ", ")) to \(output) in \(elapsed)\n".utf8))
    }
}
