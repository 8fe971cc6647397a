// Widening of f16 and q8_0 weights to f32, for the compute-bound prefill: `linear` with more than 8
// rows widens a block of weight rows at a time into a reused buffer and hands it to sgemm (the GEMV
// kernels read these dtypes in place; only the GEMM needs f32). f16 → f32 is exact; a q8_0 value is
// f32(scale) · int8 rounded once in f32, the same at every ISA, so the variants agree bit for bit.
#include "chatter_kernels.h"
#include "kernels_common.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
#define F16C_TARGET __attribute__((target("avx2,fma,f16c")))

F16C_TARGET static size_t widen_f16_avx2(const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(destination + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(source + i))));
    return i;
}

F16C_TARGET static void widen_q8_0_avx2(const uint8_t *source, float *destination, size_t blocks) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = source + b * QBYTES;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(load_u16(p)));
        for (int j = 0; j < 4; j++) {
            const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * j))));
            _mm256_storeu_ps(destination + b * QK + 8 * j, _mm256_mul_ps(d, q));
        }
    }
}
#endif

chatter_isa chatter_widen_f16_isa(chatter_isa isa, const uint16_t *source, float *destination, size_t count) {
    isa = usable_isa(isa);
    size_t done = 0;
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX2) {
        done = widen_f16_avx2(source, destination, count);
        isa = CHATTER_ISA_AVX2;
    }
#else
    isa = CHATTER_ISA_PORTABLE;
#endif
    for (size_t i = done; i < count; i++) destination[i] = half_to_float(source[i]);
    return isa;
}

chatter_isa chatter_widen_q8_0_isa(chatter_isa isa, const uint8_t *source, float *destination, size_t blocks) {
    isa = usable_isa(isa);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX2) {
        widen_q8_0_avx2(source, destination, blocks);
        return CHATTER_ISA_AVX2;
    }
#endif
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = source + b * QBYTES;
        const float d = half_to_float(load_u16(p));
        for (int j = 0; j < QK; j++) destination[b * QK + j] = d * (float)(int8_t)p[2 + j];
    }
    return CHATTER_ISA_PORTABLE;
}
