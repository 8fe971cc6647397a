import ChatterModels
import Testing
@testable import Chatterstream

@Suite struct ModelFamilyTests {
    @Test func everyFamilyListsUniqueFilesWithIdentities() {
        for family in ModelFamily.allCases {
            let names = family.files.map(\.name)
            #expect(Set(names).count == names.count, "\(family): duplicate file names")
            for file in family.files {
                // Pinned, or (a family added without hub access: Nano) unpinned with a size limit.
                #expect(!file.identities.isEmpty || (file.unpinnedSizeLimit ?? 0) > 0, "\(family) \(file.name)")
                for identity in file.identities {
                    #expect(identity.sha256.count == 64 && identity.size > 0, "\(family) \(file.name)")
                    #expect(file.matches(size: identity.size, sha256: identity.sha256.uppercased()))
                }
            }
        }
        #expect(ModelFamily(rawValue: "chatterbox-turbo") == .chatterboxTurbo)
        #expect(ModelFamily(rawValue: "chatterbox-nano") == .chatterboxNano)
    }

    /// Nano is Turbo with upstream's GPT2_small T3 (5de7a54's `GPT2_SMALL_CONFIG` and
    /// `from_local(nano=True)`): the same files by name, bar the T3 file; the head count is the
    /// config's 12, not a guess off the width.
    @Test func nanoIsTurboWithTheSmallT3() {
        let nano = ModelVariant.chatterboxNano, turbo = ModelVariant.chatterboxTurbo
        #expect(nano.hubRepository == "ResembleAI/chatterbox-nano")
        #expect(nano.publishedFiles.map(\.name) == turbo.publishedFiles.map { $0.name == "t3_turbo_v1.safetensors" ? "t3_nano_v1.safetensors" : $0.name })
        #expect(nano.publishedFiles.allSatisfy { !$0.isPinned && $0.sizeLimit > 0 })
        #expect(PublishedFile.t3Nano.sizeLimit == PublishedFile.t3Turbo.sizeLimit)
        #expect(nano.t3.hiddenSize == 768 && nano.t3.layers == 12 && nano.t3.heads == 12 && nano.t3.headDim == 64)
        #expect(nano.t3.intermediateSize == 3072 && nano.t3.backbone == .gpt2(maxPositions: 8196))
        var asTurbo = nano.t3
        asTurbo.hiddenSize = 1024; asTurbo.layers = 24; asTurbo.heads = 16; asTurbo.intermediateSize = 4096
        #expect(asTurbo == turbo.t3, "only the backbone's sizes differ from Turbo's")
        #expect(type(of: nano.t3.procedure) == type(of: turbo.t3.procedure))
        #expect(nano.samplingDefaults == turbo.samplingDefaults && nano.trailingSilenceTokens == 3)
        #expect(nano.voiceRecipe == turbo.voiceRecipe && nano.textTokenizer == turbo.textTokenizer)
        #expect(ModelVariant.published(t3File: "t3_nano_v1.safetensors") == nano)
        #expect(ModelVariant.published(t3File: "t3_turbo_v1.safetensors") == turbo)
        #expect(ModelVariant.family(ofT3File: "/any/where/t3_nano_v1.safetensors") == nano)
        #expect(ModelVariant.family(ofT3File: "/no/such/dir/t3.safetensors") == nil)
    }

    @Test func unpinnedFilesAdmitAnySizeUpToTheirLimit() {
        let file = PublishedFile.unpinned("x.json", sizeLimit: 10)
        #expect(!file.isPinned && file.identities.isEmpty && file.sizeLimit == 10)
        #expect(file.admits(size: 0) && file.admits(size: 10) && !file.admits(size: 11) && !file.admits(size: -1))
        #expect(!file.matches(size: 10, sha256: String(repeating: "0", count: 64)))
        let pinned = PublishedFile(name: "y.json", size: 5, sha256: String(repeating: "a", count: 64))
        #expect(pinned.isPinned && pinned.sizeLimit == 5 && pinned.admits(size: 5) && !pinned.admits(size: 4))
    }
}
