// Skinny GEMM over q8_0 weights (blocks of 32 int8 sharing one f16 scale, 34 bytes): the same
// y[m, n] = bias[n] + Σ_k x[m, k] · w[n, k] as gemv.c, reading 1.0625 bytes per weight instead of 2
// (bf16) or 4 (f32). Each block's 32 products are summed unscaled and multiplied by the scale once,
// which equals x · dequantised(w) up to f32 rounding order.
#include "chatter_kernels.h"
#include "kernels_common.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MAX_ROWS CHATTER_GEMV_MAX_ROWS
#define INLINE static inline __attribute__((always_inline))
// Prefetch distance and level as in gemv.c (into L2, see there). q8_0 rows are 1088 bytes at k = 1024:
// at t1 one thread read a GPT-2 medium step's q8_0 weights at 18.6 / 17.6 GB/s 1024 bytes ahead against
// 17.8 / 16.7 2048 ahead in the same runs (3072: as 2048); t0 → t1 took the AVX2 kernel from 11.6 to
// 16.1 GB/s and the AVX-512 one with two activation rows from 11.3 to 14.1.
#define PREFETCH_BYTES 1024
#define PREFETCH_HINT _MM_HINT_T1

static void gemv_q8_0_portable(const float *x, size_t ldx, size_t m, size_t k, const uint8_t *w, size_t ldw,
                               const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    const size_t blocks = k / QK;
    for (size_t n = n_begin; n < n_end; n++) {
        const uint8_t *row = w + n * ldw;
        float acc[MAX_ROWS] = {0};
        for (size_t b = 0; b < blocks; b++) {
            const float d = half_to_float(load_u16(row + b * QBYTES));
            const int8_t *q = (const int8_t *)(row + b * QBYTES + 2);
            for (size_t i = 0; i < m; i++) {
                const float *xs = x + i * ldx + b * QK;
                float s = 0;
                for (int j = 0; j < QK; j++) s += (float)q[j] * xs[j];
                acc[i] += d * s;
            }
        }
        for (size_t i = 0; i < m; i++) y[i * ldy + n] = acc[i] + (bias ? bias[n] : 0.0f);
    }
}

#if defined(__x86_64__)

// Prefetch pointer for row r of the block at byte `off`: ahead in the same row, and past the row end
// the same distance into the next block's row (as in gemv.c; prefetches never fault).
#define Q8_PREFETCH(r)                                                                                 \
    _mm_prefetch((const char *)(phase == 0 ? w + (n + r) * ldw + off + PREFETCH_BYTES                  \
                                           : w + (n + R + r) * ldw + (off + PREFETCH_BYTES - rowbytes)), \
                 PREFETCH_HINT)

// F16C converts the scales; every AVX2 CPU has it.
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

AVX512_TARGET INLINE void block_q8_avx512(const float *x, size_t ldx, const int M, const int R, size_t blocks,
                                          const uint8_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                          size_t n) {
    __m512 acc[4][MAX_ROWS];
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++)
        _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) acc[r][i] = _mm512_setzero_ps();
    const size_t rowbytes = blocks * QBYTES;
    const size_t split = rowbytes > PREFETCH_BYTES ? (rowbytes - PREFETCH_BYTES + QBYTES - 1) / QBYTES : 0;
    size_t b = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (const size_t stop = phase == 0 ? split : blocks; b < stop; b++) {
            const size_t off = b * QBYTES;
            _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
                Q8_PREFETCH(r);
                const uint8_t *p = w + (n + r) * ldw + off;
                const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(p)));
                const __m256i q = _mm256_loadu_si256((const __m256i *)(p + 2));
                const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
                const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
                _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) {
                    const float *xs = x + i * ldx + b * QK;
                    __m512 t = _mm512_mul_ps(q0, _mm512_loadu_ps(xs));
                    t = _mm512_fmadd_ps(q1, _mm512_loadu_ps(xs + 16), t);
                    acc[r][i] = _mm512_fmadd_ps(t, d, acc[r][i]);
                }
            }
        }
    }
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
        const float bb = bias ? bias[n + r] : 0.0f;
        _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++)
            y[i * ldy + n + r] = _mm512_reduce_add_ps(acc[r][i]) + bb;
    }
}

AVX2_TARGET INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET INLINE void block_q8_avx2(const float *x, size_t ldx, const int M, const int R, size_t blocks,
                                      const uint8_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                      size_t n) {
    __m256 acc[4][MAX_ROWS];
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++)
        _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) acc[r][i] = _mm256_setzero_ps();
    const size_t rowbytes = blocks * QBYTES;
    const size_t split = rowbytes > PREFETCH_BYTES ? (rowbytes - PREFETCH_BYTES + QBYTES - 1) / QBYTES : 0;
    size_t b = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (const size_t stop = phase == 0 ? split : blocks; b < stop; b++) {
            const size_t off = b * QBYTES;
            _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
                Q8_PREFETCH(r);
                const uint8_t *p = w + (n + r) * ldw + off;
                const __m256 d = _mm256_set1_ps(_cvtsh_ss(load_u16(p)));
                __m256 q[4];
                _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++)
                    q[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * j))));
                _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) {
                    const float *xs = x + i * ldx + b * QK;
                    __m256 t = _mm256_mul_ps(q[0], _mm256_loadu_ps(xs));
                    t = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xs + 8), t);
                    t = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xs + 16), t);
                    t = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xs + 24), t);
                    acc[r][i] = _mm256_fmadd_ps(t, d, acc[r][i]);
                }
            }
        }
    }
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
        const float bb = bias ? bias[n + r] : 0.0f;
        _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) y[i * ldy + n + r] = hsum8(acc[r][i]) + bb;
    }
}

// Weight rows per block, as in gemv.c (registers: R·M accumulators beside the dequantised block).
#define AVX512_ROWS(M) ((M) <= 3 ? 4 : (M) <= 4 ? 3 : 2)
#define AVX2_ROWS(M) ((M) <= 2 ? 4 : (M) <= 4 ? 2 : 1)

#define DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, M)                                                     \
    TARGET static void NAME##_##M(const float *x, size_t ldx, size_t blocks, const uint8_t *w, size_t ldw, \
                                  const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) { \
        const int R = ROWS(M);                                                                         \
        size_t n = n_begin;                                                                            \
        for (; n + R <= n_end; n += R) BLOCK(x, ldx, M, R, blocks, w, ldw, bias, y, ldy, n);           \
        for (; n < n_end; n++) BLOCK(x, ldx, M, 1, blocks, w, ldw, bias, y, ldy, n);                   \
    }

#define DEFINE_ALL(NAME, TARGET, BLOCK, ROWS)                                                          \
    DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 1) DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 2)              \
    DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 3) DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 4)              \
    DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 5) DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 6)              \
    DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 7) DEFINE_RANGE(NAME, TARGET, BLOCK, ROWS, 8)

DEFINE_ALL(range_q8_avx512, AVX512_TARGET, block_q8_avx512, AVX512_ROWS)
DEFINE_ALL(range_q8_avx2, AVX2_TARGET, block_q8_avx2, AVX2_ROWS)

typedef void (*range_q8_fn)(const float *, size_t, size_t, const uint8_t *, size_t, const float *, float *,
                            size_t, size_t, size_t);
#define ROW_TABLE(NAME) {NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, NAME##_7, NAME##_8}
static const range_q8_fn q8_avx512[MAX_ROWS] = ROW_TABLE(range_q8_avx512);
static const range_q8_fn q8_avx2[MAX_ROWS] = ROW_TABLE(range_q8_avx2);

#endif  // __x86_64__

chatter_isa chatter_gemv_q8_0_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                  const uint8_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                  size_t n_begin, size_t n_end) {
    isa = usable_isa(isa);
    if (m == 0 || n_begin >= n_end) return isa;
    for (; m > MAX_ROWS; m -= MAX_ROWS, x += MAX_ROWS * ldx, y += MAX_ROWS * ldy)
        chatter_gemv_q8_0_isa(isa, x, ldx, MAX_ROWS, k, w, ldw, bias, y, ldy, n_begin, n_end);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX512) {  // the bf16 level runs the AVX-512 kernel
        isa = CHATTER_ISA_AVX512;
        q8_avx512[m - 1](x, ldx, k / QK, w, ldw, bias, y, ldy, n_begin, n_end);
        return isa;
    }
    if (isa == CHATTER_ISA_AVX2) {
        q8_avx2[m - 1](x, ldx, k / QK, w, ldw, bias, y, ldy, n_begin, n_end);
        return isa;
    }
#endif
    gemv_q8_0_portable(x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
    return CHATTER_ISA_PORTABLE;
}

void chatter_gemv_q8_0(const float *x, size_t ldx, size_t m, size_t k, const uint8_t *w, size_t ldw,
                       const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    chatter_gemv_q8_0_isa(chatter_kernels_isa(), x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
}
