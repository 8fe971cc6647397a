// Softmax rows for the attention kernels, in exactly the arithmetic of ChatterTensor's Swift
// `SoftmaxKernel.softmaxRow` (the same exp polynomial as `VectorMath.exp`, the same 16-lane
// partial sums added lane by lane, no fused multiply-adds), so results are bit-identical to the
// Swift loop whatever the ISA. Why in C: the Swift SIMD loops are compiled for baseline x86-64
// (SSE), where the exp of the CFM decoder's 600 × 600 score blocks took ~14 % of the estimator; the
// AVX-512 instance of the same code does 16 lanes per instruction.
//
// Also the online softmax of flash attention (`chatter_attention_online_softmax_isa`, used by
// ChatterTensor's FlashAttention.swift): one key block at a time, the same exp, the running row
// maximum and sum, and the rescale of the output rows accumulated so far.
#include "chatter_kernels.h"
#include "kernels_common.h"

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

// The online step's reductions are trees of halves (exact for the maximum; a fixed order for the
// sum, so every ISA still adds in the same order): a row of one key block is short (256 keys: 16
// vectors), and the lane-by-lane loops of `softmax_row` cost a quarter of such a row.
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef float v4f __attribute__((vector_size(16), aligned(4)));

INLINE float sum_of(v16f v) {
    v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f c = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/// Step 1 of `chatter_attention_online_softmax_isa` for one row: combine and scale the scores in place
/// (when asked) while taking their maximum, then p = exp(s − m') in place with m' = max(previous, that
/// maximum). Returns m' (NaN when a score or `previous` is NaN); *sum_out receives Σ p.
INLINE float online_exp_row(float *s, size_t n, const float *band, float scale, float previous, float *sum_out) {
    v16f m = splat(-INFINITY);
    v16i nan = {0};
    size_t i = 0;
    if (band != NULL || scale != 1.0f) {
        const v16f f = splat(scale);
        for (; i + 16 <= n; i += 16) {
            v16f v = *(const v16f *)(s + i);
            if (band) v = v + *(const v16f *)(band + i);
            v = v * f;
            *(v16f *)(s + i) = v;
            m = select(v > m, v, m);
            nan |= v != v;
        }
        if (i < n) {
            v16f v = load_partial(s + i, n - i, 0.0f);
            if (band) v = v + load_partial(band + i, n - i, 0.0f);
            store_partial(v * f, s + i, n - i);
            v = load_partial(s + i, n - i, -INFINITY);
            m = select(v > m, v, m);
            nan |= v != v;
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            v16f v = *(const v16f *)(s + i);
            m = select(v > m, v, m);
            nan |= v != v;
        }
        if (i < n) {
            v16f v = load_partial(s + i, n - i, -INFINITY);
            m = select(v > m, v, m);
            nan |= v != v;
        }
    }
    // maxNum of the lanes (exact in any order; NaN lanes are accounted for by `nan`).
    const float peak = __builtin_reduce_or(nan) ? NAN : __builtin_reduce_max(m);
    const float next = (peak != peak || previous != previous) ? NAN : (previous > peak ? previous : peak);

    v16f shift = splat(next), sums = splat(0.0f);
    for (i = 0; i + 16 <= n; i += 16) {
        v16f e = exp16(*(const v16f *)(s + i) - shift);
        *(v16f *)(s + i) = e;
        sums += e;
    }
    if (i < n) {
        v16f e = exp16(load_partial(s + i, n - i, -INFINITY) - shift);
        store_partial(e, s + i, n - i);
        sums += e;
    }
    *sum_out = sum_of(sums);
    return next;
}

/// Every row of one key block, 16 rows at a time: the rows' exps (band row r starts `rows − 1 − r`
/// values into its row: see the header), then one vector exp for the 16 rescale factors
/// exp(m_old − m_new), then the running sums and the output rows.
INLINE void online_softmax_block(float *scores, size_t ld_scores, size_t rows, size_t keys, const float *band,
                                 size_t ld_band, float scale, float *row_max, float *row_sum, float *out,
                                 size_t ld_out, size_t dim) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t count = rows - r0 < 16 ? rows - r0 : 16;
        v16f previous = splat(0.0f), next = splat(0.0f), sums = splat(0.0f);
        for (size_t j = 0; j < count; j++) {
            const size_t r = r0 + j;
            float sum;
            previous[j] = row_max[r];
            next[j] = online_exp_row(scores + r * ld_scores, keys, band ? band + r * ld_band + (rows - 1 - r) : NULL,
                                     scale, row_max[r], &sum);
            sums[j] = sum;
        }
        // exp(m_old − m_new) ≤ 1 rescales what earlier key blocks accumulated to the new maximum;
        // exactly 1 (the polynomial is exact at 0) when the maximum did not move.
        const v16f alphas = exp16(previous - next);
        for (size_t j = 0; j < count; j++) {
            const size_t r = r0 + j;
            float *o = out + r * ld_out;
            row_max[r] = next[j];
            if (previous[j] == -INFINITY) {  // the first key block: nothing accumulated yet, whatever `out` held
                row_sum[r] = sums[j];
                for (size_t d = 0; d < dim; d++) o[d] = 0.0f;
                continue;
            }
            const float alpha = alphas[j];
            row_sum[r] = row_sum[r] * alpha + sums[j];
            if (alpha != 1.0f) {
                const v16f a = splat(alpha);
                size_t d = 0;
                for (; d + 16 <= dim; d += 16) *(v16f *)(o + d) = *(const v16f *)(o + d) * a;
                for (; d < dim; d++) o[d] *= alpha;
            }
        }
    }
}

#define ONLINE_SOFTMAX_ARGS                                                                                   \
    float *scores, size_t ld_scores, size_t rows, size_t keys, const float *band, size_t ld_band, float scale, \
        float *row_max, float *row_sum, float *out, size_t ld_out, size_t dim
#define ONLINE_SOFTMAX_PASS scores, ld_scores, rows, keys, band, ld_band, scale, row_max, row_sum, out, ld_out, dim

static void online_softmax_portable(ONLINE_SOFTMAX_ARGS) { online_softmax_block(ONLINE_SOFTMAX_PASS); }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx2")))
static void softmax_rows_avx512(float *rows, size_t count, size_t n, size_t ld) {
    for (size_t r = 0; r < count; r++) softmax_row(rows + r * ld, n);
}

__attribute__((target("avx2")))
static void softmax_rows_avx2(float *rows, size_t count, size_t n, size_t ld) {
    for (size_t r = 0; r < count; r++) softmax_row(rows + r * ld, n);
}

__attribute__((target("avx512f,avx512bw,avx2")))
static void online_softmax_avx512(ONLINE_SOFTMAX_ARGS) { online_softmax_block(ONLINE_SOFTMAX_PASS); }

__attribute__((target("avx2")))
static void online_softmax_avx2(ONLINE_SOFTMAX_ARGS) { online_softmax_block(ONLINE_SOFTMAX_PASS); }
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

chatter_isa chatter_attention_online_softmax_isa(chatter_isa isa, ONLINE_SOFTMAX_ARGS) {
    isa = usable_isa(isa);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) { online_softmax_avx512(ONLINE_SOFTMAX_PASS); return CHATTER_ISA_AVX512; }
    if (isa == CHATTER_ISA_AVX2) { online_softmax_avx2(ONLINE_SOFTMAX_PASS); return CHATTER_ISA_AVX2; }
#endif
    online_softmax_portable(ONLINE_SOFTMAX_PASS);
    return CHATTER_ISA_PORTABLE;
}
