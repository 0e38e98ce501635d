/* gemm.c — the prompt's products: dispatch, and the F32 register-blocked
 * kernel.
 *
 * A prompt batch reuses each weight row for all its tokens, so the work is
 * compute-bound and the form that keeps the most multiply-adds in flight
 * per load wins: F32 runs tiles of 6 rows × 64 tokens (24 accumulators of
 * 16 tokens; 4 loads of packed tokens and 6 broadcast weights per 24
 * FMAs, no horizontal sums, each weight row read once per product), the
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

#define GEMM_R 6 /* F32 tile: rows */
#define GEMM_V 4 /* F32 tile: vectors of 16 tokens */

_Static_assert(GEMM_MAX_TOKENS <= AMX_MAX_TOKENS, "AMX takes every batch");

#ifdef GEMM_X86
/* Rows i..i+nr-1 (nr <= GEMM_R) times the packed tokens (gemm_prepare:
 * value k of token t at xt[k * np + t]), nv <= GEMM_V vectors of 16
 * tokens, nx of them real, unrolled for the constants the callers pass:
 * each weight is broadcast against nv vectors of tokens, so every
 * product is one fma chain in the order of k. Every 16 values it also
 * prefetches the lines of the next tile's rows (pf, npf of them; the
 * hardware prefetcher follows the tokens' one stream, not 6 + 6 rows). */
GEMM_AVX512 static GEMM_INLINE void f32_tile(const float *w, int n,
                                             const float *xt, int np, int nr,
                                             int nv, int nx, float *out,
                                             size_t stride, const float *pf,
                                             int npf) {
    __m512 acc[GEMM_R][GEMM_V];

    GEMM_UNROLL
    for (int r = 0; r < GEMM_R; r++)
        GEMM_UNROLL
        for (int v = 0; v < GEMM_V; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int k0 = 0; k0 < n; k0 += 16) {
        int k1 = k0 + 16 < n ? k0 + 16 : n;
        for (int r = 0; r < npf; r++)
            _mm_prefetch((const char *)(pf + (size_t)n * (size_t)r + k0),
                         _MM_HINT_T0);
        for (int k = k0; k < k1; k++) {
            const float *xk = xt + (size_t)np * (size_t)k;
            __m512 vx[GEMM_V];
            GEMM_UNROLL
            for (int v = 0; v < nv; v++)
                vx[v] = _mm512_load_ps(xk + 16 * v);
            GEMM_UNROLL
            for (int r = 0; r < nr; r++) {
                __m512 b = _mm512_set1_ps(w[(size_t)n * (size_t)r + k]);
                GEMM_UNROLL
                for (int v = 0; v < nv; v++)
                    acc[r][v] = _mm512_fmadd_ps(b, vx[v], acc[r][v]);
            }
        }
    }
    /* Token t's output row is `stride` floats from token t - 1's. */
    {
        __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                              14, 15),
            _mm512_set1_epi32((int)stride));
        GEMM_UNROLL
        for (int v = 0; v < nv; v++) {
            int left = nx - 16 * v;
            __mmask16 m = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
            GEMM_UNROLL
            for (int r = 0; r < nr; r++)
                _mm512_mask_i32scatter_ps(out + stride * (size_t)(16 * v) +
                                              (size_t)r,
                                          m, idx, acc[r][v], 4);
        }
    }
}

/* f32_tile for nr rows (GEMM_R or 1) and nv <= GEMM_V vectors of tokens,
 * each shape unrolled for its constants. */
GEMM_AVX512 static void f32_tile_n(const float *w, int n, const float *xt,
                                   int nr, int nx, float *out, size_t stride,
                                   const float *pf, int npf) {
    int nv = (nx + 15) / 16;
#define GEMM_CASE(NV)                                                         \
    case NV:                                                                  \
        if (nr == GEMM_R)                                                     \
            f32_tile(w, n, xt, 16 * NV, GEMM_R, NV, nx, out, stride, pf,      \
                     npf);                                                    \
        else                                                                  \
            f32_tile(w, n, xt, 16 * NV, 1, NV, nx, out, stride, pf, npf);     \
        break;
    assert(nr == GEMM_R || nr == 1);
    switch (nv) {
        GEMM_CASE(1)
        GEMM_CASE(2)
        GEMM_CASE(3)
        GEMM_CASE(4)
    default: assert(!"more tokens than GEMM_V vectors");
    }
#undef GEMM_CASE
}
_Static_assert(GEMM_V == 4 && GEMM_MAX_TOKENS == 16 * GEMM_V,
               "f32_tile_n has a case per width");

/* Tiles of GEMM_R rows times every token (each weight row is read once
 * per product), then the tail rows one at a time. */
GEMM_AVX512 static void f32_rows(const kern_mat *w, const float *xt, int nx,
                                 float *out, size_t stride, int r0, int r1) {
    const float *q = w->q;
    size_t n = (size_t)w->cols;
    int i = r0;

    for (; i + GEMM_R <= r1; i += GEMM_R) {
        int next = r1 - (i + GEMM_R);
        f32_tile_n(q + n * (size_t)i, w->cols, xt, GEMM_R, nx, out + i, stride,
                   q + n * (size_t)(i + GEMM_R), next < GEMM_R ? next : GEMM_R);
    }
    for (; i < r1; i++)
        f32_tile_n(q + n * (size_t)i, w->cols, xt, 1, nx, out + i, stride,
                   q + n * (size_t)(i + 1), i + 1 < r1);
}

/* Token t's values into column t of the packed tokens, padded to whole
 * vectors of 16; the range that ends the batch zeroes the padding. */
static void f32_pack(const kern_act *x, int nx, int t0, int t1, float *xt) {
    int np = (nx + 15) / 16 * 16, n = x[0].n;

    for (int t = t0; t < t1; t++)
        for (int k = 0; k < n; k++)
            xt[(size_t)np * (size_t)k + (size_t)t] = x[t].f[k];
    if (t1 == nx)
        for (int k = 0; k < n; k++)
            for (int t = nx; t < np; t++)
                xt[(size_t)np * (size_t)k + (size_t)t] = 0.0f;
}
#endif

/* Bytes of the packed F32 tokens: nx rounded up to vectors of 16. */
static size_t f32_pack_bytes(int cols, int nx) {
    return (size_t)cols * (size_t)((nx + 15) / 16 * 16) * sizeof(float);
}

size_t gemm_buf_bytes(int cols, int nx) {
    size_t a = amx_pack_bytes(cols, nx), f = f32_pack_bytes(cols, nx);
    return a > f ? a : f;
}

/* Whether F32 products of nx tokens take the packed form at this level:
 * gemm_handles's answer for an F32 matrix, and when gemm_prepare packs. */
static int gemm_f32_packed(int level, int nx) {
    return level >= KERN_AVX512_LEVEL && nx >= GEMM_F32_MIN_TOKENS;
}

int gemm_handles(const kern_mat *w, int nx) {
    int level = kern_get_level();
    if (amx_type(w->type))
        return level >= KERN_AMX_LEVEL && w->rows >= 16;
    return w->type == KERN_F32 && gemm_f32_packed(level, nx);
}

void gemm_prepare(const kern_act *x, int nx, int t0, int t1, int code,
                  void *buf) {
    int level = kern_get_level();
    if ((code == KERN_ACT_Q8_0 || code == KERN_ACT_Q8_K) &&
        level >= KERN_AMX_LEVEL)
        amx_pack(x, nx, t0, t1, buf);
#ifdef GEMM_X86
    if (!code && gemm_f32_packed(level, nx))
        f32_pack(x, nx, t0, t1, buf);
#endif
}

void gemm_rows(const kern_mat *w, int nx, const void *buf, float *out,
               size_t stride, int r0, int r1) {
    assert(gemm_handles(w, nx) && nx >= 1 && nx <= GEMM_MAX_TOKENS);
#ifdef GEMM_X86
    if (w->type != KERN_F32) {
        amx_rows(w, buf, nx, out, stride, r0, r1);
        return;
    }
    f32_rows(w, buf, nx, out, stride, r0, r1);
#else
    (void)nx, (void)buf, (void)out, (void)stride, (void)r0, (void)r1;
#endif
}
