/// One language's step of upstream `MTLTokenizer.encode` (`chatterbox/models/tokenizers/tokenizer.py`),
/// run after lowercasing and NFKD and before the `[xx]` tag is prepended: Chinese Cangjie coding
/// (`ChineseCangjieConverter`), Japanese kana (`hiragana_normalize`), Korean jamo (`korean_normalize`).
///
/// A processor sees exactly the text upstream's function sees (Unicode scalars; Python code points)
/// and returns exactly what it returns. It never throws: upstream logs and passes text through when
/// its data is missing, and a processor built without its data does the same.
public protocol LanguageTextProcessor: Sendable {
    func process(_ text: String) -> String
}
