/* amx.c — Q8_0 products of a prompt's batch on AMX tiles.
 *
 * The weights are TDPBSSD's A operand straight from the file: 16
 * consecutive rows' 32 int8 values of one block are 16 rows of 32 bytes,
 * one tile load at the row stride, so they need no repacking and no extra
 * memory. The tokens' int8 blocks, quantized once per product, are packed
 * as the B operand (amx_pack_q8_0). One instruction then sums 16 rows ×
 * 16 tokens × 32 values in int32, and AVX-512 scales the 256 sums in
 * float. Compiled with target attributes so the rest of the build keeps
 * its flags; used only after amx_detect(). */
#include "model/amx.h"

#include <assert.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define AMX_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define AMX_TARGET                                                            \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,"          \
                          "amx-tile,amx-int8")))
#endif

#define AMX_BLOCK 32       /* Q8_0 values per block */
#define AMX_WBYTES 34      /* a Q8_0 block: half scale, 32 int8 */
#define AMX_BQ (AMX_BLOCK * AMX_TOKENS) /* packed bytes per block */

/* Bytes of one group of AMX_TOKENS packed activations. */
static size_t amx_group_bytes(int cols) {
    size_t nb = ((size_t)cols + AMX_BLOCK - 1) / AMX_BLOCK; /* never 0 */
    return nb * AMX_BQ + nb * AMX_TOKENS * sizeof(float);
}

size_t amx_pack_bytes(int cols, int nx) {
    return amx_group_bytes(cols) * (size_t)((nx + AMX_TOKENS - 1) / AMX_TOKENS);
}

void amx_pack_q8_0(const kern_act *x, int nx, void *buf) {
    int nb = x[0].n / AMX_BLOCK;

    assert(nx >= 1 && nx <= AMX_MAX_TOKENS && x[0].gs == KERN_ACT_Q8_0);
    memset(buf, 0, amx_pack_bytes(x[0].n, nx));
    for (int t = 0; t < nx; t++) {
        int m = t % AMX_TOKENS;
        int8_t *q = (int8_t *)buf + amx_group_bytes(x[0].n) *
                                        (size_t)(t / AMX_TOKENS);
        float *d = (float *)(q + (size_t)nb * AMX_BQ);
        for (int b = 0; b < nb; b++) {
            const int8_t *src = x[t].q + (size_t)b * AMX_BLOCK;
            int8_t *dst = q + (size_t)b * AMX_BQ + 4 * m;
            for (int k = 0; k < AMX_BLOCK / 4; k++)
                memcpy(dst + 64 * k, src + 4 * k, 4);
            d[(size_t)b * AMX_TOKENS + m] = x[t].s[b];
        }
    }
}

#ifdef AMX_X86
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* CPUID.(7,0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8); XCR0 bits 17 and
 * 18 (tile configuration and data) set by the OS; then Linux must grant
 * the tile data state to the process, or the first tile instruction
 * faults. */
int amx_detect(void) {
    unsigned a, b, c, d, xlo, xhi;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) ||
        !(d & (1u << 25)))
        return 0;
    __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & (3u << 17)) != (3u << 17))
        return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) ==
           0;
}

/* -O2 leaves the loops over a tile's 16 rows rolled, and the
 * accumulators then live on the stack. */
#define AMX_UNROLL _Pragma("GCC unroll 16")
#define AMX_INLINE inline __attribute__((always_inline))

/* gcc's tile intrinsics are asm statements that do not tell the compiler
 * they touch memory; this orders the float code's reads after a store. */
#define AMX_BARRIER() __asm__ volatile("" ::: "memory")

/* Tiles 0 and 3: sums (16 rows × 16 int32); 1 and 4: weights (16 rows ×
 * 32 bytes); 2 and 5: tokens (8 rows × 64 bytes). Two blocks in flight. */
typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

AMX_TARGET static void amx_config(void) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 6; t += 3) {
        cfg.colsb[t] = 64, cfg.rows[t] = 16;
        cfg.colsb[t + 1] = 32, cfg.rows[t + 1] = 16;
        cfg.colsb[t + 2] = 64, cfg.rows[t + 2] = 8;
    }
    _tile_loadconfig(&cfg);
}

/* acc[n] (lanes: tokens) += each token's sums of block b with row n, times
 * both scales: d_w from the rows' block headers, gathered. */
AMX_TARGET static AMX_INLINE void amx_scale(__m512 *acc, const int32_t *sums,
                                        const uint8_t *blk, __m512i idx,
                                        const float *da) {
    float dw[16];
    __m512i h = _mm512_i32gather_epi32(idx, blk, 1);
    __m512 vda = _mm512_loadu_ps(da);
    _mm512_storeu_ps(dw, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
    AMX_UNROLL
    for (int n = 0; n < 16; n++)
        acc[n] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * n)),
            _mm512_mul_ps(_mm512_set1_ps(dw[n]), vda), acc[n]);
}

/* Where the next tile's weights are being prefetched: the 16 rows of a
 * tile are one run of 16 * rb bytes, read as 16 interleaved streams that
 * the hardware prefetcher does not follow, so the run after it (up to
 * end) is prefetched in even steps while the tile is multiplied with
 * every group of tokens. */
typedef struct amx_pf {
    const uint8_t *at, *end;
    size_t step; /* lines per block pair */
} amx_pf;

/* The 16 rows from w0 (row stride rb bytes, nb blocks) times the packed
 * tokens, into res[n][m]. */
AMX_TARGET static void amx_tile16(const uint8_t *w0, size_t rb, int nb,
                                  const int8_t *pq, const float *pd,
                                  amx_pf *pf, float res[16][16]) {
    _Alignas(64) int32_t s0[256], s1[256];
    __m512 acc[16];
    __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                          15),
        _mm512_set1_epi32((int)rb));
    int b = 0;

    AMX_UNROLL
    for (int n = 0; n < 16; n++)
        acc[n] = _mm512_setzero_ps();
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p = w0 + (size_t)b * AMX_WBYTES;
        for (size_t i = 0; i < pf->step && pf->at < pf->end; i++, pf->at += 64)
            _mm_prefetch((const char *)pf->at, _MM_HINT_T0);
        _tile_zero(0);
        _tile_zero(3);
        _tile_loadd(1, p + 2, rb);
        _tile_loadd(2, pq + (size_t)b * AMX_BQ, 64);
        _tile_loadd(4, p + AMX_WBYTES + 2, rb);
        _tile_loadd(5, pq + (size_t)(b + 1) * AMX_BQ, 64);
        _tile_dpbssd(0, 1, 2);
        _tile_dpbssd(3, 4, 5);
        _tile_stored(0, s0, 64);
        _tile_stored(3, s1, 64);
        AMX_BARRIER();
        amx_scale(acc, s0, p, idx, pd + (size_t)b * AMX_TOKENS);
        amx_scale(acc, s1, p + AMX_WBYTES, idx,
                  pd + (size_t)(b + 1) * AMX_TOKENS);
    }
    if (b < nb) {
        const uint8_t *p = w0 + (size_t)b * AMX_WBYTES;
        _tile_zero(0);
        _tile_loadd(1, p + 2, rb);
        _tile_loadd(2, pq + (size_t)b * AMX_BQ, 64);
        _tile_dpbssd(0, 1, 2);
        _tile_stored(0, s0, 64);
        AMX_BARRIER();
        amx_scale(acc, s0, p, idx, pd + (size_t)b * AMX_TOKENS);
    }
    AMX_UNROLL
    for (int n = 0; n < 16; n++)
        _mm512_store_ps(res[n], acc[n]);
}

/* out[m * stride + n] = res[n][m] for m < nx and n0 <= n < n1: the
 * tile's columns, gathered, as rows of the output. */
AMX_TARGET static void amx_store(float res[16][16], int nx, float *out,
                                 size_t stride, int n0, int n1) {
    __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                          15),
        _mm512_set1_epi32(16));
    __mmask16 keep = (__mmask16)(((1u << n1) - 1) & ~((1u << n0) - 1));
    for (int m = 0; m < nx; m++)
        _mm512_mask_storeu_ps(out + stride * (size_t)m, keep,
                              _mm512_i32gather_ps(idx, &res[0][m], 4));
}

/* Tiles of 16 rows from r0, each times every group of tokens while its
 * rows are in cache (the first group prefetches the next tile's); a tile
 * that would run past the matrix starts 16 rows before its end instead
 * (each row's sums are the same in any tile), and only rows in [r0, r1)
 * are written. */
AMX_TARGET void amx_q8_0_rows(const kern_mat *w, const void *buf, int nx,
                              float *out, size_t stride, int r0, int r1) {
    int nb = w->cols / AMX_BLOCK;
    size_t rb = (size_t)nb * AMX_WBYTES, gb = amx_group_bytes(w->cols);
    const uint8_t *q = w->q;
    /* Block pairs over all groups of tokens: the prefetch's steps. */
    size_t passes = (size_t)(nb > 1 ? nb / 2 : 1) * (size_t)((nx + 15) / 16);
    amx_pf pf = {NULL, q + rb * (size_t)(r1 + 15 < w->rows ? r1 + 15 : w->rows),
                 (16 * rb / 64 + passes - 1) / passes};
    _Alignas(64) float res[16][16];

    assert(w->type == KERN_Q8_0 && w->rows >= 16 && nx <= AMX_MAX_TOKENS);
    amx_config();
    for (int r = r0; r < r1; r += 16) {
        int base = r + 16 <= w->rows ? r : w->rows - 16;
        pf.at = q + rb * (size_t)(base + 16);
        for (int t = 0; t < nx; t += AMX_TOKENS) {
            const int8_t *pq =
                (const int8_t *)buf + gb * (size_t)(t / AMX_TOKENS);
            amx_tile16(q + rb * (size_t)base, rb, nb, pq,
                       (const float *)(pq + (size_t)nb * AMX_BQ), &pf, res);
            amx_store(res, nx - t < 16 ? nx - t : 16,
                      out + stride * (size_t)t + base, stride, r - base,
                      (r1 < base + 16 ? r1 : base + 16) - base);
        }
    }
    _tile_release();
}
#else
int amx_detect(void) { return 0; }

void amx_q8_0_rows(const kern_mat *w, const void *buf, int nx, float *out,
                   size_t stride, int r0, int r1) {
    (void)w, (void)buf, (void)nx, (void)out, (void)stride, (void)r0, (void)r1;
    assert(!"amx_q8_0_rows without AMX");
}
#endif
