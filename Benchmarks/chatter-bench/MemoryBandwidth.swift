import ChatterTensor
import Foundation

/// The read-bandwidth ceiling: a multi-threaded sum over a buffer far larger than the caches.
struct MemoryBandwidth {
    let megabytes: Int
    let repetitions: Int

    func run() -> [String: Any] {
        let count = megabytes << 18  // floats
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let address = UInt(bitPattern: buffer)
        var results: [[String: Any]] = []
        for threads in Set([1, ThreadPool.shared.threadCount]).sorted() {
            let saved = ThreadPool.shared.threadCount
            ThreadPool.shared.threadCount = threads
            var rates: [Double] = []
            for _ in 0..<(repetitions + 1) {
                let start = now()
                let total = Self.sum(address: address, count: count)
                let seconds = Double(now() - start) / 1e9
                precondition(total > 0, "the sum must be used, or the loop is dead code")
                rates.append(Double(count * 4) / seconds / 1e9)
            }
            rates.removeFirst()  // the first pass faults pages in
            ThreadPool.shared.threadCount = saved
            note("membw: \(threads) thread(s): \(rounded(median(rates), 1)) GB/s")
            results.append(["threads": threads, "read_gb_s": rounded(median(rates), 2), "bytes": count * 4])
        }
        return ["method": "sum of f32 over one buffer, split across the thread pool", "cases": results]
    }

    /// Each thread reads its share as four sequential streams in lockstep (as the GEMV reads four
    /// weight rows), which keeps more hardware-prefetch streams and misses in flight than one stream.
    static func sum(address: UInt, count: Int) -> Float {
        let chunks = ThreadPool.shared.threadCount
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: chunks * 16)
        defer { partials.deallocate() }
        partials.initialize(repeating: 0, count: chunks * 16)
        let partialAddress = UInt(bitPattern: partials)
        let lines = count / 16  // 64-byte lines
        ThreadPool.shared.parallelFor(lines, minimumChunk: 4096) { range in
            let base = UnsafeRawPointer(bitPattern: address)! + range.lowerBound * 64
            let quarter = range.count / 4
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for line in 0..<quarter {
                let p = base + line * 64
                a0 += p.loadUnaligned(as: SIMD16<Float>.self)
                a1 += p.loadUnaligned(fromByteOffset: quarter * 64, as: SIMD16<Float>.self)
                a2 += p.loadUnaligned(fromByteOffset: 2 * quarter * 64, as: SIMD16<Float>.self)
                a3 += p.loadUnaligned(fromByteOffset: 3 * quarter * 64, as: SIMD16<Float>.self)
            }
            // Chunks are equal and in order (see parallelFor), so the chunk index follows from the start.
            let chunk = range.lowerBound / ((lines + chunks - 1) / chunks)
            (UnsafeMutablePointer<Float>(bitPattern: partialAddress)! + chunk * 16).pointee = (a0 + a1 + a2 + a3).sum()
        }
        var total: Float = 0
        for i in 0..<chunks { total += partials[i * 16] }
        return total
    }
}
