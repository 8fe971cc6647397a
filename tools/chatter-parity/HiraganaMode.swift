import ChatterModels
import Foundation

/// `chatter-parity hiragana`: a text mode for the multilingual tokenizer's Japanese step. JSON Lines
/// in, JSON Lines out: each input line `{"text": "..."}` gives `{"hira": "..."}` (upstream
/// `hiragana_normalize(text)` with pykakasi 2.3.0) or `{"error": "..."}` where pykakasi itself raises.
/// `--model` is the folder holding pykakasi's dictionaries (default: where `KakasiDictionaryLocation` finds them).
enum HiraganaMode {
    static let name = "hiragana"
    static let summary = "Japanese text → upstream hiragana_normalize (pykakasi 2.3.0), JSON Lines"

    static func run(dictionaries location: String?, input: String, output: String) throws {
        let started = ContinuousClock.now
        guard let directory = location.map({ URL(fileURLWithPath: $0) }) ?? KakasiDictionaryLocation.locate(cacheRoot: nil) else {
            throw TokenizeMode.Failure.badLine(path: input, line: 0, reason: "pykakasi's dictionaries not found: run tools/kakasi/fetch-dictionaries.sh or pass --model <folder>")
        }
        let normalizer = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: input)) } catch {
            throw TokenizeMode.Failure.badLine(path: input, line: 0, reason: "cannot read (\(error.localizedDescription))")
        }
        var out = Data()
        var count = 0
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let text = object["text"] as? String else {
                throw TokenizeMode.Failure.badLine(path: input, line: index + 1, reason: "not a JSON object with a \"text\" string")
            }
            let result: [String: String]
            switch normalizer.normalizedOrFailure(text) {
            case let .success(hiragana): result = ["hira": hiragana]
            case let .failure(failure): result = ["error": failure.description]
            }
            out.append(try JSONSerialization.data(withJSONObject: result, options: [.withoutEscapingSlashes]))
            out.append(UInt8(ascii: "\n"))
            count += 1
        }
        do { try out.write(to: URL(fileURLWithPath: output)) } catch {
            throw TokenizeMode.Failure.unwritable(path: output, reason: error.localizedDescription)
        }
        FileHandle.standardError.write(Data("\(name): wrote \(count) lines to \(output) in \(ContinuousClock.now - started)\n".utf8))
    }
}
