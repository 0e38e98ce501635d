/* gemm.c — the prompt's products: dispatch, and the F32 register-blocked
 * kernel.
 *
 * A prompt batch reuses each weight row for all its tokens, so the work is
 * compute-bound and the form that keeps the most multiply-adds in flight
 * per load wins: F32 runs tiles of 4 rows × 4 tokens (16 accumulators,
 * 8 loads per 16 FMAs), Q8_0 the AMX tiles of amx.c. */
#include "model/gemm.h"

#include "model/amx.h"

#include <assert.h>
#include <pthread.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define GEMM_X86 1
#include <immintrin.h>
#define GEMM_AVX512 __attribute__((target("avx2,fma,avx512f")))
#endif

#define GEMM_R 4 /* F32 tile: rows */
#define GEMM_T 4 /* F32 tile: tokens */

size_t gemm_buf_bytes(int cols) {
    return (amx_pack_bytes(cols) + 63) & ~(size_t)63;
}

int gemm_handles(const kern_mat *w) {
    int level = kern_get_level();
    if (w->type == KERN_Q8_0)
        return level >= KERN_AMX_LEVEL && w->rows >= 16;
    return w->type == KERN_F32 && level >= KERN_AVX512_LEVEL;
}

void gemm_prepare(const kern_act *x, int nx, int code, void *buf) {
    if (code == KERN_ACT_Q8_0 && kern_get_level() >= KERN_AMX_LEVEL)
        amx_pack_q8_0(x, nx, buf);
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

/* Rows i..i+nr-1 (nr <= GEMM_R) times tokens x[0..nt) (nt <= GEMM_T). The
 * loops run to the full tile; the compiler drops what nr and nt exclude
 * when they are the constants GEMM_R and GEMM_T. */
GEMM_AVX512 static inline void f32_tile(const kern_mat *w, const kern_act *x,
                                        int nr, int nt, float *out,
                                        size_t stride, int i) {
    const float *wr[GEMM_R], *xt[GEMM_T];
    __m512 acc[GEMM_R][GEMM_T];
    int n = w->cols, k = 0;
    __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);

    for (int r = 0; r < nr; r++)
        wr[r] = (const float *)w->q + (size_t)n * (size_t)(i + r);
    for (int t = 0; t < nt; t++)
        xt[t] = x[t].f;
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (; k + 16 <= n; k += 16) {
        __m512 vw[GEMM_R];
        for (int r = 0; r < nr; r++)
            vw[r] = _mm512_loadu_ps(wr[r] + k);
        for (int t = 0; t < nt; t++) {
            __m512 vx = _mm512_loadu_ps(xt[t] + k);
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_fmadd_ps(vw[r], vx, acc[r][t]);
        }
    }
    if (tail) {
        __m512 vw[GEMM_R];
        for (int r = 0; r < nr; r++)
            vw[r] = _mm512_maskz_loadu_ps(tail, wr[r] + k);
        for (int t = 0; t < nt; t++) {
            __m512 vx = _mm512_maskz_loadu_ps(tail, xt[t] + k);
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_mask3_fmadd_ps(vw[r], vx, acc[r][t], tail);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            out[stride * (size_t)t + (size_t)(i + r)] = gemm_fold(acc[r][t]);
}

/* Slices of 16 rows, and in each slice token groups of GEMM_T (the
 * slice stays in cache while every group passes) times tiles of GEMM_R
 * rows; the tails in smaller tiles of the same order. */
GEMM_AVX512 static void f32_rows(const kern_mat *w, const kern_act *x, int nx,
                                 float *out, size_t stride, int r0, int r1) {
    for (int s = r0; s < r1; s += 16) {
        int e = s + 16 < r1 ? s + 16 : r1;
        for (int t = 0; t < nx; t += GEMM_T) {
            float *o = out + stride * (size_t)t;
            int i = s;
            if (nx - t >= GEMM_T) {
                for (; i + GEMM_R <= e; i += GEMM_R)
                    f32_tile(w, x + t, GEMM_R, GEMM_T, o, stride, i);
                for (; i < e; i++)
                    f32_tile(w, x + t, 1, GEMM_T, o, stride, i);
            } else {
                for (; i < e; i++)
                    f32_tile(w, x + t, 1, nx - t, o, stride, i);
            }
        }
    }
}
#endif

void gemm_rows(const kern_mat *w, const kern_act *x, int nx, const void *buf,
               float *out, size_t stride, int r0, int r1) {
    assert(gemm_handles(w) && nx >= 1 && nx <= KERN_MAX_ACTS);
#ifdef GEMM_X86
    if (w->type == KERN_Q8_0) {
        amx_q8_0_rows(w, buf, nx, out, stride, r0, r1);
        return;
    }
    f32_rows(w, x, nx, out, stride, r0, r1);
#else
    (void)x, (void)nx, (void)buf, (void)out, (void)stride, (void)r0, (void)r1;
#endif
}
