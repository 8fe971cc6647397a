import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

@Suite struct WAVFileTests {
    static let allFormats: [WAVSampleFormat] = [.pcm8, .pcm16, .pcm24, .pcm32, .float32, .float64]

    /// A deterministic test signal in [−1, 1] including the extremes.
    static func signal(_ count: Int) -> [Float] {
        var values = (0..<count).map { i in Float(0.8 * sin(Double(i) * 0.05) + 0.15 * sin(Double(i) * 1.3)) }
        values[0] = 1; values[1] = -1; values[2] = 0
        return values
    }

    /// 1.5 quantisation steps: half a step of rounding plus the 2^(b−1) − 1 (write) vs 2^(b−1) (read) scales.
    static func step(_ format: WAVSampleFormat) -> Float {
        switch format {
        case .pcm8: 1.5 / 127
        case .pcm16: 1.5 / 32767
        case .pcm24: 1.5 / 8_388_607
        case .pcm32, .float32, .float64: 1e-7
        }
    }

    @Test(arguments: allFormats) func roundTripMono(format: WAVSampleFormat) throws {
        let directory = try TemporaryDirectory()
        let x = Self.signal(1001)
        for extensible in [false, true] {
            let path = directory.filePath("mono-\(extensible).wav")
            try WAVFile.write(x, sampleRate: 22_050, to: path, format: format, extensible: extensible)
            let audio = try WAVFile.read(path: path)
            #expect(audio.info.format == format && audio.info.isExtensible == extensible)
            #expect(audio.sampleRate == 22_050 && audio.info.channels == 1 && audio.info.frameCount == 1001)
            #expect(!audio.info.isTruncated)
            #expect(audio.samples.count == 1001)
            let error = zip(audio.samples, x).map { abs($0 - $1) }.max()!
                        #expect(error <= Self.step(format), "\(format): \(error)")
            if format == .float32 || format == .float64 { #expect(audio.samples == x) }
        }
    }

    @Test(arguments: allFormats) func multichannelIsAveraged(format: WAVSampleFormat) throws {
        let directory = try TemporaryDirectory()
        let frames = 300, channels = 3
        let mono = Self.signal(frames)
        var interleaved = [Float]()
        for f in 0..<frames { for c in 0..<channels { interleaved.append(mono[f] * Float(c + 1) / 4) } }
        let path = directory.filePath("multi.wav")
        try WAVFile.write(interleaved, sampleRate: 8000, to: path, format: format, channels: channels)
        let audio = try WAVFile.read(path: path)
        #expect(audio.info.channels == 3 && audio.samples.count == frames)
        let expected = mono.map { $0 * 0.5 }  // (1 + 2 + 3)/4/3
        let error = zip(audio.samples, expected).map { abs($0 - $1) }.max()!
        #expect(error <= Self.step(format), "\(format): \(error)")
    }

    @Test func pcm16ClipsAndRounds() throws {
        let directory = try TemporaryDirectory()
        let path = directory.filePath("clip.wav")
        try WAVFile.write([2, -3, 0.5, .nan, 1 / 65534], sampleRate: 16000, to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes.count == 44 + 10)
        let values = (0..<5).map { Int16(bitPattern: UInt16(bytes[44 + 2 * $0]) | UInt16(bytes[45 + 2 * $0]) << 8) }
        #expect(values == [32767, -32767, 16384, 0, 0])  // 16383.5 and 0.5 round half to even
        // Nothing but the file is left in the folder (the temporary was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["clip.wav"])
    }

    @Test func frameRangeAndSeconds() throws {
        let directory = try TemporaryDirectory()
        let x = Self.signal(16000 * 3)
        let path = directory.filePath("long.wav")
        try WAVFile.write(x, sampleRate: 16000, to: path, format: .float32)
        let part = try WAVFile.read(path: path, startFrame: 1000, maxFrames: 500)
        #expect(part.samples == Array(x[1000..<1500]))
        let head = try WAVFile.read(path: path, maxSeconds: 1.5)
        #expect(head.samples == Array(x[0..<24000]))
        let tail = try WAVFile.read(path: path, offsetSeconds: 2.5, maxSeconds: 10)
        #expect(tail.samples == Array(x[40000...]))
        #expect(try WAVFile.read(path: path, startFrame: 100_000).samples.isEmpty)
        #expect(try WAVFile.info(path: path).duration == 3)
    }

    /// An hour of 48 kHz stereo 16-bit (a sparse 691 MB file): reading the first second touches only it.
    @Test func hourLongFileReadsOnlyWhatIsAsked() throws {
        let directory = try TemporaryDirectory()
        let path = directory.filePath("hour.wav")
        let frames = 48_000 * 3600
        var header = [Float](repeating: 0, count: 2 * 48_000)
        header[0] = 0.5; header[1] = -0.5
        try WAVFile.write(header, sampleRate: 48_000, to: path, channels: 2)
        // Patch the sizes to declare an hour and extend the file sparsely.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let dataBytes = UInt32(frames * 4)
        try handle.seek(toOffset: 4)
        handle.write(withUnsafeBytes(of: (dataBytes + 36).littleEndian) { Data($0) })
        try handle.seek(toOffset: 40)
        handle.write(withUnsafeBytes(of: dataBytes.littleEndian) { Data($0) })
        try handle.truncate(atOffset: 44 + UInt64(dataBytes))
        try handle.close()
        let info = try WAVFile.info(path: path)
        #expect(info.frameCount == frames && !info.isTruncated && info.duration == 3600)
        let start = Date()
        let audio = try WAVFile.read(path: path, maxSeconds: 1)
        #expect(audio.samples.count == 48_000)
        #expect(audio.samples[0] == 0)  // (0.5 − 0.5) / 2
        let tail = try WAVFile.read(path: path, offsetSeconds: 3599.5, maxSeconds: 10)
        #expect(tail.samples.count == 24_000 && tail.samples.allSatisfy { $0 == 0 })
        #expect(Date().timeIntervalSince(start) < 5)
    }

    /// Hand-built files: extra chunks (odd sizes with their pad byte) before and after fmt, a fact chunk.
    @Test func skipsChunksWithPadding() throws {
        let directory = try TemporaryDirectory()
        var file = Data("RIFF\u{0}\u{0}\u{0}\u{0}WAVE".utf8)
        func chunk(_ id: String, _ body: [UInt8]) {
            file.append(contentsOf: Array(id.utf8))
            var size = UInt32(body.count).littleEndian
            withUnsafeBytes(of: &size) { file.append(contentsOf: $0) }
            file.append(contentsOf: body)
            if body.count % 2 == 1 { file.append(0) }
        }
        chunk("JUNK", [1, 2, 3])
        chunk("fmt ", [1, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 16, 0])  // PCM mono 8 kHz 16-bit
        chunk("LIST", Array("INFOxyz".utf8))
        chunk("data", [0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F])
        let path = directory.filePath("chunks.wav")
        try file.write(to: URL(fileURLWithPath: path))
        let audio = try WAVFile.read(path: path)
        #expect(audio.sampleRate == 8000)
        #expect(audio.samples == [0.5, -0.5, 32767 / 32768])
    }

    @Test func truncatedDataGivesTheFramesPresent() throws {
        let directory = try TemporaryDirectory()
        let path = directory.filePath("cut.wav")
        let x = Self.signal(100)
        try WAVFile.write(x, sampleRate: 16000, to: path, format: .float32, channels: 2)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.removeLast(8 * 10 + 3)  // ten frames and part of another
        try bytes.write(to: URL(fileURLWithPath: path))
        let audio = try WAVFile.read(path: path)
        #expect(audio.info.isTruncated)
        #expect(audio.samples.count == 50 - 11)
        #expect(audio.samples[0] == (x[0] + x[1]) / 2)
    }

    @Test func badInputsAreTypedErrors() throws {
        let directory = try TemporaryDirectory()
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = directory.filePath(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let missing = directory.filePath("missing.wav")
        #expect(throws: WAVError.fileNotFound(path: missing)) { try WAVFile.read(path: missing) }
        let empty = try write("empty.wav", [])
        #expect(throws: WAVError.empty(path: empty)) { try WAVFile.read(path: empty) }
        let text = try write("text.wav", Array("hello, this is not audio at all".utf8))
        #expect(throws: WAVError.notRIFFWave(path: text)) { try WAVFile.read(path: text) }
        let short = try write("short.wav", Array("RIFF\u{0}\u{0}".utf8))
        #expect(throws: WAVError.self) { try WAVFile.read(path: short) }
        let tiny = try write("tiny.wav", Array("ab".utf8))
        #expect(throws: WAVError.notRIFFWave(path: tiny)) { try WAVFile.read(path: tiny) }
        #expect(throws: WAVError.unreadable(path: directory.url.path, reason: "is a directory")) {
            try WAVFile.read(path: directory.url.path)
        }

        let good = directory.filePath("good.wav")
        try WAVFile.write(Self.signal(64), sampleRate: 16000, to: good)
        let header = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        // Cut inside the fmt chunk, and right after it (no data chunk).
        for cut in [14, 30, 36] {
            let path = try write("cut\(cut).wav", Array(header.prefix(cut)))
            #expect(throws: WAVError.self) { try WAVFile.read(path: path) }
            do { _ = try WAVFile.read(path: path) } catch let error as WAVError {
                guard case .truncatedHeader(let p, _) = error else { Issue.record("cut \(cut): \(error)"); continue }
                #expect(p == path)
            }
        }
        // Header only: a valid file with zero frames.
        let headerOnly = try write("header-only.wav", Array(header.prefix(44)))
        let audio = try WAVFile.read(path: headerOnly)
        #expect(audio.samples.isEmpty && audio.info.isTruncated)
        // Unsupported encodings: μ-law (tag 7), 12-bit PCM, 16-bit float.
        for (tag, bits) in [(7, 8), (1, 12), (3, 16), (2, 4)] {
            var bytes = header
            bytes[20] = UInt8(tag); bytes[34] = UInt8(bits)
            let path = try write("tag\(tag)-\(bits).wav", bytes)
            #expect(throws: WAVError.unsupportedFormat(path: path, formatTag: tag, bitsPerSample: bits)) {
                try WAVFile.read(path: path)
            }
        }
        // Inconsistent fmt: zero channels, zero rate, wrong block align, fmt too small.
        for (offset, value, label) in [(22, 0, "channels"), (24, 0, "rate"), (32, 7, "align"), (16, 8, "fmt size")] {
            var bytes = header
            bytes[offset] = UInt8(value)
            if offset == 24 { bytes[25] = 0; bytes[26] = 0; bytes[27] = 0 }
            let path = try write("bad-\(label).wav", bytes)
            #expect(throws: WAVError.self, "\(label)") { try WAVFile.read(path: path) }
        }
        // A data chunk before the fmt chunk.
        var swapped = Array(header.prefix(12))
        swapped += Array("data".utf8) + [2, 0, 0, 0, 0, 0] + Array(header[12..<36])
        let dataFirst = try write("data-first.wav", swapped)
        #expect(throws: WAVError.invalidFormat(path: dataFirst, reason: "data chunk before any fmt chunk")) {
            try WAVFile.read(path: dataFirst)
        }
        // Random garbage after a RIFF/WAVE header never crashes.
        var rng = SplitMix64(seed: 5)
        for i in 0..<50 {
            var bytes = Array(header.prefix(12))
            for _ in 0..<Int(rng.next() % 80) { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
            let path = try write("garbage\(i).wav", bytes)
            _ = try? WAVFile.read(path: path)
        }
        // Writing into a missing folder is a typed error.
        let nowhere = directory.filePath("no/such/folder/x.wav")
        #expect(throws: WAVError.self) { try WAVFile.write([0], sampleRate: 16000, to: nowhere) }
    }

    /// Files written by soundfile (libsndfile) read as `librosa.load(sr=None, mono=True)` reads them.
    @Test func readsPythonWrittenFilesLikeLibrosa() throws {
        let fixture = try Fixture("audio/wav_python")
        let directory = try TemporaryDirectory()
        #expect(fixture.cases.count == 7)
        for testCase in fixture.cases {
            let bytes = try fixture.tensor(testCase, "bytes").scalars().map { UInt8($0) }
            let path = directory.filePath("\(testCase.name).wav")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let audio = try WAVFile.read(path: path)
            #expect(audio.sampleRate == testCase.int("sample_rate"), "\(testCase.name)")
            #expect(audio.info.channels == testCase.int("channels"), "\(testCase.name)")
            let expected = try fixture.tensor(testCase, "samples").scalars()
            #expect(audio.samples.count == expected.count, "\(testCase.name)")
            guard audio.samples.count == expected.count else { continue }
            let error = ParityError(audio.samples, expected)
            print("wav \(testCase.name): \(error)")
            #expect(error.maxAbsoluteError <= 1e-7, "\(testCase.name): \(error)")
            if fixture.has(testCase, "samples_24k") {
                let loaded = try WAVFile.load(path: path, sampleRate: 24_000)
                #expect(loaded.sampleRate == 24_000)
                expectParity(loaded.samples, try fixture.tensor(testCase, "samples_24k").scalars(), tolerance: 1e-5,
                             "librosa.load(sr=24000) \(testCase.name)")
                let span = try WAVFile.load(path: path, sampleRate: nil, offsetSeconds: 0.01, maxSeconds: 0.05)
                #expect(span.samples == (try fixture.tensor(testCase, "span").scalars()), "\(testCase.name) span")
            }
        }
    }
}
