import ChatterstreamServer
import Foundation
import Testing

struct MallocArenasTests {
    @Test func aUsersChoiceOfArenasIsKept() {
        #expect(MallocArenas.limit(environment: ["MALLOC_ARENA_MAX": "4"]) == false)
        #expect(MallocArenas.limit(environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=4"]) == false)
    }

    /// The soak tells a leak from fragmentation by this figure, so it must follow what is held: up by
    /// what is allocated, back down when it is freed. Other suites allocate and free in parallel, so
    /// the block is far larger than anything they hold (1 GiB, mapped but never touched: it costs
    /// address space, not memory) and the check allows them 256 MiB either way.
    @Test func bytesInUseFollowsAllocations() {
        let gibibyte = 1 << 30, slack = 256 << 20
        let before = MallocArenas.bytesInUse()
        let block = UnsafeMutableRawPointer.allocate(byteCount: gibibyte, alignment: 64)
        let held = MallocArenas.bytesInUse()
        block.deallocate()
        let after = MallocArenas.bytesInUse()
        print("bytesInUse: before \(before), holding 1 GiB \(held), after \(after)")
        #expect(held - before > gibibyte - slack)
        #expect(held - after > gibibyte - slack)
    }
}
