#include "chatter_kernels.h"

#include <stdlib.h>
#include <string.h>

static chatter_isa detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    chatter_isa best = CHATTER_ISA_PORTABLE;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CHATTER_ISA_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) best = CHATTER_ISA_AVX512;
#else
    chatter_isa best = CHATTER_ISA_PORTABLE;
#endif
    const char *requested = getenv("CHATTERSTREAM_ISA");
    if (requested) {
        chatter_isa cap = best;
        if (strcmp(requested, "portable") == 0) cap = CHATTER_ISA_PORTABLE;
        else if (strcmp(requested, "avx2") == 0) cap = CHATTER_ISA_AVX2;
        else if (strcmp(requested, "avx512") == 0) cap = CHATTER_ISA_AVX512;
        if (cap < best) best = cap;  // never raise above what the CPU has
    }
    return best;
}

chatter_isa chatter_kernels_isa(void) {
    static int cached = -1;  // benign race: every thread computes the same value
    if (cached < 0) cached = (int)detect();
    return (chatter_isa)cached;
}

const char *chatter_isa_name(chatter_isa isa) {
    switch (isa) {
    case CHATTER_ISA_AVX512: return "avx512";
    case CHATTER_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}
