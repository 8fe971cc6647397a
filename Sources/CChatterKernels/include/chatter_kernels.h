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

/// Instruction-set levels the kernels know, each a superset of the one below. AVX512_BF16 is AVX-512
/// (F + BW) plus the bf16 dot product `vdpbf16ps` (CPUID leaf 7 subleaf 1, EAX bit 5: Cooper Lake,
/// Sapphire Rapids, Zen 4/5); only the bf16 GEMM uses it, every other kernel runs its AVX-512
/// variant at that level.
typedef enum {
    CHATTER_ISA_PORTABLE = 0,
    CHATTER_ISA_AVX2 = 1,
    CHATTER_ISA_AVX512 = 2,
    CHATTER_ISA_AVX512_BF16 = 3,
} chatter_isa;

/// The level the kernels run at on this CPU (cpuid on x86-64; portable elsewhere; the AVX2 level also
/// requires F16C, which every AVX2 CPU has), possibly lowered
/// by the environment variable CHATTERSTREAM_ISA=portable|avx2|avx512|avx512_bf16 (avx512 keeps the
/// AVX-512 kernels but turns the bf16 GEMM off).
chatter_isa chatter_kernels_isa(void);

/// A human-readable name of `isa`.
const char *chatter_isa_name(chatter_isa isa);

/// Activation rows the GEMV kernels hold in registers; more rows cost one weight pass per 8.
#define CHATTER_GEMV_MAX_ROWS 8

/// Skinny GEMM in PyTorch `linear` layout, for the memory-bound decode loop:
///
///     y[i * ldy + n] = bias[n] + Σ_{t < k} x[i * ldx + t] · w[n * ldw + t]
///
/// for rows i < m and output columns n_begin ≤ n < n_end (callers split N across threads). All m
/// rows share one pass over the weights. `bias` may be NULL. Accumulation is f32; bf16 weights are
/// widened exactly (a 16-bit shift), activations are never rounded.
void chatter_gemv_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t ldw,
                      const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end);
void chatter_gemv_bf16(const float *x, size_t ldx, size_t m, size_t k, const uint16_t *w, size_t ldw,
                       const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end);

/// The same with the instruction set chosen by the caller (tests run every variant and compare).
/// `isa` is lowered to what `chatter_kernels_isa()` allows, never raised; returns the ISA that ran.
chatter_isa chatter_gemv_f32_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                 const float *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                 size_t n_begin, size_t n_end);
chatter_isa chatter_gemv_bf16_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                  const uint16_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                  size_t n_begin, size_t n_end);

/// The same over IEEE f16 weights (widened exactly; F16C on x86). There is no AVX-512 variant: AVX-512
/// levels run the AVX2 + F16C kernel and return CHATTER_ISA_AVX2.
chatter_isa chatter_gemv_f16_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                 const uint16_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                 size_t n_begin, size_t n_end);

/// Widens `count` f16 values (exactly), or `blocks` q8_0 blocks (each value = f32(scale) · int8,
/// one f32 rounding), into f32: the prefill path (`linear` with more than 8 rows) widens a block of
/// weight rows at a time into a reused buffer for sgemm. Every ISA gives identical results.
chatter_isa chatter_widen_f16_isa(chatter_isa isa, const uint16_t *source, float *destination, size_t count);
chatter_isa chatter_widen_q8_0_isa(chatter_isa isa, const uint8_t *source, float *destination, size_t blocks);

/// The same over q8_0 weights: each row is k / 32 blocks of 34 bytes (an f16 scale, then 32 int8),
/// `ldw` is the row stride in bytes, and k must be a multiple of 32.
void chatter_gemv_q8_0(const float *x, size_t ldx, size_t m, size_t k, const uint8_t *w, size_t ldw,
                       const float *bias, float *y, size_t ldy, size_t n_begin, size_t n_end);
chatter_isa chatter_gemv_q8_0_isa(chatter_isa isa, const float *x, size_t ldx, size_t m, size_t k,
                                  const uint8_t *w, size_t ldw, const float *bias, float *y, size_t ldy,
                                  size_t n_begin, size_t n_end);

/// GEMM over bf16 weights for prefill (compute-bound: many activation rows), with the bf16 dot
/// product `vdpbf16ps`; needs `chatter_kernels_isa() >= CHATTER_ISA_AVX512_BF16`:
///
///     c[i * ldc + n] (+)= bias[n] + Σ_{t < k} bf16(a[i * lda + t]) · w[n * ldw + t]
///
/// `w` is bf16 [N, K] row-major (PyTorch `linear` layout, read only: it may be a mapped file), `a`
/// f32 [M, K], rounded to bf16 (round to nearest even, as torch rounds the activations of a bf16
/// matmul) when packed; products are exact in f32 and accumulation is f32. Two steps:
///
/// 1. `chatter_gemm_bf16_pack_a` converts strips of CHATTER_GEMM_BF16_MR rows of `a` into the
///    buffer (`chatter_gemm_bf16_packed_a_bytes(m, k)` bytes, 64-byte aligned); callers split the
///    strips ⌈m / MR⌉ across threads.
/// 2. `chatter_gemm_bf16_run` computes rows [row_begin, row_end) (row_begin a multiple of MR) ×
///    columns [n_begin, n_end) of `c` from the packed rows; callers split that rectangle across
///    threads. `accumulate` adds to `c` instead of overwriting it; `bias` may be NULL.
///
/// Both return 1 when done, 0 (doing nothing) when the CPU (or CHATTERSTREAM_ISA) does not allow
/// avx512_bf16, or when row_begin is not a multiple of CHATTER_GEMM_BF16_MR.
#define CHATTER_GEMM_BF16_MR 8
size_t chatter_gemm_bf16_packed_a_bytes(size_t m, size_t k);
int chatter_gemm_bf16_pack_a(const float *a, size_t lda, size_t m, size_t k, void *packed,
                             size_t strip_begin, size_t strip_end);
int chatter_gemm_bf16_run(const void *packed, size_t m, size_t k, const uint16_t *w, size_t ldw,
                          const float *bias, float *c, size_t ldc, size_t row_begin, size_t row_end,
                          size_t n_begin, size_t n_end, int accumulate);

/// `chatter_gemm_bf16_run` over a `w` whose rows are segments: the k values of row n are
/// `k / (2 · segment_pairs)` runs of `2 · segment_pairs` values, run s at w + n · ldw + s · segment_stride
/// (rows and runs may overlap). A 1-D convolution over a [T, Cin] bf16 input (Cin even) is this GEMM
/// with n = output frame, ldw = stride · Cin, one run of Cin channels per tap, segment_stride =
/// dilation · Cin: the unfolded input is never written (`chatter_conv_input_bf16`). `k` must be even.
int chatter_gemm_bf16_run_segmented(const void *packed, size_t m, size_t k, const uint16_t *w, size_t ldw,
                                    size_t segment_pairs, size_t segment_stride, const float *bias, float *c,
                                    size_t ldc, size_t row_begin, size_t row_end, size_t n_begin, size_t n_end,
                                    int accumulate);

/// Frames [frame_begin, frame_end) of x (f32 [channels, frames], row stride ldx) transposed and
/// rounded to bf16 (nearest even) into out [frames, ldo]: out[t · ldo + c] = bf16(x[c · ldx + t]),
/// channels c ≥ `channels` (up to ldo) zeroed. Returns 0 without avx512_bf16.
int chatter_conv_input_bf16(const float *x, size_t ldx, size_t channels, size_t frames, uint16_t *out, size_t ldo,
                            size_t frame_begin, size_t frame_end);

/// The 16-bit formats a KV cache can hold its keys and values in (`KVCache.Precision`).
typedef enum {
    CHATTER_KV_F16 = 0,   ///< IEEE binary16 (F16C `vcvtps2ph` / `vcvtph2ps` on x86)
    CHATTER_KV_BF16 = 1,  ///< the top half of an f32
} chatter_kv_format;

/// Narrows `count` f32 values to `format` (round to nearest even, overflow to ±inf, NaN kept quiet):
/// every ISA stores the same bits. Widening back is exact. `isa` is lowered to what the CPU allows;
/// each returns the ISA that ran.
chatter_isa chatter_kv_narrow_isa(chatter_isa isa, chatter_kv_format format, const float *source, uint16_t *destination,
                                  size_t count);
chatter_isa chatter_kv_widen_isa(chatter_isa isa, chatter_kv_format format, const uint16_t *source, float *destination,
                                 size_t count);

/// A decode step's attention over one head of a 16-bit KV cache, accumulating in f32:
///
///     scores[j] = scale · Σ_{d < dim} q[d] · k[j · ldk + d]           (j < count)
///     out[d]    = Σ_{j < count} p[j] · v[j · ldv + d]                 (d < dim; `out` is overwritten)
///
/// ISAs differ only in summation order.
chatter_isa chatter_kv_scores_isa(chatter_isa isa, chatter_kv_format format, const float *q, const uint16_t *k, size_t ldk,
                                  size_t count, size_t dim, float scale, float *scores);
chatter_isa chatter_kv_weighted_sum_isa(chatter_isa isa, chatter_kv_format format, const float *p, const uint16_t *v,
                                        size_t ldv, size_t count, size_t dim, float *out);

/// Softmax, in place, of `count` rows of length n (row r starts at rows + r · ld), bit-identical to
/// ChatterTensor's Swift `SoftmaxKernel.softmaxRow` (same exp polynomial and summation order, no
/// FMA) at every ISA. A row holding NaN gives NaN; an all −inf row gives NaN, as in torch.
void chatter_softmax_rows(float *rows, size_t count, size_t n, size_t ld);
/// The same with the instruction set chosen by the caller (lowered to what the CPU allows).
chatter_isa chatter_softmax_rows_isa(chatter_isa isa, float *rows, size_t count, size_t n, size_t ld);

/// Softmax rows whose probabilities feed a bf16 product (`packedSelfAttention` with bf16 products):
/// the exp with FMAs and `vscalefps`, ~2× the rows per second of `chatter_softmax_rows` and within
/// ~1e-6 relative of it, far below the 2⁻⁸ bf16 rounding that follows. Only where avx512_bf16 is (where
/// the bf16 attention runs); returns 0, doing nothing, elsewhere. Same NaN / −inf rules.
int chatter_softmax_rows_for_bf16(float *rows, size_t count, size_t n, size_t ld);

/// One key block of flash attention's online softmax, for `rows` query rows: row r of `scores` (its
/// `keys` values at scores + r · ld_scores, a block of q·kᵀ) becomes, in place,
///
///     s[c]  = (s[c] + band_r[c]) · scale          (band_r = band + r · ld_band + (rows − 1 − r); the
///                                                  combine is skipped when band is NULL and scale is 1)
///     m'    = max(row_max[r], max_c s[c])
///     p[c]  = exp(s[c] − m')                      (written over s: the block's unnormalised probabilities)
///     row_sum[r] = row_sum[r] · exp(row_max[r] − m') + Σ_c p[c];   row_max[r] = m'
///     out[r · ld_out + d] *= exp(row_max[r] − m')  (d < dim: what earlier key blocks accumulated)
///
/// A row whose row_max is −inf (the first key block) has its `dim` outputs zeroed instead. The caller
/// then adds p · v_block to out and, after the last key block, divides out by row_sum. The band is
/// the relative-position term of ESPnet's rel_selfattn: band row r, read from offset rows − 1 − r, is
/// the diagonal of (q + bias_v) · p_bandᵀ that lines up with the keys. Same exp polynomial as
/// `chatter_softmax_rows`, no FMA, so every ISA gives identical bits; a NaN score poisons its row.
chatter_isa chatter_attention_online_softmax_isa(chatter_isa isa, float *scores, size_t ld_scores, size_t rows,
                                                 size_t keys, const float *band, size_t ld_band, float scale,
                                                 float *row_max, float *row_sum, float *out, size_t ld_out,
                                                 size_t dim);

/// A hint that the caller is spinning on a memory location (`pause` on x86-64, `yield` on arm64):
/// it frees the core's pipeline for the sibling thread and saves power while the value is awaited.
static inline void chatter_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
