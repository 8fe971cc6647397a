// glibc's allocator controls (<malloc.h>: mallopt, malloc_trim, mallinfo2), which Swift's Glibc
// module leaves out. Used by the server to cap its arenas and by the soak to tell a leak from
// fragmentation.
#include <malloc.h>
