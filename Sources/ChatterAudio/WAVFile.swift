import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sample encodings of a WAV data chunk (container bits; for WAVE_FORMAT_EXTENSIBLE the sub-format).
public enum WAVSampleFormat: Sendable, Equatable, CustomStringConvertible {
    /// 8-bit unsigned PCM (offset 128).
    case pcm8
    case pcm16
    case pcm24
    case pcm32
    case float32
    case float64

    public var bytesPerSample: Int {
        switch self {
        case .pcm8: 1
        case .pcm16: 2
        case .pcm24: 3
        case .pcm32, .float32: 4
        case .float64: 8
        }
    }

    public var description: String {
        switch self {
        case .pcm8: "8-bit unsigned PCM"
        case .pcm16: "16-bit PCM"
        case .pcm24: "24-bit PCM"
        case .pcm32: "32-bit PCM"
        case .float32: "32-bit float"
        case .float64: "64-bit float"
        }
    }
}

/// Why a WAV file could not be read or written. Every case names the file.
public enum WAVError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// A zero-byte file.
    case empty(path: String)
    /// The first 12 bytes are not `RIFF····WAVE`.
    case notRIFFWave(path: String)
    /// The file ends inside the RIFF header, a chunk header or the `fmt ` chunk, or before any `data` chunk.
    case truncatedHeader(path: String, reason: String)
    /// A `fmt ` chunk that is inconsistent (zero channels or rate, block size not channels × sample size…),
    /// or a `data` chunk before any `fmt ` chunk.
    case invalidFormat(path: String, reason: String)
    /// A format tag / bit depth combination this reader does not decode (e.g. ADPCM, μ-law, 12-bit PCM).
    case unsupportedFormat(path: String, formatTag: Int, bitsPerSample: Int)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .unreadable(let path, let reason): "\(path): cannot be read (\(reason))"
        case .empty(let path): "\(path): the file is empty"
        case .notRIFFWave(let path): "\(path): not a RIFF/WAVE file"
        case .truncatedHeader(let path, let reason): "\(path): truncated WAV header (\(reason))"
        case .invalidFormat(let path, let reason): "\(path): invalid WAV format chunk (\(reason))"
        case .unsupportedFormat(let path, let tag, let bits):
            "\(path): unsupported WAV encoding (format tag 0x\(String(tag, radix: 16)), \(bits) bits per sample)"
        case .writeFailed(let path, let reason): "\(path): cannot write WAV (\(reason))"
        }
    }
}

/// What a WAV header says, without the samples.
public struct WAVInfo: Sendable, Equatable {
    public let sampleRate: Int
    public let channels: Int
    public let format: WAVSampleFormat
    /// Whether the `fmt ` chunk is WAVE_FORMAT_EXTENSIBLE.
    public let isExtensible: Bool
    /// Complete frames present in the file (fewer than declared when the data chunk is truncated).
    public let frameCount: Int
    /// The data chunk declares more bytes than the file holds; `frameCount` counts the frames present.
    public let isTruncated: Bool
    /// Byte offset of the first sample.
    public let dataOffset: Int

    public var duration: Double { Double(frameCount) / Double(sampleRate) }
}

/// Decoded audio, mixed down to mono.
public struct WAVAudio: Sendable {
    /// Mono float32 samples, scaled as libsndfile / `librosa.load(sr=None, mono=True)`: integer PCM
    /// divided by 2^(bits−1) (8-bit: (u − 128)/128), float64 rounded to float32, channels averaged.
    public var samples: [Float]
    public let info: WAVInfo
    public var sampleRate: Int { info.sampleRate }
}

/// RIFF/WAVE reading (PCM 8/16/24/32, float 32/64, WAVE_FORMAT_EXTENSIBLE; any rate and channel count)
/// and writing (atomic: temporary file + rename).
///
/// Truncation policy: a file that ends inside the RIFF header, inside a chunk header or the `fmt `
/// chunk, or before a `data` chunk is an error (`.truncatedHeader`). A `data` chunk shorter than
/// declared is *not* an error: the complete frames present are decoded and `info.isTruncated` is set
/// (a partial last frame is dropped), which is what libsndfile does. A data size of 0xFFFFFFFF (streamed
/// writers) means "to the end of the file" and is not flagged.
///
/// Reading streams through a `FileHandle` in blocks, so `maxFrames`/`maxSeconds` bound both the I/O and
/// the memory: the first seconds of an hour-long file cost only those seconds.
public enum WAVFile {
    public static func info(path: String) throws -> WAVInfo {
        let handle = try open(path)
        defer { try? handle.close() }
        return try parseHeader(handle, path: path)
    }

    /// Decodes frames `[startFrame, startFrame + maxFrames)` (clipped to the file) mixed down to mono.
    public static func read(path: String, startFrame: Int = 0, maxFrames: Int? = nil) throws -> WAVAudio {
        precondition(startFrame >= 0, "startFrame must be non-negative, got \(startFrame)")
        precondition(maxFrames.map { $0 >= 0 } ?? true, "maxFrames must be non-negative")
        let handle = try open(path)
        defer { try? handle.close() }
        let info = try parseHeader(handle, path: path)
        let first = min(startFrame, info.frameCount)
        let count = min(maxFrames ?? Int.max, info.frameCount - first)
        let frameBytes = info.channels * info.format.bytesPerSample
        var samples = [Float]()
        samples.reserveCapacity(count)
        let blockFrames = max(1, (1 << 20) / frameBytes)
        var done = 0
        do {
            try handle.seek(toOffset: UInt64(info.dataOffset + first * frameBytes))
            while done < count {
                let frames = min(blockFrames, count - done)
                guard let data = try handle.read(upToCount: frames * frameBytes), data.count == frames * frameBytes else {
                    throw WAVError.unreadable(path: path, reason: "the file shrank while reading")
                }
                data.withUnsafeBytes { raw in
                    decode(raw, frames: frames, channels: info.channels, format: info.format, into: &samples)
                }
                done += frames
            }
        } catch let error as WAVError {
            throw error
        } catch {
            throw WAVError.unreadable(path: path, reason: "\(error)")
        }
        return WAVAudio(samples: samples, info: info)
    }

    /// Decodes at most the first `maxSeconds` (after skipping `offsetSeconds`), like
    /// `librosa.load(offset:duration:)`: frame counts are `round(seconds · rate)`.
    public static func read(path: String, offsetSeconds: Double = 0, maxSeconds: Double?) throws -> WAVAudio {
        let header = try info(path: path)
        let rate = Double(header.sampleRate)
        let start = Int((max(0, offsetSeconds) * rate).rounded())
        let frames = maxSeconds.map { Int((max(0, $0) * rate).rounded()) }
        return try read(path: path, startFrame: start, maxFrames: frames)
    }

    /// `librosa.load(path, sr: sampleRate, mono: true, offset:, duration:)` for WAV files: decode (only the
    /// requested span), average the channels, then soxr-HQ resample unless `sampleRate` is nil or equal
    /// to the file's rate (then the samples are returned unfiltered, as librosa does).
    public static func load(path: String, sampleRate: Int?, offsetSeconds: Double = 0,
                            maxSeconds: Double? = nil) throws -> (samples: [Float], sampleRate: Int) {
        let audio = try read(path: path, offsetSeconds: offsetSeconds, maxSeconds: maxSeconds)
        guard let target = sampleRate, target != audio.sampleRate else { return (audio.samples, audio.sampleRate) }
        return (try resample(audio.samples, from: audio.sampleRate, to: target), target)
    }

    // MARK: Writing

    /// Writes interleaved `samples` (`channels` per frame) as `format` (`.pcm16` or `.float32` usually;
    /// every reader format is supported). Integer formats clip to [−1, 1] and scale by 2^(bits−1) − 1 with
    /// round-half-even (libsndfile's float → PCM conversion); NaN writes 0. The file appears atomically.
    public static func write(_ samples: [Float], sampleRate: Int, to path: String, format: WAVSampleFormat = .pcm16,
                             channels: Int = 1, extensible: Bool = false) throws {
        precondition(channels >= 1 && samples.count % channels == 0, "\(samples.count) samples do not fill \(channels)-channel frames")
        precondition(sampleRate > 0, "sample rate must be positive")
        let bytesPerSample = format.bytesPerSample
        let dataBytes = samples.count * bytesPerSample
        let isFloat = format == .float32 || format == .float64
        let tag = isFloat ? 3 : 1
        let fmtSize = extensible ? 40 : (isFloat ? 18 : 16)
        guard 4 + (8 + fmtSize) + (8 + dataBytes) + (dataBytes & 1) <= Int(UInt32.max) else {
            throw WAVError.writeFailed(path: path, reason: "\(dataBytes) bytes of audio exceed the 4 GiB RIFF limit")
        }
        var out = Data()
        out.reserveCapacity(44 + 24 + dataBytes + 1)
        func u16(_ v: Int) { var x = UInt16(truncatingIfNeeded: v).littleEndian; withUnsafeBytes(of: &x) { out.append(contentsOf: $0) } }
        func u32(_ v: Int) { var x = UInt32(truncatingIfNeeded: v).littleEndian; withUnsafeBytes(of: &x) { out.append(contentsOf: $0) } }
        out.append(contentsOf: Array("RIFF".utf8))
        u32(4 + (8 + fmtSize) + (8 + dataBytes) + (dataBytes & 1))
        out.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(fmtSize)
        u16(extensible ? 0xFFFE : tag)
        u16(channels)
        u32(sampleRate)
        u32(sampleRate * channels * bytesPerSample)
        u16(channels * bytesPerSample)
        u16(bytesPerSample * 8)
        if extensible {
            u16(22)
            u16(bytesPerSample * 8)  // valid bits
            u32(channels == 1 ? 0x4 : (channels == 2 ? 0x3 : 0))  // channel mask
            u16(tag)
            out.append(contentsOf: [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])
        } else if isFloat {
            u16(0)
        }
        out.append(contentsOf: Array("data".utf8))
        u32(dataBytes)
        var body = [UInt8](repeating: 0, count: dataBytes + (dataBytes & 1))
        body.withUnsafeMutableBytes { raw in
            encode(samples, format: format, into: raw)
        }
        out.append(contentsOf: body)
        try writeAtomically(out, to: path)
    }

    // MARK: Internals

    private static func open(_ path: String) throws -> FileHandle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WAVError.fileNotFound(path: path)
        }
        if isDirectory.boolValue { throw WAVError.unreadable(path: path, reason: "is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw WAVError.unreadable(path: path, reason: "permission denied or not a regular file")
        }
        return handle
    }

    private static func parseHeader(_ handle: FileHandle, path: String) throws -> WAVInfo {
        let fileSize: Int
        do {
            fileSize = Int(try handle.seekToEnd())
            try handle.seek(toOffset: 0)
        } catch {
            throw WAVError.unreadable(path: path, reason: "\(error)")
        }
        if fileSize == 0 { throw WAVError.empty(path: path) }
        func bytes(at offset: Int, _ count: Int) throws -> [UInt8] {
            do {
                try handle.seek(toOffset: UInt64(offset))
                return [UInt8](try handle.read(upToCount: count) ?? Data())
            } catch {
                throw WAVError.unreadable(path: path, reason: "\(error)")
            }
        }
        func u16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func u32(_ b: [UInt8], _ i: Int) -> Int { u16(b, i) | u16(b, i + 2) << 16 }

        let riff = try bytes(at: 0, 12)
        if riff.count < 12 {
            // Too short to hold the RIFF header: if what is there is a prefix of one, it was cut off.
            let magic = Array("RIFF".utf8)
            if riff.prefix(4).elementsEqual(magic.prefix(min(4, riff.count))) {
                throw WAVError.truncatedHeader(path: path, reason: "\(riff.count) bytes, the RIFF header needs 12")
            }
            throw WAVError.notRIFFWave(path: path)
        }
        guard riff[0..<4].elementsEqual("RIFF".utf8), riff[8..<12].elementsEqual("WAVE".utf8) else {
            throw WAVError.notRIFFWave(path: path)
        }

        var offset = 12
        var fmt: (tag: Int, channels: Int, rate: Int, blockAlign: Int, bits: Int, extensible: Bool)?
        while true {
            let header = try bytes(at: offset, 8)
            guard header.count == 8 else {
                throw WAVError.truncatedHeader(path: path, reason: header.isEmpty && fmt == nil
                    ? "no fmt chunk" : (header.isEmpty ? "no data chunk" : "chunk header cut off at byte \(offset)"))
            }
            let id = String(decoding: header[0..<4], as: UTF8.self)
            let size = u32(header, 4)
            let body = offset + 8
            if id == "fmt " {
                guard size >= 16 else { throw WAVError.invalidFormat(path: path, reason: "fmt chunk of \(size) bytes") }
                let b = try bytes(at: body, min(size, 40))
                guard b.count == min(size, 40) else {
                    throw WAVError.truncatedHeader(path: path, reason: "fmt chunk cut off")
                }
                var tag = u16(b, 0)
                let extensible = tag == 0xFFFE
                if extensible {
                    guard size >= 40, u16(b, 16) >= 22 else {
                        throw WAVError.invalidFormat(path: path, reason: "WAVE_FORMAT_EXTENSIBLE without its 22-byte extension")
                    }
                    tag = u16(b, 24)
                }
                fmt = (tag, u16(b, 2), u32(b, 4), u16(b, 12), u16(b, 14), extensible)
            } else if id == "data" {
                guard let fmt else { throw WAVError.invalidFormat(path: path, reason: "data chunk before any fmt chunk") }
                guard fmt.channels > 0 else { throw WAVError.invalidFormat(path: path, reason: "zero channels") }
                guard fmt.rate > 0 else { throw WAVError.invalidFormat(path: path, reason: "sample rate 0") }
                let format: WAVSampleFormat
                switch (fmt.tag, fmt.bits) {
                case (1, 8): format = .pcm8
                case (1, 16): format = .pcm16
                case (1, 24): format = .pcm24
                case (1, 32): format = .pcm32
                case (3, 32): format = .float32
                case (3, 64): format = .float64
                default: throw WAVError.unsupportedFormat(path: path, formatTag: fmt.tag, bitsPerSample: fmt.bits)
                }
                let frameBytes = fmt.channels * format.bytesPerSample
                guard fmt.blockAlign == frameBytes else {
                    throw WAVError.invalidFormat(path: path, reason: "block align \(fmt.blockAlign), expected \(frameBytes) for \(fmt.channels) × \(format)")
                }
                let available = fileSize - body
                let streamed = size == 0xFFFF_FFFF
                let dataBytes = streamed ? available : min(size, available)
                return WAVInfo(sampleRate: fmt.rate, channels: fmt.channels, format: format, isExtensible: fmt.extensible,
                               frameCount: dataBytes / frameBytes, isTruncated: !streamed && size > available,
                               dataOffset: body)
            }
            // Other chunks (LIST, fact, cue, bext, JUNK…) are skipped; odd sizes carry one pad byte.
            offset = body + size + (size & 1)
        }
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, frames: Int, channels: Int, format: WAVSampleFormat,
                               into samples: inout [Float]) {
        let scale8: Float = 1.0 / 128, scale16: Float = 1.0 / 32768, scale24: Float = 1.0 / 8_388_608
        let scale32: Float = 1.0 / 2_147_483_648
        let width = format.bytesPerSample
        @inline(__always) func sample(_ i: Int) -> Float {
            let o = i * width
            switch format {
            case .pcm8: return (Float(raw[o]) - 128) * scale8
            case .pcm16: return Float(Int16(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian)) * scale16
            case .pcm24:
                let v = Int32(raw[o]) | Int32(raw[o + 1]) << 8 | Int32(Int8(bitPattern: raw[o + 2])) << 16
                return Float(v) * scale24
            case .pcm32: return Float(Int32(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian)) * scale32
            case .float32: return Float(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian)
            case .float64: return Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian))
            }
        }
        if channels == 1 {
            for i in 0..<frames { samples.append(sample(i)) }
            return
        }
        // numpy's float32 mean over the channel axis: a float32 sum, then one division.
        let n = Float(channels)
        for f in 0..<frames {
            var sum: Float = 0
            for c in 0..<channels { sum += sample(f * channels + c) }
            samples.append(sum / n)
        }
    }

    private static func encode(_ samples: [Float], format: WAVSampleFormat, into raw: UnsafeMutableRawBufferPointer) {
        @inline(__always) func quantise(_ x: Float, _ maxValue: Double) -> Int64 {
            guard !x.isNaN else { return 0 }
            let clipped = min(max(Double(x), -1), 1)
            return Int64((clipped * maxValue).rounded(.toNearestOrEven))
        }
        for (i, x) in samples.enumerated() {
            switch format {
            case .pcm8:
                raw[i] = UInt8(quantise(x, 127) + 128)
            case .pcm16:
                raw.storeBytes(of: UInt16(bitPattern: Int16(quantise(x, 32767))).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            case .pcm24:
                let v = Int32(quantise(x, 8_388_607))
                raw[3 * i] = UInt8(truncatingIfNeeded: v)
                raw[3 * i + 1] = UInt8(truncatingIfNeeded: v >> 8)
                raw[3 * i + 2] = UInt8(truncatingIfNeeded: v >> 16)
            case .pcm32:
                raw.storeBytes(of: UInt32(bitPattern: Int32(quantise(x, 2_147_483_647))).littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            case .float32:
                raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            case .float64:
                raw.storeBytes(of: Double(x).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
            }
        }
    }

    private static func writeAtomically(_ data: Data, to path: String) throws {
        if let reason = AtomicFile.write(data, to: path) { throw WAVError.writeFailed(path: path, reason: reason) }
    }
}
