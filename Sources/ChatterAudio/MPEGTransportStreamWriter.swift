import Foundation

/// Packs MPEG audio frames (MP3) into an MPEG-2 transport stream (ISO/IEC 13818-1), one program with
/// one audio elementary stream, for HLS segments. Each call writes one segment that a player can
/// start from: PAT and PMT first, then PES packets of whole frames, each with a PTS (90 kHz, from the
/// absolute sample position so it never drifts) and a PCR on the audio PID in its first TS packet.
/// Continuity counters and timestamps carry on from segment to segment, so the segments also play
/// as one continuous stream.
struct MPEGTransportStreamWriter {
    static let packetSize = 188
    static let patPID: UInt16 = 0x0000
    static let pmtPID: UInt16 = 0x1000
    static let audioPID: UInt16 = 0x0100
    /// Timestamps start at 1.4 s (as ffmpeg's muxer does) so the PCR, which runs ahead of the PTS,
    /// never has to go below zero.
    static let firstPTS: Int64 = 126_000
    static let pcrLead: Int64 = 63_000
    /// ISO/IEC 13818-1 wants a PCR at least every 100 ms; a PES (which carries one) stays under 90 ms.
    static let maximumPESDuration = 0.09
    /// Content sniffers (ffmpeg's probe among them) want more than ten packets before they call a
    /// file MPEG-TS; shorter segments (a short last one) are filled up with null packets.
    static let minimumPacketsPerSegment = 11
    static let nullPID: UInt16 = 0x1FFF

    /// 0x03 (MPEG-1 audio) for 32–48 kHz MP3, 0x04 (MPEG-2 audio) for the low-rate extensions.
    let streamType: UInt8
    let sampleRate: Int
    let samplesPerFrame: Int
    private var continuityCounters: [UInt16: UInt8] = [:]

    init(sampleRate: Int, samplesPerFrame: Int) {
        self.sampleRate = sampleRate
        self.samplesPerFrame = samplesPerFrame
        streamType = sampleRate >= 32_000 ? 0x03 : 0x04
    }

    /// One self-contained segment holding `frames`, the first of which is frame number `firstFrame`
    /// of the stream (its PTS follows from that).
    mutating func segment(frames: [Data], firstFrame: Int) -> Data {
        var out = Data()
        out.append(psiPacket(pid: Self.patPID, section: patSection()))
        out.append(psiPacket(pid: Self.pmtPID, section: pmtSection()))
        let framesPerPES = max(1, Int(Self.maximumPESDuration * Double(sampleRate)) / samplesPerFrame)
        var index = 0
        while index < frames.count {
            let group = frames[index..<min(frames.count, index + framesPerPES)]
            let pts = presentationTime(frame: firstFrame + index)
            out.append(packets(pid: Self.audioPID, payload: pes(group.reduce(Data(), +), pts: pts),
                               pcr: pts - Self.pcrLead, randomAccess: index == 0))
            index += group.count
        }
        while out.count < Self.minimumPacketsPerSegment * Self.packetSize {
            // Null packets: no continuity counter to keep, discarded by every demuxer.
            out.append(contentsOf: [0x47, UInt8(Self.nullPID >> 8), UInt8(Self.nullPID & 0xFF), 0x10])
            out.append(contentsOf: [UInt8](repeating: 0xFF, count: Self.packetSize - 4))
        }
        return out
    }

    /// PTS of a frame on the 90 kHz clock, wrapped to 33 bits.
    func presentationTime(frame: Int) -> Int64 {
        (Self.firstPTS + Int64(frame) * Int64(samplesPerFrame) * 90_000 / Int64(sampleRate)) & 0x1_FFFF_FFFF
    }

    // MARK: PSI tables

    private func patSection() -> [UInt8] {
        section(tableID: 0x00, tableIDExtension: 0x0001,  // transport_stream_id
                body: [0x00, 0x01, 0xE0 | UInt8(Self.pmtPID >> 8), UInt8(Self.pmtPID & 0xFF)])  // program 1 → PMT PID
    }

    private func pmtSection() -> [UInt8] {
        let pid = Self.audioPID
        return section(tableID: 0x02, tableIDExtension: 0x0001,  // program_number
                       body: [0xE0 | UInt8(pid >> 8), UInt8(pid & 0xFF),  // PCR_PID: the audio PID
                              0xF0, 0x00,  // program_info_length 0
                              streamType, 0xE0 | UInt8(pid >> 8), UInt8(pid & 0xFF), 0xF0, 0x00])
    }

    /// A long-form PSI section (version 0, current, section 0 of 0) with its CRC.
    private func section(tableID: UInt8, tableIDExtension: UInt16, body: [UInt8]) -> [UInt8] {
        let length = 5 + body.count + 4  // after the length field: extension, version, numbers, body, CRC
        var bytes: [UInt8] = [tableID, 0xB0 | UInt8(length >> 8), UInt8(length & 0xFF),
                              UInt8(tableIDExtension >> 8), UInt8(tableIDExtension & 0xFF), 0xC1, 0x00, 0x00]
        bytes += body
        let crc = Self.crc32(bytes)
        bytes += [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
        return bytes
    }

    /// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial all ones, no reflection, no final xor).
    static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
        }
        return crc
    }

    /// A section fits one packet here: pointer field 0, the section, 0xFF fill.
    private mutating func psiPacket(pid: UInt16, section: [UInt8]) -> Data {
        var packet = header(pid: pid, unitStart: true, adaptation: false)
        packet += [0x00] + section
        packet += [UInt8](repeating: 0xFF, count: Self.packetSize - packet.count)
        return Data(packet)
    }

    // MARK: PES and TS packets

    private func pes(_ payload: Data, pts: Int64) -> Data {
        let length = 3 + 5 + payload.count
        var bytes: [UInt8] = [0x00, 0x00, 0x01, 0xC0,  // first MPEG audio stream
                              UInt8(length >> 8), UInt8(length & 0xFF),
                              0x84,  // '10', data_alignment_indicator: the payload starts with a frame
                              0x80, 0x05,  // PTS only, 5 header bytes
                              UInt8(0x20 | ((pts >> 29) & 0x0E) | 1), UInt8((pts >> 22) & 0xFF),
                              UInt8(((pts >> 14) & 0xFE) | 1), UInt8((pts >> 7) & 0xFF), UInt8(((pts << 1) & 0xFE) | 1)]
        bytes += payload
        return Data(bytes)
    }

    /// Splits a PES packet over TS packets: the first carries the PCR (and the random-access flag),
    /// the last is filled up with adaptation-field stuffing.
    private mutating func packets(pid: UInt16, payload: Data, pcr: Int64, randomAccess: Bool) -> Data {
        var out = Data()
        var offset = payload.startIndex
        var first = true
        while offset < payload.endIndex {
            var adaptation: [UInt8] = []  // flags byte onwards
            if first {
                let base = pcr & 0x1_FFFF_FFFF
                adaptation = [(randomAccess ? 0x40 : 0x00) | 0x10,
                              UInt8((base >> 25) & 0xFF), UInt8((base >> 17) & 0xFF), UInt8((base >> 9) & 0xFF),
                              UInt8((base >> 1) & 0xFF), UInt8(((base & 1) << 7) | 0x7E), 0x00]  // 6 reserved bits, extension 0
            }
            let remaining = payload.endIndex - offset
            var room = 184 - (adaptation.isEmpty ? 0 : 1 + adaptation.count)
            if remaining < room {
                let stuffing = room - remaining
                if adaptation.isEmpty {
                    // The adaptation field itself takes the space: its length byte, then flags and 0xFF.
                    adaptation = stuffing == 1 ? [] : [0x00] + [UInt8](repeating: 0xFF, count: stuffing - 2)
                    room = remaining
                    var packet = header(pid: pid, unitStart: first, adaptation: true)
                    packet.append(UInt8(adaptation.count))
                    packet += adaptation
                    packet += payload[offset..<payload.endIndex]
                    out.append(contentsOf: packet)
                    break
                }
                adaptation += [UInt8](repeating: 0xFF, count: stuffing)
                room = remaining
            }
            var packet = header(pid: pid, unitStart: first, adaptation: !adaptation.isEmpty)
            if !adaptation.isEmpty { packet += [UInt8(adaptation.count)] + adaptation }
            packet += payload[offset..<(offset + room)]
            out.append(contentsOf: packet)
            offset += room
            first = false
        }
        return out
    }

    /// The 4-byte TS header; every packet written carries payload, so the counter always advances.
    private mutating func header(pid: UInt16, unitStart: Bool, adaptation: Bool) -> [UInt8] {
        let counter = continuityCounters[pid, default: 0]
        continuityCounters[pid] = (counter + 1) & 0x0F
        return [0x47, (unitStart ? 0x40 : 0x00) | UInt8(pid >> 8), UInt8(pid & 0xFF),
                (adaptation ? 0x30 : 0x10) | counter]
    }
}
