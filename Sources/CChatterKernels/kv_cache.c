// A KV cache held in 16-bit floats (IEEE f16 or bf16): narrowing on append, widening for the
// prefill, and the two halves of a decode step's attention that read the cache, QKᵀ scores and the
// probability-weighted sum of values. A decode step is memory-bound and reads every cached key and
// value once, so 16-bit storage halves those bytes; products and sums stay f32.
//
// Narrowing rounds to nearest even at every ISA (F16C `vcvtps2ph` with imm 0; the portable one
// reproduces it, NaN kept quiet with its payload's top bits), so the variants store identical bits.
// Widening is exact. Scores and sums differ between ISAs only by summation order.
#include "chatter_kernels.h"
#include "kernels_common.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// MARK: - Portable

// f32 → IEEE binary16, round to nearest even, as F16C does (overflow → ±inf, subnormals rounded,
// NaN → quiet NaN keeping the payload's top 9 bits).
static inline uint16_t float_to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint32_t sign = (bits >> 16) & 0x8000, magnitude = bits & 0x7FFFFFFF;
    if (magnitude > 0x7F800000) return (uint16_t)(sign | 0x7E00 | ((magnitude >> 13) & 0x3FF));
    if (magnitude >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // ≥ 65520 rounds past 65504
    if (magnitude >= 0x38800000) {                                   // a normal half (≥ 2⁻¹⁴)
        const uint32_t rounded = magnitude + 0xFFF + ((magnitude >> 13) & 1);
        return (uint16_t)(sign | ((rounded - 0x38000000) >> 13));    // exponent bias 127 → 15
    }
    // A subnormal half: adding 0.5 aligns the value's bits at 2⁻²⁴ granularity and the FPU rounds
    // to nearest even (the 0.5's own bits are subtracted back out).
    const float half = 0.5f;
    float shifted;
    uint32_t magnitudeBits = magnitude, halfBits;
    memcpy(&shifted, &magnitudeBits, sizeof shifted);
    shifted += half;
    memcpy(&bits, &shifted, sizeof bits);
    memcpy(&halfBits, &half, sizeof halfBits);
    return (uint16_t)(sign | (bits - halfBits));
}

// f32 → bf16, round to nearest even, NaN kept quiet (ChatterTensor's `BFloat16.init(_:)`).
static inline uint16_t float_to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((bits >> 16) | 0x0040);
    return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline float kv_to_float(chatter_kv_format format, uint16_t h) {
    return format == CHATTER_KV_BF16 ? bf16_to_float(h) : half_to_float(h);
}

static void scores_portable(chatter_kv_format format, const float *q, const uint16_t *k, size_t ldk, size_t count,
                            size_t dim, float scale, float *scores) {
    for (size_t j = 0; j < count; j++) {
        const uint16_t *row = k + j * ldk;
        float sum = 0;
        for (size_t d = 0; d < dim; d++) sum += q[d] * kv_to_float(format, row[d]);
        scores[j] = sum * scale;
    }
}

static void weighted_sum_portable(chatter_kv_format format, const float *p, const uint16_t *v, size_t ldv, size_t count,
                                  size_t dim, float *out) {
    for (size_t d = 0; d < dim; d++) out[d] = 0;
    for (size_t j = 0; j < count; j++) {
        const uint16_t *row = v + j * ldv;
        for (size_t d = 0; d < dim; d++) out[d] += p[j] * kv_to_float(format, row[d]);
    }
}

#if defined(__x86_64__)

// MARK: - AVX2 + FMA + F16C

// F16C is part of the AVX2 level (cpu_features.c).
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

AVX2_TARGET static inline __m256 load8_kv_avx2(chatter_kv_format format, const uint16_t *p) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)p);
    if (format == CHATTER_KV_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
    return _mm256_cvtph_ps(raw);
}

AVX2_TARGET static size_t narrow_avx2(chatter_kv_format format, const float *source, uint16_t *destination, size_t count) {
    size_t i = 0;
    if (format == CHATTER_KV_F16) {
        for (; i + 8 <= count; i += 8)
            _mm_storeu_si128((__m128i *)(destination + i), _mm256_cvtps_ph(_mm256_loadu_ps(source + i), _MM_FROUND_TO_NEAREST_INT));
        return i;
    }
    const __m256i magnitudeMask = _mm256_set1_epi32(0x7FFFFFFF), infinity = _mm256_set1_epi32(0x7F800000);
    const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x0040);
    for (; i + 8 <= count; i += 8) {
        const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(source + i));
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
        const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(bias, odd)), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, magnitudeMask), infinity);
        const __m256i quieted = _mm256_or_si256(_mm256_srli_epi32(bits, 16), quiet);
        const __m256i halves = _mm256_blendv_epi8(rounded, quieted, nan);
        // Pack the eight 32-bit lanes (each < 2¹⁶, so no saturation) and undo the per-lane interleave.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
        _mm_storeu_si128((__m128i *)(destination + i), _mm256_castsi256_si128(packed));
    }
    return i;
}

AVX2_TARGET static size_t widen_avx2(chatter_kv_format format, const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(destination + i, load8_kv_avx2(format, source + i));
    return i;
}

// Four keys at a time: each q vector is loaded once for four FMAs, and the four sums are reduced
// together (two rounds of `vhaddps`), not one horizontal sum per key.
AVX2_TARGET static void scores_avx2(chatter_kv_format format, const float *q, const uint16_t *k, size_t ldk, size_t count,
                                    size_t dim, float scale, float *scores) {
    const size_t body = dim - dim % 8;
    size_t j = 0;
    for (; j + 4 <= count; j += 4) {
        const uint16_t *k0 = k + j * ldk, *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (size_t d = 0; d < body; d += 8) {
            const __m256 x = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(x, load8_kv_avx2(format, k0 + d), a0);
            a1 = _mm256_fmadd_ps(x, load8_kv_avx2(format, k1 + d), a1);
            a2 = _mm256_fmadd_ps(x, load8_kv_avx2(format, k2 + d), a2);
            a3 = _mm256_fmadd_ps(x, load8_kv_avx2(format, k3 + d), a3);
        }
        const __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        float sums[4];
        _mm_storeu_ps(sums, _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1)));
        const uint16_t *rows[4] = {k0, k1, k2, k3};
        for (int r = 0; r < 4; r++) {
            for (size_t d = body; d < dim; d++) sums[r] += q[d] * kv_to_float(format, rows[r][d]);
            scores[j + r] = sums[r] * scale;
        }
    }
    if (j < count) scores_portable(format, q, k + j * ldk, ldk, count - j, dim, scale, scores + j);
}

// 64 output columns (eight accumulators) per pass over the probabilities, then 8 at a time, then
// the scalar rest: each value row is read once per pass.
AVX2_TARGET static void weighted_sum_avx2(chatter_kv_format format, const float *p, const uint16_t *v, size_t ldv,
                                          size_t count, size_t dim, float *out) {
    size_t c = 0;
    for (; c + 64 <= dim; c += 64) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
        for (size_t j = 0; j < count; j++) {
            const __m256 w = _mm256_broadcast_ss(p + j);
            const uint16_t *row = v + j * ldv + c;
            for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(w, load8_kv_avx2(format, row + 8 * r), acc[r]);
        }
        for (int r = 0; r < 8; r++) _mm256_storeu_ps(out + c + 8 * r, acc[r]);
    }
    for (; c + 8 <= dim; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < count; j++)
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), load8_kv_avx2(format, v + j * ldv + c), acc);
        _mm256_storeu_ps(out + c, acc);
    }
    if (c < dim) weighted_sum_portable(format, p, v + c, ldv, count, dim - c, out + c);
}

// MARK: - AVX-512 (F + BW)

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))

AVX512_TARGET static inline __m512 load16_kv_avx512(chatter_kv_format format, const uint16_t *p) {
    const __m256i raw = _mm256_loadu_si256((const __m256i *)p);
    if (format == CHATTER_KV_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
    return _mm512_cvtph_ps(raw);
}

AVX512_TARGET static size_t narrow_avx512(chatter_kv_format format, const float *source, uint16_t *destination, size_t count) {
    size_t i = 0;
    if (format == CHATTER_KV_F16) {
        for (; i + 16 <= count; i += 16)
            _mm256_storeu_si256((__m256i *)(destination + i),
                                _mm512_cvtps_ph(_mm512_loadu_ps(source + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return i;
    }
    const __m512i magnitudeMask = _mm512_set1_epi32(0x7FFFFFFF), infinity = _mm512_set1_epi32(0x7F800000);
    const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x0040);
    for (; i + 16 <= count; i += 16) {
        const __m512i bits = _mm512_castps_si512(_mm512_loadu_ps(source + i));
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
        const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(bias, odd)), 16);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(bits, magnitudeMask), infinity);
        const __m512i halves = _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(bits, 16), quiet);
        _mm256_storeu_si256((__m256i *)(destination + i), _mm512_cvtepi32_epi16(halves));
    }
    return i;
}

AVX512_TARGET static size_t widen_avx512(chatter_kv_format format, const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(destination + i, load16_kv_avx512(format, source + i));
    return i;
}

AVX512_TARGET static void scores_avx512(chatter_kv_format format, const float *q, const uint16_t *k, size_t ldk,
                                        size_t count, size_t dim, float scale, float *scores) {
    const size_t body = dim - dim % 16;
    size_t j = 0;
    for (; j + 4 <= count; j += 4) {
        const uint16_t *k0 = k + j * ldk, *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (size_t d = 0; d < body; d += 16) {
            const __m512 x = _mm512_loadu_ps(q + d);
            a0 = _mm512_fmadd_ps(x, load16_kv_avx512(format, k0 + d), a0);
            a1 = _mm512_fmadd_ps(x, load16_kv_avx512(format, k1 + d), a1);
            a2 = _mm512_fmadd_ps(x, load16_kv_avx512(format, k2 + d), a2);
            a3 = _mm512_fmadd_ps(x, load16_kv_avx512(format, k3 + d), a3);
        }
        float sums[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), _mm512_reduce_add_ps(a3)};
        const uint16_t *rows[4] = {k0, k1, k2, k3};
        for (int r = 0; r < 4; r++) {
            for (size_t d = body; d < dim; d++) sums[r] += q[d] * kv_to_float(format, rows[r][d]);
            scores[j + r] = sums[r] * scale;
        }
    }
    if (j < count) scores_portable(format, q, k + j * ldk, ldk, count - j, dim, scale, scores + j);
}

AVX512_TARGET static void weighted_sum_avx512(chatter_kv_format format, const float *p, const uint16_t *v, size_t ldv,
                                              size_t count, size_t dim, float *out) {
    size_t c = 0;
    for (; c + 64 <= dim; c += 64) {
        __m512 acc[4];
        for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
        for (size_t j = 0; j < count; j++) {
            const __m512 w = _mm512_set1_ps(p[j]);
            const uint16_t *row = v + j * ldv + c;
            for (int r = 0; r < 4; r++) acc[r] = _mm512_fmadd_ps(w, load16_kv_avx512(format, row + 16 * r), acc[r]);
        }
        for (int r = 0; r < 4; r++) _mm512_storeu_ps(out + c + 16 * r, acc[r]);
    }
    for (; c + 16 <= dim; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < count; j++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), load16_kv_avx512(format, v + j * ldv + c), acc);
        _mm512_storeu_ps(out + c, acc);
    }
    if (c < dim) weighted_sum_portable(format, p, v + c, ldv, count, dim - c, out + c);
}

#endif  // __x86_64__

// MARK: - Dispatch

chatter_isa chatter_kv_narrow_isa(chatter_isa isa, chatter_kv_format format, const float *source, uint16_t *destination,
                                  size_t count) {
    isa = usable_isa(isa);
    size_t done = 0;
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {
        isa = CHATTER_ISA_AVX512;
        done = narrow_avx512(format, source, destination, count);
    } else if (isa >= CHATTER_ISA_AVX2) {
        done = narrow_avx2(format, source, destination, count);
    }
#else
    isa = CHATTER_ISA_PORTABLE;
#endif
    for (size_t i = done; i < count; i++)
        destination[i] = format == CHATTER_KV_BF16 ? float_to_bf16(source[i]) : float_to_half(source[i]);
    return isa;
}

chatter_isa chatter_kv_widen_isa(chatter_isa isa, chatter_kv_format format, const uint16_t *source, float *destination,
                                 size_t count) {
    isa = usable_isa(isa);
    size_t done = 0;
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {
        isa = CHATTER_ISA_AVX512;
        done = widen_avx512(format, source, destination, count);
    } else if (isa >= CHATTER_ISA_AVX2) {
        done = widen_avx2(format, source, destination, count);
    }
#else
    isa = CHATTER_ISA_PORTABLE;
#endif
    for (size_t i = done; i < count; i++) destination[i] = kv_to_float(format, source[i]);
    return isa;
}

chatter_isa chatter_kv_scores_isa(chatter_isa isa, chatter_kv_format format, const float *q, const uint16_t *k, size_t ldk,
                                  size_t count, size_t dim, float scale, float *scores) {
    isa = usable_isa(isa);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {
        scores_avx512(format, q, k, ldk, count, dim, scale, scores);
        return CHATTER_ISA_AVX512;
    }
    if (isa >= CHATTER_ISA_AVX2) {
        scores_avx2(format, q, k, ldk, count, dim, scale, scores);
        return CHATTER_ISA_AVX2;
    }
#endif
    scores_portable(format, q, k, ldk, count, dim, scale, scores);
    return CHATTER_ISA_PORTABLE;
}

chatter_isa chatter_kv_weighted_sum_isa(chatter_isa isa, chatter_kv_format format, const float *p, const uint16_t *v,
                                        size_t ldv, size_t count, size_t dim, float *out) {
    isa = usable_isa(isa);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {
        weighted_sum_avx512(format, p, v, ldv, count, dim, out);
        return CHATTER_ISA_AVX512;
    }
    if (isa >= CHATTER_ISA_AVX2) {
        weighted_sum_avx2(format, p, v, ldv, count, dim, out);
        return CHATTER_ISA_AVX2;
    }
#endif
    weighted_sum_portable(format, p, v, ldv, count, dim, out);
    return CHATTER_ISA_PORTABLE;
}
