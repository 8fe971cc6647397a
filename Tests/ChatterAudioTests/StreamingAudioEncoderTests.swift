import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

/// The contract every `StreamingAudioEncoder` keeps, checked on Ogg Opus, MP3 and raw PCM alike.
@Suite struct StreamingAudioEncoderTests {
    static func encoders() throws -> [any StreamingAudioEncoder] {
        [try OggOpusEncoder(), try MP3Encoder(), try RawPCMEncoder()]
    }

    /// 16-bit little-endian PCM, as `AudioChunk` carries it.
    static func pcm16(_ samples: [Float]) -> Data {
        var data = Data()
        for x in samples { withUnsafeBytes(of: Int16((x * 32767).rounded()).littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    @Test func everyEncoderKeepsTheStreamContract() throws {
        var random = SplitMix64(seed: 6)
        let input = OggOpusTests.voice(seconds: 0.9).map { $0 + 0.01 * random.nextFloat() }
        for encoder in try Self.encoders() {
            func run() throws -> Data {
                var stream = Data()
                for start in stride(from: 0, to: input.count, by: 7_001) {
                    stream.append(try encoder.encode(pcm16LittleEndian: Self.pcm16(Array(input[start..<min(input.count, start + 7_001)]))))
                }
                stream.append(try encoder.finalize())
                return stream
            }
            let first = try run()
            let again = try encoder.finalize()
            var afterFinalize: Error?
            do { _ = try encoder.encode([0.5]) } catch { afterFinalize = error }
            try encoder.reset()
            let second = try run()
            print("\(type(of: encoder)) (\(encoder.mimeType), .\(encoder.fileExtension)): \(first.count) bytes for \(input.count) samples; after reset \(second.count) bytes; encode after finalize: \(afterFinalize.map { "\($0)" } ?? "no error")")
            #expect(!first.isEmpty && again.isEmpty)
            #expect(afterFinalize != nil, "encode after finalize is an error")
            #expect(first == second, "reset starts an identical, independent stream")
            #expect(encoder.sampleRate == 24_000)
        }
    }

    @Test func chunksAtAnotherRateOrWithAnOddByteAreTypedErrors() throws {
        for encoder in try Self.encoders() {
            #expect(throws: AudioEncodingError.sampleRateMismatch(expected: 24_000, got: 48_000)) {
                _ = try encoder.encode([0.1, 0.2], sampleRate: 48_000)
            }
            #expect(throws: AudioEncodingError.oddPCMByteCount(5)) { _ = try encoder.encode(pcm16LittleEndian: Data(count: 5)) }
        }
        #expect(throws: AudioEncodingError.self) { _ = try RawPCMEncoder(sampleRate: 0) }
    }

    @Test func rawPCMClampsAndWritesNaNAsSilence() throws {
        let encoder = try RawPCMEncoder()
        let bytes = try encoder.encode([0, 0.5, -0.5, 1, -1, 2, -.infinity, .infinity, .nan])
        let values = bytes.withUnsafeBytes { raw in (0..<(raw.count / 2)).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) } }
        print("raw PCM of [0, 0.5, -0.5, 1, -1, 2, -inf, inf, nan]: \(values)")
        #expect(values == [0, 16384, -16384, 32767, -32767, 32767, -32767, 32767, 0])
        // 16-bit input passes through exactly, also through the protocol (AudioChunk's bytes).
        let pcm: [Int16] = [.min, -1, 0, 1, 12_345, .max]
        let bytes16 = pcm.reduce(into: Data()) { data, x in withUnsafeBytes(of: x.littleEndian) { data.append(contentsOf: $0) } }
        let generic: any StreamingAudioEncoder = encoder
        #expect(try generic.encode(pcm16LittleEndian: bytes16) == bytes16)
        #expect(try generic.encode(pcm) == bytes16)
    }

    @Test func mp3EncodesNonFiniteInputWithoutDamage() throws {
        var input = OggOpusTests.voice(seconds: 0.5)
        for i in stride(from: 0, to: input.count, by: 50) { input[i] = [Float.nan, .infinity, -.infinity][i % 3] }
        let encoder = try MP3Encoder()
        var stream = try encoder.encode(input)
        stream.append(try encoder.finalize())
        let split = MP3FrameHeader.splitFrames(stream)
        print("MP3 with NaN/±inf samples: \(stream.count) bytes, \(split?.frames.count ?? -1) frames")
        #expect(split?.consumed == stream.count && (split?.frames.count ?? 0) > 0)
    }
}
