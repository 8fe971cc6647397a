/// A language a model speaks: its ISO 639-1 code (upstream `language_id`) and English name.
public struct SpokenLanguage: Sendable, Hashable, CustomStringConvertible {
    public let code: String
    public let name: String

    public init(code: String, name: String) {
        self.code = code
        self.name = name
    }

    public var description: String { "\(code) (\(name))" }

    public static let english = SpokenLanguage(code: "en", name: "English")

    /// Upstream `mtl_tts.SUPPORTED_LANGUAGES` (0.1.7 and 5de7a54 alike), in its order.
    public static let multilingual: [SpokenLanguage] = [
        .init(code: "ar", name: "Arabic"), .init(code: "da", name: "Danish"), .init(code: "de", name: "German"),
        .init(code: "el", name: "Greek"), .english, .init(code: "es", name: "Spanish"),
        .init(code: "fi", name: "Finnish"), .init(code: "fr", name: "French"), .init(code: "he", name: "Hebrew"),
        .init(code: "hi", name: "Hindi"), .init(code: "it", name: "Italian"), .init(code: "ja", name: "Japanese"),
        .init(code: "ko", name: "Korean"), .init(code: "ms", name: "Malay"), .init(code: "nl", name: "Dutch"),
        .init(code: "no", name: "Norwegian"), .init(code: "pl", name: "Polish"), .init(code: "pt", name: "Portuguese"),
        .init(code: "ru", name: "Russian"), .init(code: "sv", name: "Swedish"), .init(code: "sw", name: "Swahili"),
        .init(code: "tr", name: "Turkish"), .init(code: "zh", name: "Chinese"),
    ]

    /// The language `code` names among `supported`, as upstream `generate` checks `language_id`:
    /// compared after Python's `str.lower()`; nil or empty means no language (upstream's falsy
    /// `language_id`: no check, no tag).
    public static func resolve(_ code: String?, among supported: [SpokenLanguage]) throws(UnsupportedLanguage) -> SpokenLanguage? {
        guard let code, !code.isEmpty else { return nil }
        let lowered = PythonText.lowercased(code)
        // Code points, not Swift's canonical equivalence: Python compares dict keys that way.
        guard let language = supported.first(where: { $0.code.unicodeScalars.elementsEqual(lowered.unicodeScalars) }) else {
            throw UnsupportedLanguage(code: code, supported: supported)
        }
        return language
    }
}

/// A language the model does not speak was asked for.
public struct UnsupportedLanguage: Error, Equatable, CustomStringConvertible {
    /// The code as given.
    public let code: String
    /// What the model speaks.
    public let supported: [SpokenLanguage]

    public var description: String {
        "unsupported language '\(code)': this model speaks "
            + supported.map(\.description).joined(separator: ", ")
            + (supported.count > 1 ? "; pass one of these codes" : "; pass that code or none")
    }
}
