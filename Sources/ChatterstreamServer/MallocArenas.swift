import Foundation

/// How many malloc arenas a long-running server keeps.
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
        // `mallopt` and `M_ARENA_MAX` (-8) are glibc's (<malloc.h>, which Swift's Glibc module does
        // not include); looked up at run time, so another libc simply keeps its own behaviour.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        let arenaMax: Int32 = -8
        return unsafeBitCast(symbol, to: Mallopt.self)(arenaMax, Int32(clamping: count)) == 1
    }
}
