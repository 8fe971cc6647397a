import Foundation

/// Chatterbox-Turbo's text tokenizer: what `AutoTokenizer.from_pretrained(ckpt_dir)` builds from the
/// checkpoint's GPT-2 files (transformers 5.2: byte-level BPE through `tokenizers`; there is no
/// `tokenizer.json`): `vocab.json` (50257 ids) + `merges.txt` (50000 ranked merges) with the added
/// tokens of `tokenizer_config.json` (`added_tokens_decoder`) and `added_tokens.json` — `<|endoftext|>`
/// and 19 paralinguistic tags such as `[laugh]` — split out before the `ByteLevel` pre-tokenizer.
/// No normalizer (so the added tokens' `normalized` flag changes nothing) and no special tokens
/// added around the text (`add_bos_token` false, empty template).
public struct TurboTokenizer: Sendable {
    public static let vocabularyFileName = "vocab.json"
    public static let mergesFileName = "merges.txt"
    public static let addedTokensFileName = "added_tokens.json"
    public static let configFileName = "tokenizer_config.json"

    public let bpe: BPETokenizer

    /// Loads the tokenizer files from a model (or checkpoint) directory. `added_tokens.json` and
    /// `tokenizer_config.json` are optional; when both list a token they must agree on its id.
    public init(directory: URL) throws {
        func read(_ name: String) throws -> Data? {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            do { return try Data(contentsOf: url) } catch {
                throw TokenizerError.unreadable(path: url.path, reason: "\(error)")
            }
        }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func json(_ data: Data, _ name: String) throws -> Any {
            do { return try JSONSerialization.jsonObject(with: data) } catch {
                throw TokenizerError.corrupt(path: path(name), reason: "not valid JSON (\(error.localizedDescription))")
            }
        }

        guard let vocabData = try read(Self.vocabularyFileName) else {
            throw TokenizerError.unreadable(path: path(Self.vocabularyFileName), reason: "no such file (a Turbo model directory holds vocab.json and merges.txt)")
        }
        guard let vocabObject = try json(vocabData, Self.vocabularyFileName) as? [String: Any] else {
            throw TokenizerError.corrupt(path: path(Self.vocabularyFileName), reason: "the top level is not a JSON object")
        }
        var vocabulary: [String: Int] = [:]
        for (token, value) in vocabObject {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else {
                throw TokenizerError.corrupt(path: path(Self.vocabularyFileName), reason: "\"\(token)\" is not mapped to a non-negative integer")
            }
            vocabulary[token] = id
        }

        guard let mergesData = try read(Self.mergesFileName) else {
            throw TokenizerError.unreadable(path: path(Self.mergesFileName), reason: "no such file")
        }
        guard let mergesText = String(data: mergesData, encoding: .utf8) else {
            throw TokenizerError.corrupt(path: path(Self.mergesFileName), reason: "not UTF-8")
        }
        var merges: [(String, String)] = []
        for (index, line) in mergesText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // As `tokenizers`' `BPE::read_file`: a leading `#version` line and blank lines are skipped.
            if line.isEmpty || (index == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError.corrupt(path: path(Self.mergesFileName), reason: "line \(index + 1) is not two tokens separated by one space")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }

        var added: [Int: BPETokenizer.AddedToken] = [:]
        if let data = try read(Self.configFileName) {
            guard let config = try json(data, Self.configFileName) as? [String: Any] else {
                throw TokenizerError.corrupt(path: path(Self.configFileName), reason: "the top level is not a JSON object")
            }
            if let decoder = config["added_tokens_decoder"] as? [String: Any] {
                for (key, value) in decoder {
                    guard let id = Int(key), let entry = value as? [String: Any], let content = entry["content"] as? String else {
                        throw TokenizerError.corrupt(path: path(Self.configFileName), reason: "added_tokens_decoder[\"\(key)\"] is not {content, …} under an integer id")
                    }
                    added[id] = .init(content: content, id: id, lstrip: entry["lstrip"] as? Bool ?? false,
                                      rstrip: entry["rstrip"] as? Bool ?? false, singleWord: entry["single_word"] as? Bool ?? false)
                }
            }
        }
        if let data = try read(Self.addedTokensFileName) {
            guard let map = try json(data, Self.addedTokensFileName) as? [String: Any] else {
                throw TokenizerError.corrupt(path: path(Self.addedTokensFileName), reason: "the top level is not a JSON object")
            }
            for (content, value) in map {
                guard let id = (value as? NSNumber)?.intValue, id >= 0 else {
                    throw TokenizerError.corrupt(path: path(Self.addedTokensFileName), reason: "\"\(content)\" is not mapped to a non-negative integer")
                }
                if let known = added[id] {
                    guard known.content.unicodeScalars.elementsEqual(content.unicodeScalars) else {
                        throw TokenizerError.corrupt(path: path(Self.addedTokensFileName),
                                                     reason: "id \(id) is \"\(content)\" here but \"\(known.content)\" in \(Self.configFileName)")
                    }
                } else {
                    added[id] = .init(content: content, id: id)
                }
            }
        }
        bpe = try BPETokenizer(path: directory.path, vocabulary: vocabulary, merges: merges,
                               addedTokens: added.keys.sorted().map { added[$0]! }, preTokenizer: .byteLevel)
    }

    /// The tokenizer's ids for `text` (`tokenizer(text).input_ids`), no normalisation.
    public func encode(_ text: String) -> [Int] { bpe.encode(text) }

    /// What `ChatterboxTurboTTS.generate` feeds T3: `encode(punc_norm(text))` (Turbo's `punc_norm`),
    /// with no start/stop text tokens.
    public func textTokens(for text: String, normalize: Bool = true) -> [Int] {
        encode(normalize ? TextNormalization.turboPuncNorm(text) : text)
    }
}
