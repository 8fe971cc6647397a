// Skinny GEMM for the memory-bound decode loop: y[m, n] = bias[n] + Σ_k x[m, k] · w[n, k] for up to
// 8 activation rows. Every weight element is loaded once and multiplied into all rows, so two CFG
// rows cost one pass over the weights. Weights are f32, bf16 (widened exactly by a 16-bit shift) or
// f16 (widened exactly, by F16C's `vcvtph2ps` on x86); q8_0 lives in gemv_q8_0.c. Activations and
// accumulation stay f32, so results match torch's `x @ w.float().T`.
//
// Each ISA variant is one body instantiated for constant (rows, weight rows per block) pairs through
// always-inline helpers: with the sizes known the compiler keeps every accumulator in a register.
#include "chatter_kernels.h"
#include "kernels_common.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MAX_ROWS CHATTER_GEMV_MAX_ROWS
#define INLINE static inline __attribute__((always_inline))

// How far ahead (bytes) each weight row stream is prefetched. The hardware prefetchers stop at 4 KiB
// page boundaries and a weight row is often exactly one page (1024 f32), so with 2–4 rows read in
// lockstep they would ramp up again at every row start. 512 measured worse.
//
// The prefetches go to L2 (PREFETCH_HINT), not L1: with `prefetcht0` every prefetch holds one of
// L1's few miss buffers until its line arrives, and the kernels' own loads queue behind them. On the
// Zen 4 VM (BENCHMARKS.md, "GEMV prefetch into L2"), one thread streaming a GPT-2 medium step's
// weights from DRAM (t0 1024 bytes ahead → t1 2048 ahead) read f32 at 18.4 → 25.3 GB/s on the AVX-512
// kernel, f32 16.8 → 23.5 and bf16 11.8 → 21.5 on the AVX2 one: about the plain sequential read's
// rate (22-26 GB/s in the same runs). At t1, 2048 bytes ahead read f32 6-7 % faster than 1024, 3072
// no faster than 2048; `prefetchnta` was no better than t0.
#define PREFETCH_BYTES 2048
#define PREFETCH_HINT _MM_HINT_T1

INLINE float widen_bf16(uint16_t bits) {
    uint32_t word = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &word, sizeof value);
    return value;
}

// MARK: - Portable C

// Eight independent partial sums per (row, weight row) pair, so the compiler can vectorise without
// reassociating (plain C is the fallback for arm64 and pre-AVX2 x86).
#define PORTABLE_LANES 8

#define DEFINE_PORTABLE(NAME, WTYPE, LOAD)                                                              \
    static void NAME(const float *x, size_t ldx, size_t m, size_t k, const WTYPE *w, size_t ldw,       \
                     const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {          \
        for (size_t n = n_begin; n < n_end; n++) {                                                     \
            const WTYPE *row = w + n * ldw;                                                            \
            float acc[MAX_ROWS][PORTABLE_LANES] = {{0}};                                               \
            size_t kk = 0;                                                                             \
            for (; kk + PORTABLE_LANES <= k; kk += PORTABLE_LANES) {                                   \
                float wv[PORTABLE_LANES];                                                              \
                for (int l = 0; l < PORTABLE_LANES; l++) wv[l] = LOAD(row[kk + l]);                    \
                for (size_t r = 0; r < m; r++)                                                         \
                    for (int l = 0; l < PORTABLE_LANES; l++) acc[r][l] += wv[l] * x[r * ldx + kk + l]; \
            }                                                                                          \
            for (size_t r = 0; r < m; r++) {                                                           \
                float sum = 0;                                                                         \
                for (int l = 0; l < PORTABLE_LANES; l++) sum += acc[r][l];                             \
                for (size_t t = kk; t < k; t++) sum += LOAD(row[t]) * x[r * ldx + t];                  \
                y[r * ldy + n] = sum + (bias ? bias[n] : 0.0f);                                        \
            }                                                                                          \
        }                                                                                              \
    }

#define LOAD_F32(v) (v)
#define LOAD_BF16(v) widen_bf16(v)
#define LOAD_F16(v) half_to_float(v)
DEFINE_PORTABLE(gemv_f32_portable, float, LOAD_F32)
DEFINE_PORTABLE(gemv_bf16_portable, uint16_t, LOAD_BF16)
DEFINE_PORTABLE(gemv_f16_portable, uint16_t, LOAD_F16)

#if defined(__x86_64__)

// MARK: - AVX-512F

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx2,fma")))

AVX512_TARGET INLINE __m512 load16_f32(const float *p) { return _mm512_loadu_ps(p); }
AVX512_TARGET INLINE __m512 load16_bf16(const uint16_t *p) {
    __m256i half = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

// One block of R weight rows starting at n, for M activation rows. The main loop takes one cache
// line of every row per iteration and prefetches PREFETCH_BYTES ahead in each row; near the row
// ends the prefetches move on to the same offsets of the next R rows, so the next block starts warm
// (rows are only a few KiB, and cold block starts were costing a third of the bandwidth). Past the
// last row these prefetches point outside the matrix, which is harmless: prefetches never fault. `xtail`
// holds the last k % LANES activations of each row, zero-padded, so the tail is one more full step.
#define DEFINE_BLOCK(NAME, TARGET, VEC, LANES, ZERO, FMA, LOADX, REDUCE, WTYPE, LOADW)                \
    TARGET INLINE void NAME(const float *x, size_t ldx, const int M, const int R, size_t k,            \
                            const WTYPE *w, size_t ldw, const float *bias, float *y, size_t ldy,       \
                            size_t n, const float (*xtail)[16]) {                                      \
        VEC acc[4][MAX_ROWS];                                                                          \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++)                                 \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++) acc[r][i] = ZERO();         \
        const size_t line = 64 / sizeof(WTYPE);                                                        \
        const size_t ahead = PREFETCH_BYTES / sizeof(WTYPE);                                           \
        const size_t lines = k - k % line;                                                             \
        const size_t split = lines > ahead ? lines - ahead : 0;                                        \
        size_t kk = 0;                                                                                 \
        for (int phase = 0; phase < 2; phase++) {                                                      \
            const size_t stop = phase == 0 ? split : lines;                                            \
            for (; kk < stop; kk += line) {                                                            \
                _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                       \
                    const WTYPE *ahead_p = phase == 0 ? w + (n + r) * ldw + kk + ahead                 \
                                                      : w + (n + R + r) * ldw + (kk + ahead - lines);  \
                    _mm_prefetch((const char *)ahead_p, PREFETCH_HINT);                                  \
                }                                                                                      \
                _Pragma("clang loop unroll(full)") for (size_t s = 0; s < line; s += LANES) {          \
                    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                   \
                        VEC wv = LOADW(w + (n + r) * ldw + kk + s);                                    \
                        _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++)                 \
                            acc[r][i] = FMA(wv, LOADX(x + i * ldx + kk + s), acc[r][i]);               \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        for (; kk + LANES <= k; kk += LANES) {                                                         \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                           \
                VEC wv = LOADW(w + (n + r) * ldw + kk);                                                \
                _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++)                         \
                    acc[r][i] = FMA(wv, LOADX(x + i * ldx + kk), acc[r][i]);                           \
            }                                                                                          \
        }                                                                                              \
        if (kk < k) {                                                                                  \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                           \
                WTYPE padded[LANES] = {0};                                                             \
                memcpy(padded, w + (n + r) * ldw + kk, (k - kk) * sizeof(WTYPE));                      \
                VEC wv = LOADW(padded);                                                                \
                _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++)                         \
                    acc[r][i] = FMA(wv, LOADX(xtail[i]), acc[r][i]);                                   \
            }                                                                                          \
        }                                                                                              \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                               \
            const float b = bias ? bias[n + r] : 0.0f;                                                 \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < M; i++)                             \
                y[i * ldy + n + r] = REDUCE(acc[r][i]) + b;                                            \
        }                                                                                              \
    }

DEFINE_BLOCK(block_f32_avx512, AVX512_TARGET, __m512, 16, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
             _mm512_reduce_add_ps, float, load16_f32)
DEFINE_BLOCK(block_bf16_avx512, AVX512_TARGET, __m512, 16, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
             _mm512_reduce_add_ps, uint16_t, load16_bf16)

// Weight rows per block: as many independent streams as the 32 zmm registers allow next to M
// activation vectors (R·M accumulators + M activations + 1 weight).
#define AVX512_ROWS(M) ((M) <= 3 ? 4 : (M) <= 4 ? 3 : 2)

#define DEFINE_AVX512_RANGE(NAME, BLOCK, WTYPE, M)                                                     \
    AVX512_TARGET static void NAME##_##M(const float *x, size_t ldx, size_t k, const WTYPE *w,          \
                                         size_t ldw, const float *bias, float *y, size_t ldy,          \
                                         size_t n_begin, size_t n_end, const float (*xtail)[16]) {     \
        const int R = AVX512_ROWS(M);                                                                  \
        size_t n = n_begin;                                                                            \
        for (; n + R <= n_end; n += R) BLOCK(x, ldx, M, R, k, w, ldw, bias, y, ldy, n, xtail);         \
        for (; n < n_end; n++) BLOCK(x, ldx, M, 1, k, w, ldw, bias, y, ldy, n, xtail);                 \
    }

#define DEFINE_ALL_ROWS(MACRO, NAME, BLOCK, WTYPE)                                                     \
    MACRO(NAME, BLOCK, WTYPE, 1) MACRO(NAME, BLOCK, WTYPE, 2) MACRO(NAME, BLOCK, WTYPE, 3)              \
    MACRO(NAME, BLOCK, WTYPE, 4) MACRO(NAME, BLOCK, WTYPE, 5) MACRO(NAME, BLOCK, WTYPE, 6)              \
    MACRO(NAME, BLOCK, WTYPE, 7) MACRO(NAME, BLOCK, WTYPE, 8)

DEFINE_ALL_ROWS(DEFINE_AVX512_RANGE, range_f32_avx512, block_f32_avx512, float)
DEFINE_ALL_ROWS(DEFINE_AVX512_RANGE, range_bf16_avx512, block_bf16_avx512, uint16_t)

// MARK: - AVX2 + FMA

// F16C is part of the AVX2 level (cpu_features.c): every AVX2 CPU has it, and the f16 kernel needs it.
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

AVX2_TARGET INLINE __m256 load8_f32(const float *p) { return _mm256_loadu_ps(p); }
AVX2_TARGET INLINE __m256 load8_bf16(const uint16_t *p) {
    __m128i half = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

AVX2_TARGET INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

DEFINE_BLOCK(block_f32_avx2, AVX2_TARGET, __m256, 8, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_loadu_ps, hsum8,
             float, load8_f32)
DEFINE_BLOCK(block_bf16_avx2, AVX2_TARGET, __m256, 8, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_loadu_ps, hsum8,
             uint16_t, load8_bf16)

// f16 weights: F16C widens 8 halves per instruction (exactly). AVX-512 CPUs run this kernel too:
// there is no AVX-512 f16 variant, since no machine this project tests on could run one.
AVX2_TARGET INLINE __m256 load8_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
DEFINE_BLOCK(block_f16_avx2, AVX2_TARGET, __m256, 8, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_loadu_ps, hsum8,
             uint16_t, load8_f16)

// 16 ymm registers: R·M accumulators + 1 weight; activations come from L1 as FMA memory operands
// (more accumulators made clang spill them inside the loop).
#define AVX2_ROWS(M) ((M) <= 2 ? 4 : (M) <= 4 ? 2 : 1)

#define DEFINE_AVX2_RANGE(NAME, BLOCK, WTYPE, M)                                                       \
    AVX2_TARGET static void NAME##_##M(const float *x, size_t ldx, size_t k, const WTYPE *w,            \
                                       size_t ldw, const float *bias, float *y, size_t ldy,            \
                                       size_t n_begin, size_t n_end, const float (*xtail)[16]) {       \
        const int R = AVX2_ROWS(M);                                                                    \
        size_t n = n_begin;                                                                            \
        for (; n + R <= n_end; n += R) BLOCK(x, ldx, M, R, k, w, ldw, bias, y, ldy, n, xtail);         \
        for (; n < n_end; n++) BLOCK(x, ldx, M, 1, k, w, ldw, bias, y, ldy, n, xtail);                 \
    }

DEFINE_ALL_ROWS(DEFINE_AVX2_RANGE, range_f32_avx2, block_f32_avx2, float)
DEFINE_ALL_ROWS(DEFINE_AVX2_RANGE, range_bf16_avx2, block_bf16_avx2, uint16_t)
DEFINE_ALL_ROWS(DEFINE_AVX2_RANGE, range_f16_avx2, block_f16_avx2, uint16_t)

#define ROW_TABLE(NAME) {NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, NAME##_7, NAME##_8}

typedef void (*range_f32_fn)(const float *, size_t, size_t, const float *, size_t, const float *, float *,
                             size_t, size_t, size_t, const float (*)[16]);
typedef void (*range_bf16_fn)(const float *, size_t, size_t, const uint16_t *, size_t, const float *,
                              float *, size_t, size_t, size_t, const float (*)[16]);

static const range_f32_fn f32_avx512[MAX_ROWS] = ROW_TABLE(range_f32_avx512);
static const range_bf16_fn bf16_avx512[MAX_ROWS] = ROW_TABLE(range_bf16_avx512);
static const range_f32_fn f32_avx2[MAX_ROWS] = ROW_TABLE(range_f32_avx2);
static const range_bf16_fn bf16_avx2[MAX_ROWS] = ROW_TABLE(range_bf16_avx2);
static const range_bf16_fn f16_avx2[MAX_ROWS] = ROW_TABLE(range_f16_avx2);

// The zero-padded last (k % width) activations of every row, so vector tails need no masking.
static void fill_tail(const float *x, size_t ldx, size_t m, size_t k, size_t width, float tail[MAX_ROWS][16]) {
    memset(tail, 0, sizeof(float) * MAX_ROWS * 16);
    size_t body = k - k % width;
    for (size_t i = 0; i < m; i++) memcpy(tail[i], x + i * ldx + body, (k - body) * sizeof(float));
}

#endif  // __x86_64__

// MARK: - Dispatch

chatter_isa chatter_gemv_f32_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                 const float *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                 size_t n_begin, size_t n_end) {
    isa = usable_isa(isa);
    if (m == 0 || n_begin >= n_end) return isa;
    // More rows than the register blocking holds: one weight pass per 8 rows.
    for (; m > MAX_ROWS; m -= MAX_ROWS, x += MAX_ROWS * ldx, y += MAX_ROWS * ldy)
        chatter_gemv_f32_isa(isa, x, ldx, MAX_ROWS, k, w, ldw, bias, y, ldy, n_begin, n_end);
#if defined(__x86_64__)
    float tail[MAX_ROWS][16];
    if (isa >= CHATTER_ISA_AVX512) {  // the bf16 level runs the AVX-512 kernel
        isa = CHATTER_ISA_AVX512;
        fill_tail(x, ldx, m, k, 16, tail);
        f32_avx512[m - 1](x, ldx, k, w, ldw, bias, y, ldy, n_begin, n_end, (const float (*)[16])tail);
        return isa;
    }
    if (isa == CHATTER_ISA_AVX2) {
        fill_tail(x, ldx, m, k, 8, tail);
        f32_avx2[m - 1](x, ldx, k, w, ldw, bias, y, ldy, n_begin, n_end, (const float (*)[16])tail);
        return isa;
    }
#endif
    gemv_f32_portable(x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
    return CHATTER_ISA_PORTABLE;
}

chatter_isa chatter_gemv_bf16_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                  const uint16_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                  size_t n_begin, size_t n_end) {
    isa = usable_isa(isa);
    if (m == 0 || n_begin >= n_end) return isa;
    // More rows than the register blocking holds: one weight pass per 8 rows.
    for (; m > MAX_ROWS; m -= MAX_ROWS, x += MAX_ROWS * ldx, y += MAX_ROWS * ldy)
        chatter_gemv_bf16_isa(isa, x, ldx, MAX_ROWS, k, w, ldw, bias, y, ldy, n_begin, n_end);
#if defined(__x86_64__)
    float tail[MAX_ROWS][16];
    if (isa >= CHATTER_ISA_AVX512) {  // the bf16 level runs the AVX-512 kernel
        isa = CHATTER_ISA_AVX512;
        fill_tail(x, ldx, m, k, 16, tail);
        bf16_avx512[m - 1](x, ldx, k, w, ldw, bias, y, ldy, n_begin, n_end, (const float (*)[16])tail);
        return isa;
    }
    if (isa == CHATTER_ISA_AVX2) {
        fill_tail(x, ldx, m, k, 8, tail);
        bf16_avx2[m - 1](x, ldx, k, w, ldw, bias, y, ldy, n_begin, n_end, (const float (*)[16])tail);
        return isa;
    }
#endif
    gemv_bf16_portable(x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
    return CHATTER_ISA_PORTABLE;
}

chatter_isa chatter_gemv_f16_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                 const uint16_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                 size_t n_begin, size_t n_end) {
    isa = usable_isa(isa);
    if (m == 0 || n_begin >= n_end) return isa;
    // More rows than the register blocking holds: one weight pass per 8 rows.
    for (; m > MAX_ROWS; m -= MAX_ROWS, x += MAX_ROWS * ldx, y += MAX_ROWS * ldy)
        chatter_gemv_f16_isa(isa, x, ldx, MAX_ROWS, k, w, ldw, bias, y, ldy, n_begin, n_end);
#if defined(__x86_64__)
    if (isa >= CHATTER_ISA_AVX2) {  // AVX-512 levels run the AVX2 + F16C kernel (see block_f16_avx2)
        float tail[MAX_ROWS][16];
        fill_tail(x, ldx, m, k, 8, tail);
        f16_avx2[m - 1](x, ldx, k, w, ldw, bias, y, ldy, n_begin, n_end, (const float (*)[16])tail);
        return CHATTER_ISA_AVX2;
    }
#endif
    gemv_f16_portable(x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
    return CHATTER_ISA_PORTABLE;
}

void chatter_gemv_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t ldw,
                      const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    chatter_gemv_f32_isa(chatter_kernels_isa(), x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
}

void chatter_gemv_bf16(const float *x, size_t ldx, size_t m, size_t k, const uint16_t *w, size_t ldw,
                       const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end) {
    chatter_gemv_bf16_isa(chatter_kernels_isa(), x, ldx, m, k, w, ldw, bias, y, ldy, n_begin, n_end);
}
