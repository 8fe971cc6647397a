import CMalloc
import Foundation

/// How many malloc arenas a long-running server keeps, and what they hold.
///
/// glibc gives a thread that allocates under contention an arena of its own, up to 8 per core, and
/// every arena keeps the memory freed into it. Each synthesis renders on a thread of its own, so a
/// server on 2 cores ends up with 16 arenas, and its resident size creeps up for hundreds of requests
/// without leaking anything: the soak (BENCHMARKS.md, issue 19) measured RSS after `malloc_trim` 8.3 %
/// apart over 1,000 utterances with glibc's default, and 3.5 % with 2 arenas. The engine's hot loops
/// do not allocate, so fewer arenas should cost little contention (not measured apart from the soak's
/// wall time). `chatterstream serve` caps them at start-up.
public enum MallocArenas {
    /// Caps glibc's arenas at `count` unless the user chose a number (`MALLOC_ARENA_MAX`, or
    /// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`). Call it as early as possible: arenas
    /// already made stay. Returns whether the cap was set.
    @discardableResult
    public static func limit(to count: Int = 2,
                             environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if environment["MALLOC_ARENA_MAX"] != nil || environment["GLIBC_TUNABLES"]?.contains("arena_max") == true { return false }
        return mallopt(M_ARENA_MAX, Int32(clamping: count)) == 1
    }

    /// Hands the free pages at the top and inside every arena back to the kernel (`malloc_trim(0)`).
    public static func trim() {
        _ = malloc_trim(0)
    }

    /// Bytes the program holds from malloc right now, over all arenas and the chunks malloc mapped
    /// on its own (`mallinfo2`'s `uordblks + hblkhd`). Unlike the resident size it does not move
    /// when freed memory is kept or fragmented, so a leak shows in it and fragmentation does not.
    public static func bytesInUse() -> Int {
        let info = mallinfo2()
        return Int(info.uordblks) + Int(info.hblkhd)
    }
}
