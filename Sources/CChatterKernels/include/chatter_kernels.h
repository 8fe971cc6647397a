// ISA-dispatched kernels for ChatterTensor. Each entry point picks, once, the best implementation
// the running CPU supports (AVX-512, AVX2+FMA, or portable C), so one binary is both portable and
// fast. Everything else in the tensor library is Swift.
#ifndef CHATTER_KERNELS_H
#define CHATTER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels the kernels know.
typedef enum {
    CHATTER_ISA_PORTABLE = 0,
    CHATTER_ISA_AVX2 = 1,
    CHATTER_ISA_AVX512 = 2,
} chatter_isa;

/// The level the kernels run at on this CPU (cpuid on x86-64; portable elsewhere), possibly lowered
/// by the environment variable CHATTERSTREAM_ISA=portable|avx2|avx512.
chatter_isa chatter_kernels_isa(void);

/// A human-readable name of `isa`.
const char *chatter_isa_name(chatter_isa isa);

#ifdef __cplusplus
}
#endif

#endif
