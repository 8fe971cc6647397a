import ArgumentParser
import Chatterstream

@main
struct ChatterstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatterstream",
        abstract: "Streaming Chatterbox text-to-speech.",
        subcommands: [Say.self, Stream.self, Serve.self, Info.self, Download.self, Families.self, HashFiles.self])
}

/// `chatterstream families`: the model families and the upstream files each needs.
struct Families: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List model families and their upstream files.")

    func run() {
        for family in ModelFamily.allCases {
            print("\(family.rawValue)  (\(family.repository))")
            for file in family.files {
                print("    \(file.name)  \(file.expectedSizes)")
            }
        }
    }
}
