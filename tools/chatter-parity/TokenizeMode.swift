import ChatterModels
import Foundation

/// `chatter-parity tokenize`: a text mode beside the tensor stages. JSON Lines in, JSON Lines out:
/// each input line `{"text": "...", "lang": "xx"?}` gives one output line `{"ids": [...]}` with
/// upstream's raw encoding (no start/stop padding): `EnTokenizer.encode(text)` for the original's
/// `tokenizer.json`, Turbo's `tokenizer(text).input_ids` for a directory with `vocab.json` +
/// `merges.txt`, `MTLTokenizer.encode(text, language_id=lang)` for the multilingual
/// `grapheme_mtl_merged_expanded_v1.json`; `--normalize` applies that family's `punc_norm` first.
/// Blank input lines are skipped.
enum TokenizeMode {
    static let name = "tokenize"
    static let summary = "text → token ids (original, Turbo or multilingual tokenizer; --normalize: punc_norm first), JSON Lines"

    enum Failure: Error, CustomStringConvertible {
        case badLine(path: String, line: Int, reason: String)
        case unwritable(path: String, reason: String)

        var description: String {
            switch self {
            case let .badLine(path, line, reason): return "\(path):\(line): \(reason)"
            case let .unwritable(path, reason): return "\(path): cannot write (\(reason))"
            }
        }
    }

    static func run(tokenizer location: String, input: String, output: String, normalize: Bool) throws {
        let started = ContinuousClock.now
        let tokenizer = try TextTokenizers.load(at: URL(fileURLWithPath: location))
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: input))
        } catch {
            throw Failure.badLine(path: input, line: 0, reason: "cannot read (\(error.localizedDescription))")
        }
        var out = Data()
        var count = 0
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw Failure.badLine(path: input, line: lineNumber, reason: "not a JSON object")
                }
                object = parsed
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure.badLine(path: input, line: lineNumber, reason: "invalid JSON (\(error.localizedDescription))")
            }
            guard let text = object["text"] as? String else {
                throw Failure.badLine(path: input, line: lineNumber, reason: "no \"text\" string")
            }
            var language: String?
            if let lang = object["lang"], !(lang is NSNull) {
                guard let lang = lang as? String else { throw Failure.badLine(path: input, line: lineNumber, reason: "\"lang\" is not a string") }
                language = lang
            }
            let ids: [Int]
            do {
                ids = normalize ? try tokenizer.t3Input(for: text, language: language) : try tokenizer.encode(text, language: language)
            } catch {
                throw Failure.badLine(path: input, line: lineNumber, reason: error.description)
            }
            out.append(Data("{\"ids\": [\(ids.map(String.init).joined(separator: ", "))]}\n".utf8))
            count += 1
        }
        do {
            try out.write(to: URL(fileURLWithPath: output))
        } catch {
            throw Failure.unwritable(path: output, reason: error.localizedDescription)
        }
        let elapsed = ContinuousClock.now - started
        FileHandle.standardError.write(Data("\(name): wrote \(count) lines to \(output)\(normalize ? " (punc_norm applied)" : "") in \(elapsed)\n".utf8))
    }
}
