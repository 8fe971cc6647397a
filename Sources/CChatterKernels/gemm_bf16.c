// GEMM over bf16 weights for the compute-bound prefill: c (+)= bias + bf16(a) · wᵀ with the
// avx512_bf16 dot product `vdpbf16ps`, which multiplies 32 bf16 pairs into 16 f32 lanes per
// instruction (dst[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1], products exact, f32 sums), twice the
// multiply-adds of an f32 FMA per instruction and no weight widening. Layout of the work (BLIS-like):
//
// - A (activations, f32 [M, K]) is rounded to bf16 once per call and packed in strips of MR rows:
//   strip s is ⌈K/2⌉ groups of MR 32-bit words, word (j, r) = the pair (a[r][2j], a[r][2j+1]) as
//   two bf16 (low half = even k). One 4-byte broadcast of a word feeds `vdpbf16ps` for 16 columns.
//   Rounding is round-to-nearest-even (`vcvtne2ps2bf16`), what torch does to the f32 activations of
//   a bf16 matmul, so this path reproduces a bf16 PyTorch prefill, not the f32-activation one: each
//   activation carries a relative rounding error ≤ 2⁻⁸ (bf16 keeps 8 significant bits).
// - W (weights, bf16 [N, K], PyTorch `linear` layout, never written: it is usually a mapped file)
//   is packed per call into micro-panels of NR = 32 columns × KC k-values, in k-pair-interleaved
//   order: group j holds the pairs (w[n][2j], w[n][2j+1]) of the 32 columns n in order, i.e. two
//   512-bit vectors, each the second operand of one `vdpbf16ps` for 16 output columns. Read as
//   32-bit words, a row of W already holds its pairs in k order, so packing is a 16×16 transpose
//   of words (16 rows × 16 pairs at a time).
// - The microkernel keeps an MR × 32 block of C in 2·MR zmm accumulators (MR = 8: 16 accumulators,
//   enough independent chains to cover the instruction's latency at two per cycle) and per k pair
//   loads 2 weight vectors and broadcasts MR activation words: 2·MR dot products for MR + 2 loads.
// - K is cut into blocks of KC ≤ 512 (256 pairs): a micro-panel (32 KiB) stays in L1 while every
//   strip of A passes over it, and one K block of A (M × KC bf16, ≤ 512 KiB, else M is blocked too)
//   stays in L2 while the panels of a column range pass. C is read back between K blocks.
//
// Tails: K is padded to even with a zero (in both A and W, so the pad contributes exactly 0), N
// tails use masked loads/stores of C and zero weight columns, M tails run a microkernel compiled
// for the remaining row count.
#include "chatter_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR CHATTER_GEMM_BF16_MR
#define NR 32
#define KCP_MAX 256               // k pairs per K block: 512 k, a 32 KiB micro-panel
#define A_BLOCK_BYTES (512 << 10)  // packed A per (M block, K block), meant to stay in L2

static size_t k_pairs(size_t k) { return (k + 1) / 2; }
static size_t strips(size_t m) { return (m + MR - 1) / MR; }

size_t chatter_gemm_bf16_packed_a_bytes(size_t m, size_t k) {
    size_t bytes = strips(m) * MR * k_pairs(k) * sizeof(uint32_t);
    return bytes < 64 ? 64 : bytes;
}

#if defined(__x86_64__)

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

// MARK: - Packing

// Strip s of A: for every k pair j, MR words (rows beyond m are zero). 32 k at a time: rows are
// rounded to bf16 by one `vcvtne2ps2bf16` (32 floats → 32 bf16 = 16 pairs), then transposed to the
// pair-major layout through a small buffer. Masked loads read nothing past k, and zero the pad.
BF16_TARGET static void pack_a_strip(const float *a, size_t lda, size_t m, size_t k, size_t s, uint32_t *out) {
    const size_t kp = k_pairs(k), r0 = s * MR;
    for (size_t j = 0; j < kp; j += 16) {
        const size_t t = 2 * j, left = k - t;
        const __mmask16 lo = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        const __mmask16 hi = left >= 32 ? 0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        uint32_t tmp[MR][16] __attribute__((aligned(64)));
        for (int r = 0; r < MR; r++) {
            __m512i words = _mm512_setzero_si512();
            if (r0 + r < m) {
                const float *row = a + (r0 + r) * lda + t;
                __m512 low = _mm512_maskz_loadu_ps(lo, row), high = _mm512_maskz_loadu_ps(hi, row + 16);
                words = (__m512i)_mm512_cvtne2ps_pbh(high, low);  // low half from the second operand
            }
            _mm512_store_si512(tmp[r], words);
        }
        const size_t count = kp - j < 16 ? kp - j : 16;
        for (size_t jj = 0; jj < count; jj++)
            for (int r = 0; r < MR; r++) out[(j + jj) * MR + r] = tmp[r][jj];
    }
}

// In-register transpose of a 16×16 matrix of 32-bit words: r[i] word c becomes r[c] word i.
BF16_TARGET INLINE void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // u[4i + c], 128-bit lane L: word 4L + c of rows 4i … 4i + 3.
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // Word 4L + c of all rows: lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
    for (int c = 0; c < 4; c++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
        __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
        r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
    }
}

// Where a row of W keeps its k values: `seg_pairs` pairs at a time, segment s starting `seg_stride`
// bf16 values after segment s − 1 (a convolution's taps over its input, see
// chatter_gemm_bf16_run_segmented); one segment of all ⌈k/2⌉ pairs for a plain row.
typedef struct {
    size_t seg_pairs, seg_stride;
} w_layout;

// Offset (in bf16 values) of pair p within a row.
INLINE size_t pair_offset(w_layout layout, size_t p) {
    return (p / layout.seg_pairs) * layout.seg_stride + 2 * (p % layout.seg_pairs);
}

// Micro-panel of columns [n0, n0 + cols) × pairs [p0, p0 + np): panel[jj * 32 + c] = pair p0 + jj of
// column n0 + c, zero for columns ≥ cols. Whole 16-pair chunks inside the row (no odd last k) and
// inside one segment go through the transpose; the rest, and a final half pair when k is odd, are
// copied one word at a time (never reading past the row: the weights may end at a page boundary of
// a mapped file).
BF16_TARGET static void pack_w(const uint16_t *w, size_t ldw, w_layout layout, size_t k, size_t n0, size_t cols,
                               size_t p0, size_t np, uint32_t *panel) {
    const size_t whole = k / 2;  // pairs with both halves inside a row
    const size_t inside = whole > p0 ? (whole - p0 < np ? whole - p0 : np) : 0;
    for (size_t c0 = 0; c0 < NR; c0 += 16) {
        const size_t valid = cols > c0 ? (cols - c0 < 16 ? cols - c0 : 16) : 0;
        size_t jj = 0;
        while (jj < np) {
            const size_t p = p0 + jj;
            if (valid > 0 && jj + 16 <= inside && p % layout.seg_pairs + 16 <= layout.seg_pairs) {
                const size_t offset = pair_offset(layout, p);
                __m512i r[16];
                for (size_t i = 0; i < 16; i++) {
                    if (i < valid) {
                        const uint16_t *src = w + (n0 + c0 + i) * ldw + offset;
                        _mm_prefetch((const char *)(src + 128), _MM_HINT_T0);  // 4 lines ahead in the row
                        r[i] = _mm512_loadu_si512(src);
                    } else {
                        r[i] = _mm512_setzero_si512();
                    }
                }
                transpose16(r);
                for (int i = 0; i < 16; i++) _mm512_store_si512(panel + (jj + i) * NR + c0, r[i]);
                jj += 16;
                continue;
            }
            const size_t t = 2 * p, offset = pair_offset(layout, p);
            for (size_t i = 0; i < 16; i++) {
                uint32_t word = 0;
                if (i < valid) {
                    const uint16_t *row = w + (n0 + c0 + i) * ldw + offset;
                    word = (uint32_t)row[0] | (t + 1 < k ? (uint32_t)row[1] << 16 : 0);
                }
                panel[jj * NR + c0 + i] = word;
            }
            jj++;
        }
    }
}

// MARK: - Microkernel

enum { INIT_LOAD = 1, INIT_BIAS = 2 };

// C[R rows, 32 columns] (+)= A strip · panel over np pairs. `flags`: INIT_LOAD starts from C (later K
// blocks, or accumulate), else from zero; INIT_BIAS adds the bias (first K block only). m0 / m1 mask
// the columns of the two 16-wide halves.
BF16_TARGET INLINE void micro(const int R, const uint32_t *a, const uint32_t *panel, size_t np, float *c, size_t ldc,
                              __mmask16 m0, __mmask16 m1, int flags, const float *bias) {
    __m512 acc0[12], acc1[12];  // R ≤ 12 used
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
        if (flags & INIT_LOAD) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
        } else {
            acc0[r] = _mm512_setzero_ps();
            acc1[r] = _mm512_setzero_ps();
        }
    }
    if (flags & INIT_BIAS) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, bias), b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], b0);
            acc1[r] = _mm512_add_ps(acc1[r], b1);
        }
    }
    _Pragma("clang loop unroll_count(2)") for (size_t j = 0; j < np; j++) {
        const __m512bh w0 = (__m512bh)_mm512_load_si512(panel + j * NR);
        const __m512bh w1 = (__m512bh)_mm512_load_si512(panel + j * NR + 16);
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[j * MR + r]);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], x, w0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], x, w1);
        }
    }
    _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

typedef void (*micro_fn)(const uint32_t *, const uint32_t *, size_t, float *, size_t, __mmask16, __mmask16, int,
                         const float *);

#define DEFINE_MICRO(R)                                                                                     \
    BF16_TARGET static void micro_##R(const uint32_t *a, const uint32_t *panel, size_t np, float *c, size_t ldc, \
                                      __mmask16 m0, __mmask16 m1, int flags, const float *bias) {           \
        micro(R, a, panel, np, c, ldc, m0, m1, flags, bias);                                                \
    }
DEFINE_MICRO(1) DEFINE_MICRO(2) DEFINE_MICRO(3) DEFINE_MICRO(4) DEFINE_MICRO(5) DEFINE_MICRO(6)
DEFINE_MICRO(7) DEFINE_MICRO(8) DEFINE_MICRO(9) DEFINE_MICRO(10) DEFINE_MICRO(11) DEFINE_MICRO(12)

_Static_assert(MR >= 1 && MR <= 12, "the microkernel table holds 1 … 12 rows");
static const micro_fn micros[12] = {micro_1, micro_2, micro_3, micro_4,  micro_5,  micro_6,
                                    micro_7, micro_8, micro_9, micro_10, micro_11, micro_12};

// MARK: - Driver

BF16_TARGET static void run(const uint32_t *packed, size_t k, const uint16_t *w, size_t ldw, w_layout layout,
                            const float *bias, float *c, size_t ldc, size_t row_begin, size_t row_end,
                            size_t n_begin, size_t n_end, int accumulate) {
    const size_t kp = k_pairs(k);
    // Equal K blocks of at most KCP_MAX pairs, rounded up to 16 pairs so only the last block of an
    // odd-sized K has a word-by-word tail.
    const size_t blocks = kp > KCP_MAX ? (kp + KCP_MAX - 1) / KCP_MAX : 1;
    size_t kcp = (kp + blocks - 1) / blocks;
    kcp = (kcp + 15) / 16 * 16;
    if (kcp > KCP_MAX) kcp = KCP_MAX;
    if (kcp == 0) kcp = 16;
    size_t block_strips = A_BLOCK_BYTES / (MR * kcp * sizeof(uint32_t));
    if (block_strips == 0) block_strips = 1;
    uint32_t panel[KCP_MAX * NR] __attribute__((aligned(64)));

    for (size_t r0 = row_begin; r0 < row_end; r0 += block_strips * MR) {
        const size_t r1 = row_end - r0 < block_strips * MR ? row_end : r0 + block_strips * MR;
        size_t p0 = 0;
        do {  // at least once, so k = 0 still writes bias (or zero) into C
            const size_t np = kp - p0 < kcp ? kp - p0 : kcp;
            const int flags = p0 == 0 ? (accumulate ? INIT_LOAD : 0) | (bias ? INIT_BIAS : 0) : INIT_LOAD;
            for (size_t n0 = n_begin; n0 < n_end; n0 += NR) {
                const size_t cols = n_end - n0 < NR ? n_end - n0 : NR;
                pack_w(w, ldw, layout, k, n0, cols, p0, np, panel);
                const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
                const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
                for (size_t row = r0; row < r1; row += MR) {
                    const size_t rows = r1 - row < MR ? r1 - row : MR;
                    micros[rows - 1](packed + (row / MR) * kp * MR + p0 * MR, panel, np, c + row * ldc + n0, ldc, m0,
                                     m1, flags, bias ? bias + n0 : NULL);
                }
            }
            p0 += np;
        } while (p0 < kp);
    }
}

#endif  // __x86_64__

// MARK: - Entry points

int chatter_gemm_bf16_pack_a(const float *a, size_t lda, size_t m, size_t k, void *packed, size_t strip_begin,
                             size_t strip_end) {
    if (chatter_kernels_isa() < CHATTER_ISA_AVX512_BF16) return 0;
#if defined(__x86_64__)
    const size_t total = strips(m);
    if (strip_end > total) strip_end = total;
    for (size_t s = strip_begin; s < strip_end; s++)
        pack_a_strip(a, lda, m, k, s, (uint32_t *)packed + s * k_pairs(k) * MR);
    return 1;
#else
    (void)a, (void)lda, (void)m, (void)k, (void)packed, (void)strip_begin, (void)strip_end;
    return 0;
#endif
}

int chatter_gemm_bf16_run(const void *packed, size_t m, size_t k, const uint16_t *w, size_t ldw, const float *bias,
                          float *c, size_t ldc, size_t row_begin, size_t row_end, size_t n_begin, size_t n_end,
                          int accumulate) {
    if (chatter_kernels_isa() < CHATTER_ISA_AVX512_BF16) return 0;
#if defined(__x86_64__)
    if (row_begin % MR != 0) return 0;  // a row range must start at a packed strip
    if (row_end > m) row_end = m;
    if (row_begin >= row_end || n_begin >= n_end) return 1;
    const w_layout plain = {k_pairs(k) > 0 ? k_pairs(k) : 1, 0};
    run((const uint32_t *)packed, k, w, ldw, plain, bias, c, ldc, row_begin, row_end, n_begin, n_end, accumulate);
    return 1;
#else
    (void)packed, (void)m, (void)k, (void)w, (void)ldw, (void)bias, (void)c, (void)ldc, (void)row_begin;
    (void)row_end, (void)n_begin, (void)n_end, (void)accumulate;
    return 0;
#endif
}

int chatter_gemm_bf16_run_segmented(const void *packed, size_t m, size_t k, const uint16_t *w, size_t ldw,
                                    size_t segment_pairs, size_t segment_stride, const float *bias, float *c,
                                    size_t ldc, size_t row_begin, size_t row_end, size_t n_begin, size_t n_end,
                                    int accumulate) {
    if (chatter_kernels_isa() < CHATTER_ISA_AVX512_BF16) return 0;
#if defined(__x86_64__)
    if (row_begin % MR != 0 || segment_pairs == 0 || k % 2 != 0) return 0;
    if (row_end > m) row_end = m;
    if (row_begin >= row_end || n_begin >= n_end) return 1;
    const w_layout layout = {segment_pairs, segment_stride};
    run((const uint32_t *)packed, k, w, ldw, layout, bias, c, ldc, row_begin, row_end, n_begin, n_end, accumulate);
    return 1;
#else
    (void)packed, (void)m, (void)k, (void)w, (void)ldw, (void)segment_pairs, (void)segment_stride, (void)bias;
    (void)c, (void)ldc, (void)row_begin, (void)row_end, (void)n_begin, (void)n_end, (void)accumulate;
    return 0;
#endif
}

#if defined(__x86_64__)
// 16 frames × 16 channels at a time: 16 row loads of x (one channel, 16 frames), an in-register
// transpose, and per frame one rounding of its 16 channels to bf16 (`vcvtneps2bf16`).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void transpose_block_bf16(const float *x, size_t ldx, size_t channels, size_t frames, size_t c0,
                                             size_t t0, uint16_t *out, size_t ldo) {
    const size_t nc = channels - c0 < 16 ? channels - c0 : 16, nt = frames - t0 < 16 ? frames - t0 : 16;
    const __mmask16 frame_mask = nt >= 16 ? 0xFFFF : (__mmask16)((1u << nt) - 1);
    __m512i r[16];
    for (size_t i = 0; i < 16; i++)
        r[i] = i < nc ? _mm512_castps_si512(_mm512_maskz_loadu_ps(frame_mask, x + (c0 + i) * ldx + t0)) : _mm512_setzero_si512();
    transpose16(r);
    const __mmask16 channel_mask = nc >= 16 ? 0xFFFF : (__mmask16)((1u << nc) - 1);
    for (size_t t = 0; t < nt; t++) {
        const __m256i rounded = (__m256i)_mm512_cvtneps_pbh(_mm512_castsi512_ps(r[t]));
        _mm256_mask_storeu_epi16(out + (t0 + t) * ldo + c0, channel_mask, rounded);
    }
}
#endif

int chatter_conv_input_bf16(const float *x, size_t ldx, size_t channels, size_t frames, uint16_t *out, size_t ldo,
                            size_t frame_begin, size_t frame_end) {
    if (chatter_kernels_isa() < CHATTER_ISA_AVX512_BF16) return 0;
#if defined(__x86_64__)
    if (frame_end > frames) frame_end = frames;
    for (size_t t0 = frame_begin; t0 < frame_end; t0 += 16) {
        const size_t block_frames = frame_end - t0 < 16 ? frame_end - t0 : 16;
        for (size_t c0 = 0; c0 < channels; c0 += 16)
            transpose_block_bf16(x, ldx, channels, t0 + block_frames, c0, t0, out, ldo);
        for (size_t t = t0; t < t0 + block_frames; t++)
            for (size_t c = channels; c < ldo; c++) out[t * ldo + c] = 0;  // the pad channel
    }
    return 1;
#else
    (void)x, (void)ldx, (void)channels, (void)frames, (void)out, (void)ldo, (void)frame_begin, (void)frame_end;
    return 0;
#endif
}
