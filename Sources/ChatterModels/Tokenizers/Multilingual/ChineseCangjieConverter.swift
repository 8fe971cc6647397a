import Foundation

/// Upstream `ChineseCangjieConverter`: every code point of category `Lo` that the Cangjie table knows
/// becomes its code, one `[cj_x]` token per code character, then `[cj_.]`; everything else passes
/// through. A code shared by several table words gets the word's position among them as a suffix
/// (`"abc"`, `"abc1"`, …), exactly as upstream's `cj2word[code].index(glyph)`.
///
/// Segmentation: upstream first cuts the text into words with spacy-pkuseg (`pkuseg().cut`, its
/// `spacy_ontonotes` model, downloaded on first use) and joins them with spaces, so that runs of
/// whitespace become one space, the ends are stripped, and words are set apart by spaces (which the
/// tokenizer then spells `[SPACE]`). chatterbox-tts declares spacy-pkuseg, so that is its default
/// install's behaviour; `PkusegSegmenter` ports it. Without the model (`PkusegModelLocation` finds
/// none) this converter warns once and codes the text unsegmented: upstream's behaviour when
/// spacy-pkuseg is not installed (installed without its model, upstream crashes).
public struct ChineseCangjieConverter: LanguageTextProcessor {
    /// The table's file name in a model directory (a hub file beside the multilingual model).
    public static let fileName = PublishedFile.cangjieTable.name

    /// Upstream's message when spacy-pkuseg is not installed, with how to install its model here.
    public static let segmentationSkipped = "pkuseg not available - Chinese segmentation will be skipped "
        + "(spacy-pkuseg's model is not installed: run tools/pkuseg/fetch-model.sh or `chatterstream download --model chatterbox-multilingual`, "
        + "or set \(PkusegModelLocation.environmentVariable) to a folder holding \(PkusegModelLocation.requiredFileNames.joined(separator: ", ")))"

    /// The coded replacement of each single-code-point word of the table.
    let replacements: [UInt32: String]
    let log: TextProcessingLog?
    /// spacy-pkuseg's `cut`; nil: segmentation is skipped (said once through `log`).
    let segmenter: LazyPkusegSegmenter?

    /// Reads the table (`Cangjie5_TC.json`: a JSON array of `"word\tcode[\t…]"` strings). Without a
    /// `segmenter`, `log` (when given) hears once, at first use, that segmentation is skipped.
    public init(contentsOf url: URL, segmenter: LazyPkusegSegmenter? = nil, log: TextProcessingLog? = nil) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(path: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? "\(error)" : "no such file")
        }
        try self.init(json: data, path: url.path, segmenter: segmenter, log: log)
    }

    /// Parses the table's contents; `path` only names it in errors. Upstream stops loading at a
    /// malformed entry and keeps what it has read; a malformed table is refused here instead, since
    /// the codes would silently depend on where it broke.
    public init(json data: Data, path: String, segmenter: LazyPkusegSegmenter? = nil, log: TextProcessingLog? = nil) throws {
        func corrupt(_ reason: String) -> TokenizerError { .corrupt(path: path, reason: reason) }
        let entries: [Any]
        do {
            guard let array = try JSONSerialization.jsonObject(with: data) as? [Any] else { throw corrupt("the top level is not a JSON array") }
            entries = array
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw corrupt("not valid JSON (\(error.localizedDescription))")
        }
        // Python dicts compare strings by code points: keys are scalar arrays, never Swift Strings.
        var codeOfWord: [[UInt32]: [UInt32]] = [:]  // word2cj: the last entry of a word wins
        var wordsOfCode: [[UInt32]: [[UInt32]]] = [:]  // cj2word: every entry, in order
        for (index, entry) in entries.enumerated() {
            guard let line = entry as? String else { throw corrupt("entry \(index) is not a string") }
            let fields = line.unicodeScalars.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 2 else { throw corrupt("entry \(index) has no tab between word and code") }
            let word = fields[0].map(\.value), code = fields[1].map(\.value)
            codeOfWord[word] = code
            wordsOfCode[code, default: []].append(word)
        }
        var replacements: [UInt32: String] = [:]
        for (word, code) in codeOfWord where word.count == 1 {
            let position = wordsOfCode[code]!.firstIndex(of: word)!
            var coded = ""
            for character in code + (position > 0 ? String(position).unicodeScalars.map(\.value) : []) {
                coded += "[cj_" + String(Unicode.Scalar(character)!) + "]"
            }
            replacements[word[0]] = coded + "[cj_.]"
        }
        self.replacements = replacements
        self.segmenter = segmenter
        self.log = log
    }

    /// Upstream without the table: every character passes through (its `word2cj` stays empty); the
    /// text is still segmented when there is a `segmenter`.
    public init(withoutTableLoggingTo log: TextProcessingLog?, segmenter: LazyPkusegSegmenter? = nil) {
        replacements = [:]
        self.segmenter = segmenter
        self.log = log
    }

    public func process(_ text: String) -> String {
        var segmented = text
        if let segmenter {
            // nil: the model could not be read, which the segmenter has said; code unsegmented.
            if let words = segmenter.cut(text) { segmented = words.joined(separator: " ") }
        } else {
            log?.warnOnce(Self.segmentationSkipped)
        }
        var out = ""
        out.reserveCapacity(segmented.utf8.count)
        for scalar in segmented.unicodeScalars {
            if PythonText.isOtherLetter(scalar), let coded = replacements[scalar.value] {
                out += coded
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

