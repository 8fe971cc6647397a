/// The multilingual tokenizer's `ja` step (`MultilingualTokenizer(directory:japanese:)`): `process`
/// is upstream `hiragana_normalize`. Kept in its own file with `LanguageTextProcessor.swift`, which is
/// a verbatim copy of the `mtltext` branch's, so the two branches merge without conflict.
extension JapaneseHiraganaNormalizer: LanguageTextProcessor {}
