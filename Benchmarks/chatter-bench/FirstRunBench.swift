import Chatterstream
import Foundation

/// #14 item 7: does the first synthesis in a process cost more than the ones after it? Each of
/// `processes` fresh child processes (this executable again, `--first-run-child`) loads the model
/// and speaks the same text `syntheses` times in a row; the parent reports, per synthesis index,
/// the median over processes of the time to the first audio, the total time and the page faults
/// the synthesis took, and the ratio of the first to the median of the later ones.
///
/// Why child processes: what a first run pays (weights mapped but not yet faulted in, the
/// allocator's heap not yet grown, the thread pool's workers not yet started, lazily built tables)
/// only exists once per process; a second engine in the same process finds most of it done.
/// Every run does the same work: the `adaptive` strategy (its chunks do not depend on the machine's
/// speed, unlike `paced`), the same seed, and the built-in voice's T3 prefix read from the file an
/// untimed first child leaves beside the model, as a user's second `say` finds it.
struct FirstRunBench {
    let model: URL
    let text: String
    let maxTokens: Int
    let processes: Int
    let syntheses: Int
    /// One-shot (one S3Gen call, what `chatterstream say` does) or streamed in chunks.
    let oneShot: Bool
    let threads: Int

    /// One synthesis as a child measures it.
    struct Sample: Codable {
        var firstAudio: Double
        var total: Double
        var audio: Double
        var minorFaults: Int
        var majorFaults: Int
    }

    /// A child's report: the load, then each synthesis in order.
    struct ChildReport: Codable {
        var load: Double
        var loadMinorFaults: Int
        var samples: [Sample]
    }

    private var options: SynthesisOptions {
        var options = SynthesisOptions()
        options.strategy = .adaptive
        options.firstChunkTokens = 15
        options.maxTokens = maxTokens
        options.seed = 1
        options.oneShot = oneShot
        return options
    }

    private static func faults() -> (minor: Int, major: Int) {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return (Int(usage.ru_minflt), Int(usage.ru_majflt))
    }

    /// The child's side: load, speak `syntheses` times, print the report as one JSON line.
    func runChild() async throws {
        let loadFaults = Self.faults()
        let loadStart = now()
        let tts = try await StreamingTTS(model: .directory(model), options: options, watermark: true).load()
        let load = Double(now() - loadStart) / 1e9
        var report = ChildReport(load: load, loadMinorFaults: Self.faults().minor - loadFaults.minor, samples: [])
        for _ in 0..<syntheses {
            let before = Self.faults()
            let start = now()
            var first: UInt64?
            var samples = 0
            for try await chunk in tts.synthesize(text) {
                if first == nil && chunk.sampleCount > 0 { first = now() }
                samples += chunk.sampleCount
            }
            let end = now()
            let after = Self.faults()
            report.samples.append(Sample(firstAudio: Double((first ?? end) - start) / 1e9, total: Double(end - start) / 1e9,
                                         audio: Double(samples) / 24_000, minorFaults: after.minor - before.minor,
                                         majorFaults: after.major - before.major))
        }
        let line = try JSONEncoder().encode(report)
        FileHandle.standardOutput.write(line)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    private func spawnChild() throws -> ChildReport {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["first-run", "--first-run-child", "--threads", "\(threads)", "--first-run-model", model.path,
                             "--first-run-syntheses", "\(syntheses)", "--stream-tokens", "\(maxTokens)",
                             "--stream-text", text] + (oneShot ? ["--first-run-one-shot"] : [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FirstRunBenchError.childFailed(status: process.terminationStatus)
        }
        guard let line = data.split(separator: UInt8(ascii: "\n")).last else { throw FirstRunBenchError.childFailed(status: -1) }
        return try JSONDecoder().decode(ChildReport.self, from: Data(line))
    }

    func run() throws -> [String: Any] {
        precondition(processes >= 1 && syntheses >= 2, "first-run needs at least one process and two syntheses")
        // An untimed child writes the built-in voice's T3 prefix beside the model (a user's first
        // ever run), so that every timed child starts as a user's later `say` does.
        note("first-run: one untimed child to leave the voice prefix beside the model")
        _ = try spawnChild()
        var reports: [ChildReport] = []
        for index in 0..<processes {
            let report = try spawnChild()
            let line = report.samples.enumerated().map { "#\($0.offset + 1) \(rounded($0.element.firstAudio, 2)) / \(rounded($0.element.total, 2)) s (\($0.element.minorFaults) faults)" }
            note("first-run: process \(index + 1): load \(rounded(report.load, 2)) s; first audio / total: \(line.joined(separator: ", "))")
            reports.append(report)
        }
        var perIndex: [[String: Any]] = []
        for i in 0..<syntheses {
            let samples = reports.map { $0.samples[i] }
            perIndex.append(["synthesis": i + 1,
                             "first_audio_s": rounded(median(samples.map(\.firstAudio))),
                             "total_s": rounded(median(samples.map(\.total))),
                             "audio_s": rounded(median(samples.map(\.audio))),
                             "minor_faults": Int(median(samples.map { Double($0.minorFaults) })),
                             "major_faults": Int(median(samples.map { Double($0.majorFaults) }))])
        }
        // The first synthesis against the later ones of the same process, then the median of those ratios.
        func ratio(_ value: (Sample) -> Double) -> Double {
            median(reports.map { report in value(report.samples[0]) / median(report.samples.dropFirst().map(value)) })
        }
        let firstAudioRatio = ratio(\.firstAudio), totalRatio = ratio(\.total)
        note("first-run: the first synthesis over the later ones (median of \(processes) processes): first audio \(rounded(firstAudioRatio, 3))×, total \(rounded(totalRatio, 3))× (#14 item 7 asks ≤ 1.1×)")
        return ["method": "\(processes) fresh processes, each loading the model and speaking the same text \(syntheses) times (\(oneShot ? "one-shot, as say" : "streamed, adaptive, first chunk 15"), seed 1, watermark on, built-in voice prefix from disk); medians over processes",
                "model": model.path, "one_shot": oneShot, "max_tokens": maxTokens,
                "load_s": rounded(median(reports.map(\.load))), "load_minor_faults": Int(median(reports.map { Double($0.loadMinorFaults) })),
                "syntheses": perIndex,
                "first_over_later_first_audio": rounded(firstAudioRatio, 3), "first_over_later_total": rounded(totalRatio, 3)]
    }
}

enum FirstRunBenchError: Error, CustomStringConvertible {
    case childFailed(status: Int32)

    var description: String {
        switch self {
        case let .childFailed(status): return "first-run: a child process failed (status \(status)); run it alone to see why: chatter-bench first-run --first-run-child --first-run-model <dir>"
        }
    }
}
