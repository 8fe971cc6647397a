import ArgumentParser
import ChatterTensor
import Foundation

/// `chatter-parity <stage> --model <dir> --input <in.safetensors> --output <out.safetensors>`
@main
struct ChatterParity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatter-parity",
        abstract: "Run one named stage of the engine on named input tensors and write its named outputs.",
        discussion: """
            Inputs and outputs are safetensors files; stage parameters are read from the input \
            file's __metadata__ (string values). Tensor and parameter names per stage: --list, \
            and tools/README.md. Compare the output with upstream's dump of the same stage.
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
            return
        }
        guard let name = stage, let selected = Self.stages.first(where: { $0.name == name }) else {
            throw ValidationError(StageError.unknownStage(stage ?? "", known: Self.stages.map(\.name)).description)
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
