// Softmax rows for the attention kernels, in exactly the arithmetic of ChatterTensor's Swift
// `SoftmaxKernel.softmaxRow` (the same exp polynomial as `VectorMath.exp`, the same 16-lane
// partial sums added lane by lane, no fused multiply-adds), so results are bit-identical to the
// Swift loop whatever the ISA. Why in C: the Swift SIMD loops are compiled for baseline x86-64
// (SSE), where the exp of the CFM decoder's 600 × 600 score blocks took ~14 % of the estimator; the
// AVX-512 instance of the same code does 16 lanes per instruction.
#include "chatter_kernels.h"

#include <math.h>
#include <stdint.h>

// Fusing a·b + c into one rounding would change results against the Swift loop.
#pragma clang fp contract(off)
// The helpers pass 64-byte vectors by value; they are always inlined into the per-ISA instances,
// so no call with the ABI this warns about is ever made.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));
typedef uint32_t v16u __attribute__((vector_size(64), aligned(4)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16f splat(float value) { return (v16f){0} + value; }
INLINE v16i bits_of(v16f v) { return (v16i)v; }
INLINE v16f float_of(v16i v) { return (v16f)v; }
/// Lanes of `yes` where `mask` is set (all ones), else of `no`.
INLINE v16f select(v16i mask, v16f yes, v16f no) { return float_of((mask & bits_of(yes)) | (~mask & bits_of(no))); }

INLINE v16f load_partial(const float *p, size_t n, float fill) {
    v16f v = splat(fill);
    for (size_t j = 0; j < n; j++) v[j] = p[j];
    return v;
}

INLINE void store_partial(v16f v, float *p, size_t n) {
    for (size_t j = 0; j < n; j++) p[j] = v[j];
}

/// `VectorMath.exp`, operation for operation.
INLINE v16f exp16(v16f input) {
    v16f x = select(input < -104.0f, splat(-104.0f), input);
    x = select(x > 89.0f, splat(89.0f), x);
    const float magic = 12582912.0f;
    v16f shifted = x * 1.44269504f + magic;
    v16f n = shifted - magic;
    v16f r = x - n * 0.693359375f;
    r = r - n * -2.1219444e-4f;
    v16f r2 = r * r;
    v16f p = splat(1.98756915e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    v16f y = p * r2 + r + 1.0f;
    v16i bits = bits_of(shifted) - 0x4B400000;
    v16i half = bits >> 1;
    v16i rest = bits - half;
    v16f scale_a = float_of((v16i)(((v16u)(half + 127)) << 23));
    v16f scale_b = float_of((v16i)(((v16u)(rest + 127)) << 23));
    v16f result = y * scale_a * scale_b;
    return select(input != input, input, result);
}

/// `SoftmaxKernel.softmaxRow` in place: max (NaN-poisoned), exp of the shifted row with lane sums
/// added lane 0 to 15, then a multiply by 1 / sum.
INLINE void softmax_row(float *row, size_t n) {
    v16f m = splat(-INFINITY);
    v16i nan = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f v = *(const v16f *)(row + i);
        m = select(v > m, v, m);
        nan |= v != v;
    }
    if (i < n) {
        v16f v = load_partial(row + i, n - i, -INFINITY);
        m = select(v > m, v, m);
        nan |= v != v;
    }
    float peak = -INFINITY;
    int poisoned = 0;
    for (int j = 0; j < 16; j++) {
        poisoned |= nan[j] != 0;
        if (m[j] > peak) peak = m[j];
    }
    if (poisoned) peak = NAN;

    v16f shift = splat(peak), sums = splat(0.0f);
    for (i = 0; i + 16 <= n; i += 16) {
        v16f e = exp16(*(const v16f *)(row + i) - shift);
        *(v16f *)(row + i) = e;
        sums += e;
    }
    if (i < n) {
        v16f e = exp16(load_partial(row + i, n - i, -INFINITY) - shift);
        store_partial(e, row + i, n - i);
        sums += e;
    }
    float sum = 0.0f;
    for (int j = 0; j < 16; j++) sum += sums[j];

    float factor = 1.0f / sum;
    v16f f = splat(factor);
    for (i = 0; i + 16 <= n; i += 16) *(v16f *)(row + i) = *(const v16f *)(row + i) * f;
    for (; i < n; i++) row[i] *= factor;
}

static void softmax_rows_portable(float *rows, size_t count, size_t n, size_t ld) {
    for (size_t r = 0; r < count; r++) softmax_row(rows + r * ld, n);
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx2")))
static void softmax_rows_avx512(float *rows, size_t count, size_t n, size_t ld) {
    for (size_t r = 0; r < count; r++) softmax_row(rows + r * ld, n);
}

__attribute__((target("avx2")))
static void softmax_rows_avx2(float *rows, size_t count, size_t n, size_t ld) {
    for (size_t r = 0; r < count; r++) softmax_row(rows + r * ld, n);
}
#endif

chatter_isa chatter_softmax_rows_isa(chatter_isa isa, float *rows, size_t count, size_t n, size_t ld) {
    chatter_isa best = chatter_kernels_isa();
    if (isa > best) isa = best;
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {  // the bf16 level has no GEMV / softmax of its own
        isa = CHATTER_ISA_AVX512; softmax_rows_avx512(rows, count, n, ld); return isa; }
    if (isa == CHATTER_ISA_AVX2) { softmax_rows_avx2(rows, count, n, ld); return isa; }
#endif
    softmax_rows_portable(rows, count, n, ld);
    return CHATTER_ISA_PORTABLE;
}

void chatter_softmax_rows(float *rows, size_t count, size_t n, size_t ld) {
    chatter_softmax_rows_isa(chatter_kernels_isa(), rows, count, n, ld);
}
