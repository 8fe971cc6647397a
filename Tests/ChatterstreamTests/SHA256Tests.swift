import Foundation
import Testing
@testable import Chatterstream

@Suite struct SHA256Tests {
    static func hex(_ bytes: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    @Test func knownVectors() {
        // FIPS 180-4 / NIST CSRC example vectors.
        #expect(Self.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // 896-bit vector: two blocks of message plus padding.
        #expect(Self.hex(Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8))
            == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test func millionAs() {
        var hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        #expect(hasher.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every split of the input into two `update` calls, and byte-at-a-time, give the one-shot digest
    /// (exercises the partial-block path at every offset, including the 55/56/64-byte padding edges).
    @Test func splitsAgree() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let whole = Self.hex(bytes)
            for split in 0...length {
                var hasher = SHA256()
                hasher.update(bytes[..<split])
                hasher.update(bytes[split...])
                #expect(hasher.finalizeHex() == whole, "length \(length) split \(split)")
            }
            var bytewise = SHA256()
            for byte in bytes { bytewise.update([byte]) }
            #expect(bytewise.finalizeHex() == whole)
        }
    }

    /// A file of random bytes hashed by `SHA256.hex(ofFileAt:)` matches coreutils `sha256sum`.
    @Test func matchesSha256sumOnAFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sha256-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("random.bin")
        var generator = SystemRandomNumberGenerator()
        // 9 MiB + 37 bytes: spans several 4 MiB reads and ends mid-block.
        let bytes = (0..<((9 << 20) + 37) / 8).map { _ in generator.next() as UInt64 }
        try bytes.withUnsafeBytes { Data($0) }.write(to: file)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = String(output.prefix(64))
        #expect(expected.count == 64)
        #expect(try SHA256.hex(ofFileAt: file) == expected)
    }
}
