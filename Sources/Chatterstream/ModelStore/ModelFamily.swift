import ChatterModels

/// A Chatterbox model family the store can fetch from the Hugging Face hub: its hub repository and
/// the published identity (size, sha256) of every file we download, as its `ModelVariant` (in
/// ChatterModels' `Families/`) defines them. Encoded as its name (`chatterbox-turbo`).
public struct ModelFamily: RawRepresentable, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// The family's definition, with its published sizes.
    public let variant: ModelVariant

    public init(_ variant: ModelVariant) { self.variant = variant }

    public init?(rawValue: String) {
        guard let variant = ModelVariant.named(rawValue) else { return nil }
        self.init(variant)
    }

    // One line per family.
    public static let chatterbox = ModelFamily(.chatterbox)
    public static let chatterboxTurbo = ModelFamily(.chatterboxTurbo)
    public static let chatterboxMultilingual = ModelFamily(.chatterboxMultilingual)
    public static let chatterboxMultilingualV2 = ModelFamily(.chatterboxMultilingualV2)
    public static let chatterboxNano = ModelFamily(.chatterboxNano)

    public static var allCases: [ModelFamily] { ModelVariant.published.map(ModelFamily.init) }

    public var rawValue: String { variant.name }
    public var description: String { rawValue }

    /// The ISO 639-1 codes `SynthesisOptions.language` takes for this family (`en` alone: none is taken).
    public var languageCodes: [String] { variant.languages.map(\.code) }

    /// The hub repository.
    public var repository: String { variant.hubRepository }

    /// Files of the upstream checkpoint directory this family needs, with their published identities.
    public var files: [PublishedFile] { variant.publishedFiles }

    public static func == (a: ModelFamily, b: ModelFamily) -> Bool { a.rawValue == b.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let family = ModelFamily(rawValue: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "unknown model family '\(name)' (known: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        self = family
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
