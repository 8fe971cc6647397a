import COpenBLAS
import ChatterTensor
import Foundation

/// What the numbers were measured on.
enum Machine {
    static func describe(threads: Int) -> [String: Any] {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let l3 = (try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cache/index3/size", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let formatter = ISO8601DateFormatter()
        return [
            "cpu_model": model,
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "memory_gib": rounded(Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30), 1),
            "l3_cache": l3,
            "kernel_isa": KernelISA.current.description,
            "threads": threads,
            "openblas_threads": Int(openblas_get_num_threads()),
            "gemm_threading": "our GEMMs: OpenBLAS on one thread, each large GEMM split across our pool (GEMMThreading); the gemv suite's OpenBLAS baseline uses openblas_threads",
            "openblas_config": String(cString: openblas_get_config()),
            "openblas_core": String(cString: openblas_get_corename()),
            "date": formatter.string(from: Date()),
            "load_average_at_start": ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "")
                .split(separator: " ").prefix(3).joined(separator: " "),
        ]
    }
}
