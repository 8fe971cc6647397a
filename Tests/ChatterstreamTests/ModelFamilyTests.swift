import Testing
@testable import Chatterstream

@Suite struct ModelFamilyTests {
    @Test func everyFamilyListsUniqueFilesWithIdentities() {
        for family in ModelFamily.allCases {
            let names = family.files.map(\.name)
            #expect(Set(names).count == names.count, "\(family): duplicate file names")
            for file in family.files {
                #expect(!file.identities.isEmpty, "\(family) \(file.name)")
                for identity in file.identities {
                    #expect(identity.sha256.count == 64 && identity.size > 0, "\(family) \(file.name)")
                    #expect(file.matches(size: identity.size, sha256: identity.sha256.uppercased()))
                }
            }
        }
        #expect(ModelFamily(rawValue: "chatterbox-turbo") == .chatterboxTurbo)
    }
}
