import Foundation

/// The original (English) Chatterbox text tokenizer, upstream's `EnTokenizer`
/// (`chatterbox/models/tokenizers/tokenizer.py`): every ASCII space becomes the literal `[SPACE]`
/// token, then the HF `tokenizer.json` pipeline runs (`BPETokenizer`). Characters outside the
/// vocabulary become `[UNK]` (id 1), one per character.
///
/// Note: the HF `Whitespace` pre-tokenizer drops every Unicode whitespace character other than the
/// ASCII space (which was turned into `[SPACE]` first), so tabs, newlines and NBSP vanish from the
/// ids. The vocabulary's NBSP token (id 329) is therefore never produced by `encode`; it stays in the
/// vocabulary because the T3 embedding rows are indexed by these ids.
public struct EnglishTokenizer: Sendable {
    /// The file name inside a model directory.
    public static let fileName = "tokenizer.json"
    /// `T3Config.start_text_token`: upstream `tts.py` pads the text ids with it on the left.
    public static let startTextToken = 255
    /// `T3Config.stop_text_token`: padded on the right.
    public static let stopTextToken = 0
    /// The literal that replaces each ASCII space before tokenisation.
    public static let spaceToken = "[SPACE]"

    public let bpe: BPETokenizer

    /// Loads `tokenizer.json`, or `<directory>/tokenizer.json` when `url` is a directory. Checks, as
    /// upstream does, that `[START]` and `[STOP]` are in the vocabulary.
    public init(contentsOf url: URL) throws {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? url.appendingPathComponent(Self.fileName) : url
        try self.init(bpe: BPETokenizer(contentsOf: file))
    }

    public init(bpe: BPETokenizer) throws {
        for token in ["[START]", "[STOP]", Self.spaceToken] where bpe.id(of: token) == nil {
            throw TokenizerError.corrupt(path: bpe.path, reason: "the vocabulary has no \(token) token")
        }
        self.bpe = bpe
    }

    /// `EnTokenizer.encode`: raw ids, no normalisation and no start/stop padding.
    public func encode(_ text: String) -> [Int] { bpe.encode(Self.replacingSpaces(text)) }

    /// `txt.replace(' ', SPACE)` (also the multilingual tokenizer's step).
    static func replacingSpaces(_ text: String) -> String {
        // Appended as a String: `UnicodeScalarView.append(contentsOf:)` rebuilds the whole string each
        // time, which made a long text with many spaces quadratic (found by the tokenizers fuzzer).
        var replaced = ""
        replaced.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar == " " { replaced += spaceToken } else { replaced.unicodeScalars.append(scalar) }
        }
        return replaced
    }

    /// `EnTokenizer.decode`: tokens joined with spaces (HF decode without a decoder), then spaces
    /// removed, `[SPACE]` → " ", and `[STOP]` / `[UNK]` removed. Unknown ids are skipped.
    public func decode(_ ids: [Int]) -> String {
        let joined = ids.compactMap(bpe.token(of:)).joined(separator: " ")
        var scalars = Array(joined.unicodeScalars)
        for (old, new) in [(" ", ""), (Self.spaceToken, " "), ("[STOP]", ""), ("[UNK]", "")] {
            scalars = TextNormalization.replacingAll(Array(old.unicodeScalars), with: Array(new.unicodeScalars), in: scalars)
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }

    /// What `ChatterboxTTS.generate` feeds T3 for one text (before CFG duplication):
    /// `[startTextToken] + encode(punc_norm(text)) + [stopTextToken]`.
    public func textTokens(for text: String, normalize: Bool = true) -> [Int] {
        [Self.startTextToken] + encode(normalize ? TextNormalization.puncNorm(text) : text) + [Self.stopTextToken]
    }
}
