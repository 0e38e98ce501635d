/* gemm.c — the prompt's products: dispatch, and the F32 register-blocked
 * kernel.
 *
 * A prompt batch reuses each weight row for all its tokens, so the work is
 * compute-bound and the form that keeps the most multiply-adds in flight
 * per load wins: F32 runs tiles of 6 rows × 64 tokens (24 accumulators of
 * 16 tokens; 4 loads of packed tokens and 6 broadcast weights per 24
 * FMAs, no horizontal sums, each weight row read once per product), the
 * block types the AMX tiles of amx.c, and without AMX, Q8_0 runs amx.h's
 * order with AVX-512 VNNI on kern_repack's copy. */
#include "model/gemm.h"

#include "model/amx.h"

#include "model/quant.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define GEMM_X86 1
#include <immintrin.h>
#define GEMM_AVX512 __attribute__((target("avx2,fma,avx512f")))
#define GEMM_VNNI                                                             \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,"          \
                          "avx512vnni")))
#endif

/* -O2 leaves a tile's loops rolled and its accumulators on the stack. */
#define GEMM_UNROLL _Pragma("GCC unroll 6")
#define GEMM_UNROLL8 _Pragma("GCC unroll 8")
#define GEMM_INLINE inline __attribute__((always_inline))

#define GEMM_R 6 /* F32 tile: rows */
#define GEMM_QT 8 /* Q8_0 VNNI tile: tokens (8 int32 and 8 float sums) */
#define GEMM_QB (32 * AMX_TOKENS) /* amx_pack's bytes per block and group */
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

/* The Q8_0 form without AMX: the 16 rows of repacked run qs/sc (nb
 * blocks) times tokens m0..m0+GEMM_QT-1 of the amx_pack group at bq,
 * nx of them stored (to out, token t's row `stride` floats on). Register
 * j of a block holds values 4j..4j+3 of the 16 rows offset by 128, so a
 * `vpdpbusd` with a token's four values broadcast adds them to its 16
 * rows' block sums, started at −128 × the token's block sum: the exact
 * int32 isum of amx.h, then one fma per block with d_w·d_a, as there. */
GEMM_VNNI static void q8_vnni_tile(const uint8_t *qs, const uint16_t *sc,
                                   int nb, const int8_t *bq, int m0, int nx,
                                   float *out, size_t stride) {
    const float *da = (const float *)(const void *)(bq + (size_t)nb * GEMM_QB);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc[GEMM_QT];

    GEMM_UNROLL8
    for (int m = 0; m < GEMM_QT; m++)
        acc[m] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const int8_t *xb = bq + (size_t)b * GEMM_QB;
        const uint8_t *wb = qs + (size_t)b * GEMM_QB;
        __m512i qsum = _mm512_setzero_si512(), isum[GEMM_QT];
        __m512 dw = _mm512_cvtph_ps(
            _mm256_loadu_si256((const __m256i *)(const void *)(sc + 16 * b)));

        /* lane m: token m's block sum, times −128 */
        GEMM_UNROLL8
        for (int j = 0; j < 8; j++)
            qsum = _mm512_dpbusd_epi32(
                qsum, ones, _mm512_loadu_si512((const void *)(xb + 64 * j)));
        qsum = _mm512_sub_epi32(_mm512_setzero_si512(),
                                _mm512_slli_epi32(qsum, 7));
        GEMM_UNROLL8
        for (int m = 0; m < GEMM_QT; m++)
            isum[m] = _mm512_permutexvar_epi32(_mm512_set1_epi32(m0 + m), qsum);
        GEMM_UNROLL8
        for (int j = 0; j < 8; j++) {
            __m512i wv = _mm512_load_si512((const void *)(wb + 64 * j));
            GEMM_UNROLL8
            for (int m = 0; m < GEMM_QT; m++) {
                int32_t xj;
                memcpy(&xj, xb + 64 * j + 4 * (m0 + m), sizeof xj);
                isum[m] =
                    _mm512_dpbusd_epi32(isum[m], wv, _mm512_set1_epi32(xj));
            }
        }
        GEMM_UNROLL8
        for (int m = 0; m < GEMM_QT; m++)
            acc[m] = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(isum[m]),
                _mm512_mul_ps(dw, _mm512_set1_ps(da[b * AMX_TOKENS + m0 + m])),
                acc[m]);
    }
    for (int m = 0; m < GEMM_QT && m < nx; m++)
        _mm512_storeu_ps(out + stride * (size_t)m, acc[m]);
}

/* Row i of Q8_0 matrix w (read from the file) times tokens t < nx of the
 * amx_pack buffer, in amx.h's order: the rows outside whole repacked runs. */
static void q8_vnni_row(const kern_mat *w, int i, const int8_t *buf, int nx,
                        float *out, size_t stride) {
    int nb = w->cols / 32;
    size_t gb = amx_pack_bytes(w->cols, AMX_TOKENS);
    const uint8_t *row = (const uint8_t *)w->q + (size_t)i * (size_t)nb * 34;

    for (int t = 0; t < nx; t++) {
        const int8_t *bq = buf + gb * (size_t)(t / AMX_TOKENS);
        const float *da = (const float *)(const void *)(bq + (size_t)nb * GEMM_QB);
        int m = t % AMX_TOKENS;
        float acc = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8_t q[32];
            float a[2], off;
            int32_t isum = 0;
            quant_unpack32(KERN_Q8_0, row, b, q, a, &off);
            for (int k = 0; k < 32; k++)
                isum += q[k] * bq[(size_t)b * GEMM_QB + 64 * (k / 4) + 4 * m + k % 4];
            acc = fmaf((float)isum, a[0] * da[b * AMX_TOKENS + m], acc);
        }
        out[stride * (size_t)t + (size_t)i] = acc;
    }
}

/* Rows r0..r1 of a repacked Q8_0 matrix: the whole runs by tiles of
 * GEMM_QT tokens (a run's bytes stay in cache from one tile to the next),
 * the rest row by row. */
static void q8_vnni_rows(const kern_mat *w, const int8_t *buf, int nx,
                         float *out, size_t stride, int r0, int r1) {
    const int R = KERN_RP_ROWS;
    int nb = w->cols / 32, full = w->rows / R * R;
    int a0 = (r0 + R - 1) / R * R, b0 = (r1 < full ? r1 : full) / R * R;
    size_t gb = amx_pack_bytes(w->cols, AMX_TOKENS);

    if (b0 < a0) /* no whole run: every row by itself */
        b0 = a0 = r1;
    for (int i = r0; i < a0; i++)
        q8_vnni_row(w, i, buf, nx, out, stride);
    for (int a = a0; a < b0; a += R) {
        const uint16_t *sc;
        const uint8_t *qs = kern_rp_run(w, a / R, &sc);
        for (int t = 0; t < nx; t += GEMM_QT)
            q8_vnni_tile(qs, sc, nb, buf + gb * (size_t)(t / AMX_TOKENS),
                         t % AMX_TOKENS, nx - t, out + stride * (size_t)t + a,
                         stride);
    }
    for (int i = b0; i < r1; i++)
        q8_vnni_row(w, i, buf, nx, out, stride);
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

/* Whether Q8_0 products of nx tokens at this level read amx_pack's tokens
 * by VNNI (AVX-512 but not AMX): when gemm_prepare packs them so. */
static int gemm_q8_vnni_packed(int level, int nx) {
    return level == KERN_AVX512_LEVEL && nx >= GEMM_Q8_MIN_TOKENS;
}

/* Whether a Q8_0 product of nx tokens takes the VNNI form: the level's
 * packing, and a repacked copy to read. */
static int gemm_q8_vnni(const kern_mat *w, int level, int nx) {
    return w->type == KERN_Q8_0 && w->rp && gemm_q8_vnni_packed(level, nx);
}

int gemm_handles(const kern_mat *w, int nx) {
    int level = kern_get_level();
    if (gemm_q8_vnni(w, level, nx))
        return 1;
    if (amx_type(w->type))
        return level >= KERN_AMX_LEVEL && w->rows >= 16;
    return w->type == KERN_F32 && gemm_f32_packed(level, nx);
}

void gemm_prepare(const kern_act *x, int nx, int t0, int t1, int code,
                  void *buf) {
    int level = kern_get_level();
    if (((code == KERN_ACT_Q8_0 || code == KERN_ACT_Q8_K) &&
         level >= KERN_AMX_LEVEL) ||
        (code == KERN_ACT_Q8_0 && gemm_q8_vnni_packed(level, nx)))
        amx_pack(x, nx, t0, t1, buf); /* also the VNNI form's layout */
#ifdef GEMM_X86
    if (!code && gemm_f32_packed(level, nx))
        f32_pack(x, nx, t0, t1, buf);
#endif
}

void gemm_rows(const kern_mat *w, int nx, const void *buf, float *out,
               size_t stride, int r0, int r1) {
    assert(gemm_handles(w, nx) && nx >= 1 && nx <= GEMM_MAX_TOKENS);
#ifdef GEMM_X86
    if (gemm_q8_vnni(w, kern_get_level(), nx)) {
        q8_vnni_rows(w, buf, nx, out, stride, r0, r1);
        return;
    }
    if (w->type != KERN_F32) {
        amx_rows(w, buf, nx, out, stride, r0, r1);
        return;
    }
    f32_rows(w, buf, nx, out, stride, r0, r1);
#else
    (void)nx, (void)buf, (void)out, (void)stride, (void)r0, (void)r1;
#endif
}
