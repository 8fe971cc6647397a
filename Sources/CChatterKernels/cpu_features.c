#include "chatter_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/// avx512_bf16 (`vdpbf16ps`, `vcvtne2ps2bf16`): CPUID leaf 7 subleaf 1, EAX bit 5. The OS's saving of
/// the zmm state is already implied by `__builtin_cpu_supports("avx512f")`, which checks XCR0.
static int has_avx512_bf16(void) {
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    return (eax >> 5) & 1;
}

/// F16C (`vcvtph2ps`): CPUID leaf 1, ECX bit 29. Every AVX2 CPU has it; the f16 and q8_0 kernels use it.
static int has_f16c(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx >> 29) & 1;
}
#endif

static chatter_isa detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    chatter_isa best = CHATTER_ISA_PORTABLE;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) best = CHATTER_ISA_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
        best = CHATTER_ISA_AVX512;
        if (has_avx512_bf16()) best = CHATTER_ISA_AVX512_BF16;
    }
#else
    chatter_isa best = CHATTER_ISA_PORTABLE;
#endif
    const char *requested = getenv("CHATTERSTREAM_ISA");
    if (requested) {
        chatter_isa cap = best;
        if (strcmp(requested, "portable") == 0) cap = CHATTER_ISA_PORTABLE;
        else if (strcmp(requested, "avx2") == 0) cap = CHATTER_ISA_AVX2;
        else if (strcmp(requested, "avx512") == 0) cap = CHATTER_ISA_AVX512;
        else if (strcmp(requested, "avx512_bf16") == 0) cap = CHATTER_ISA_AVX512_BF16;
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
    case CHATTER_ISA_AVX512_BF16: return "avx512_bf16";
    case CHATTER_ISA_AVX512: return "avx512";
    case CHATTER_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}
