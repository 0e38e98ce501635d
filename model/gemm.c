/* gemm.c — the prompt's products: dispatch, and the F32 register-blocked
 * kernel.
 *
 * A prompt batch reuses each weight row for all its tokens, so the work is
 * compute-bound and the form that keeps the most multiply-adds in flight
 * per load wins: F32 runs tiles of 4 rows × 6 tokens (24 accumulators,
 * 10 loads per 24 FMAs; llama.cpp's tinyBLAS takes the same shape), the
 * block types the AMX tiles of amx.c. */
#include "model/gemm.h"

#include "model/amx.h"

#include <assert.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define GEMM_X86 1
#include <immintrin.h>
#define GEMM_AVX512 __attribute__((target("avx2,fma,avx512f")))
#endif

/* -O2 leaves a tile's loops rolled and its accumulators on the stack. */
#define GEMM_UNROLL _Pragma("GCC unroll 6")
#define GEMM_INLINE inline __attribute__((always_inline))

#define GEMM_R 4 /* F32 tile: rows */
#define GEMM_T 6 /* F32 tile: tokens */
#define GEMM_SLICE 4 /* F32 rows that stay in L1 while every token passes */

_Static_assert(GEMM_MAX_TOKENS <= AMX_MAX_TOKENS, "AMX takes every batch");

size_t gemm_buf_bytes(int cols, int nx) { return amx_pack_bytes(cols, nx); }

int gemm_handles(const kern_mat *w) {
    int level = kern_get_level();
    if (amx_type(w->type))
        return level >= KERN_AMX_LEVEL && w->rows >= 16;
    return w->type == KERN_F32 && level >= KERN_AVX512_LEVEL;
}

void gemm_prepare(const kern_act *x, int nx, int t0, int t1, int code,
                  void *buf) {
    if ((code == KERN_ACT_Q8_0 || code == KERN_ACT_Q8_K) &&
        kern_get_level() >= KERN_AMX_LEVEL)
        amx_pack(x, nx, t0, t1, buf);
}

#ifdef GEMM_X86
/* gemm.h's fold of the 16 lanes. */
GEMM_AVX512 static inline float gemm_fold(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                 _mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a),
                          _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}

/* Rows i..i+nr-1 (nr <= GEMM_R) times tokens x[0..nt) (nt <= GEMM_T),
 * unrolled for the constants the callers pass; each 16-value step also
 * prefetches the line at *pf (the next slice of rows, which the hardware
 * prefetcher does not see coming) while it is below pf_end. */
GEMM_AVX512 static GEMM_INLINE void f32_tile(const kern_mat *w,
                                             const kern_act *x, int nr, int nt,
                                             float *out, size_t stride, int i,
                                             const char **pf,
                                             const char *pf_end) {
    const float *wr[GEMM_R], *xt[GEMM_T];
    __m512 acc[GEMM_R][GEMM_T];
    int n = w->cols, k = 0;
    __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);

    GEMM_UNROLL
    for (int r = 0; r < nr; r++)
        wr[r] = (const float *)w->q + (size_t)n * (size_t)(i + r);
    GEMM_UNROLL
    for (int t = 0; t < nt; t++)
        xt[t] = x[t].f;
    GEMM_UNROLL
    for (int r = 0; r < GEMM_R; r++)
        GEMM_UNROLL
        for (int t = 0; t < GEMM_T; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (; k + 16 <= n; k += 16) {
        __m512 vw[GEMM_R];
        if (*pf < pf_end) {
            _mm_prefetch(*pf, _MM_HINT_T0);
            *pf += 64;
        }
        GEMM_UNROLL
        for (int r = 0; r < nr; r++)
            vw[r] = _mm512_loadu_ps(wr[r] + k);
        GEMM_UNROLL
        for (int t = 0; t < nt; t++) {
            __m512 vx = _mm512_loadu_ps(xt[t] + k);
            GEMM_UNROLL
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_fmadd_ps(vw[r], vx, acc[r][t]);
        }
    }
    if (tail) {
        __m512 vw[GEMM_R];
        GEMM_UNROLL
        for (int r = 0; r < nr; r++)
            vw[r] = _mm512_maskz_loadu_ps(tail, wr[r] + k);
        GEMM_UNROLL
        for (int t = 0; t < nt; t++) {
            __m512 vx = _mm512_maskz_loadu_ps(tail, xt[t] + k);
            GEMM_UNROLL
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_mask3_fmadd_ps(vw[r], vx, acc[r][t], tail);
        }
    }
    GEMM_UNROLL
    for (int r = 0; r < nr; r++)
        GEMM_UNROLL
        for (int t = 0; t < nt; t++)
            out[stride * (size_t)t + (size_t)(i + r)] = gemm_fold(acc[r][t]);
}

/* f32_tile for nr rows (GEMM_R or 1) and nt <= GEMM_T tokens, each shape
 * unrolled for its constants. */
GEMM_AVX512 static void f32_tile_n(const kern_mat *w, const kern_act *x,
                                   int nr, int nt, float *out, size_t stride,
                                   int i, const char **pf, const char *pf_end) {
#define GEMM_CASE(NT)                                                         \
    case NT:                                                                  \
        if (nr == GEMM_R)                                                     \
            f32_tile(w, x, GEMM_R, NT, out, stride, i, pf, pf_end);           \
        else                                                                  \
            f32_tile(w, x, 1, NT, out, stride, i, pf, pf_end);                \
        break;
    assert(nr == GEMM_R || nr == 1);
    switch (nt) {
        GEMM_CASE(1)
        GEMM_CASE(2)
        GEMM_CASE(3)
        GEMM_CASE(4)
        GEMM_CASE(5)
        GEMM_CASE(6)
    default: assert(!"tile wider than GEMM_T");
    }
#undef GEMM_CASE
}
_Static_assert(GEMM_T == 6, "f32_tile_n has a case per width");

/* Slices of GEMM_SLICE rows, and in each slice token groups of GEMM_T
 * (the slice stays in cache while every group passes) times tiles of
 * GEMM_R rows; the tails in smaller tiles of the same order. */
GEMM_AVX512 static void f32_rows(const kern_mat *w, const kern_act *x, int nx,
                                 float *out, size_t stride, int r0, int r1) {
    const float *q = w->q;
    const char *end = (const char *)(q + (size_t)r1 * (size_t)w->cols);

    for (int s = r0; s < r1; s += GEMM_SLICE) {
        int e = s + GEMM_SLICE < r1 ? s + GEMM_SLICE : r1;
        const char *pf = (const char *)(q + (size_t)e * (size_t)w->cols);
        for (int t = 0; t < nx; t += GEMM_T) {
            float *o = out + stride * (size_t)t;
            int i = s, nt = nx - t < GEMM_T ? nx - t : GEMM_T;
            for (; i + GEMM_R <= e; i += GEMM_R)
                f32_tile_n(w, x + t, GEMM_R, nt, o, stride, i, &pf, end);
            for (; i < e; i++)
                f32_tile_n(w, x + t, 1, nt, o, stride, i, &pf, end);
        }
    }
}
#endif

void gemm_rows(const kern_mat *w, const kern_act *x, int nx, const void *buf,
               float *out, size_t stride, int r0, int r1) {
    assert(gemm_handles(w) && nx >= 1 && nx <= GEMM_MAX_TOKENS);
#ifdef GEMM_X86
    if (w->type != KERN_F32) {
        amx_rows(w, buf, nx, out, stride, r0, r1);
        return;
    }
    f32_rows(w, x, nx, out, stride, r0, r1);
#else
    (void)x, (void)nx, (void)buf, (void)out, (void)stride, (void)r0, (void)r1;
#endif
}
