/* amx.c — a prompt's block-quantized products on AMX tiles.
 *
 * Q8_0 weights are TDPBSSD's A operand straight from the file: 16
 * consecutive rows' 32 int8 values of one block are 16 rows of 32 bytes,
 * one tile load at the row stride, so they need no copy. Q4_K's nibbles
 * are unpacked per tile of 16 rows into int8 groups with their scales
 * (quant_unpack32's values), a chunk of groups at a time, once for all
 * the tokens: 16 KiB on the stack, no copy of the matrix. The
 * tokens' int8 blocks, quantized once per product, are packed as the B
 * operand (amx_pack). One instruction then sums 16 rows × 16 tokens × 32
 * values in int32, and AVX-512 scales the 256 sums in float. Compiled
 * with target attributes so the rest of the build keeps its flags; used
 * only after amx_detect(). */
#include "model/amx.h"

#include "model/quant.h"

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

#define AMX_BLOCK 32       /* values per group */
#define AMX_WBYTES 34      /* a Q8_0 block: half scale, 32 int8 */
#define AMX_BQ (AMX_BLOCK * AMX_TOKENS) /* packed bytes per block */
#define AMX_CHUNK 32 /* groups unpacked at a time (16 KiB of int8) */

int amx_type(int type) { return type == KERN_Q8_0 || type == KERN_Q4_K; }

/* Bytes of one group of AMX_TOKENS packed activations. */
static size_t amx_group_bytes(int cols) {
    size_t nb = ((size_t)cols + AMX_BLOCK - 1) / AMX_BLOCK; /* never 0 */
    return nb * AMX_BQ + 2 * nb * AMX_TOKENS * sizeof(float);
}

size_t amx_pack_bytes(int cols, int nx) {
    return amx_group_bytes(cols) * (size_t)((nx + AMX_TOKENS - 1) / AMX_TOKENS);
}

void amx_pack(const kern_act *x, int nx, int t0, int t1, void *buf) {
    /* The range that ends the batch also zeroes its last tile's unused
     * columns. Rows of other ranges may still be being quantized, so only
     * this range's are read. */
    int nb, end = t1 < nx ? t1 : (nx + AMX_TOKENS - 1) / AMX_TOKENS * AMX_TOKENS;

    assert(nx >= 1 && nx <= AMX_MAX_TOKENS && 0 <= t0 && t0 <= t1 &&
           t1 <= nx);
    if (t0 == t1)
        return;
    assert(x[t0].gs == KERN_ACT_Q8_0 || x[t0].gs == KERN_ACT_Q8_K);
    nb = x[t0].n / AMX_BLOCK;
    for (int t = t0; t < end; t++) {
        int m = t % AMX_TOKENS;
        int8_t *q = (int8_t *)buf + amx_group_bytes(x[t0].n) *
                                        (size_t)(t / AMX_TOKENS);
        float *d = (float *)(q + (size_t)nb * AMX_BQ), *ds = d + nb * 16;
        for (int b = 0; b < nb; b++) {
            int8_t *dst = q + (size_t)b * AMX_BQ + 4 * m;
            int32_t qsum = 0;
            if (t >= nx) {
                for (int k = 0; k < AMX_BLOCK / 4; k++)
                    memset(dst + 64 * k, 0, 4);
                d[(size_t)b * AMX_TOKENS + m] = 0.0f;
                ds[(size_t)b * AMX_TOKENS + m] = 0.0f;
                continue;
            }
            const int8_t *src = x[t].q + (size_t)b * AMX_BLOCK;
            for (int k = 0; k < AMX_BLOCK / 4; k++)
                memcpy(dst + 64 * k, src + 4 * k, 4);
            for (int k = 0; k < AMX_BLOCK; k++)
                qsum += src[k];
            d[(size_t)b * AMX_TOKENS + m] = x[t].s[b];
            ds[(size_t)b * AMX_TOKENS + m] = x[t].s[b] * (float)qsum;
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

/* Tiles 0-3: sums (16 rows × 16 int32), two pairs of groups; 4 and 5:
 * weights (16 rows × 32 bytes); 6 and 7: tokens (8 rows × 64 bytes). */
typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

AMX_TARGET static void amx_config(void) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 4; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = 16;
    for (int t = 4; t < 6; t++)
        cfg.colsb[t] = 32, cfg.rows[t] = 16;
    for (int t = 6; t < 8; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = 8;
    _tile_loadconfig(&cfg);
}

/* A chunk of weight groups for 16 rows, as the tile loads read them:
 * group g's int8 at q + g * gstride, row n's at + n * rstride; each row's
 * scale a[g][n] and offset b[g][n] (NULL: none), unpacked once for all
 * the groups of tokens. */
typedef struct amx_src {
    const uint8_t *q;
    size_t gstride, rstride;
    const float (*a)[16], (*b)[16];
} amx_src;

/* An unpacked chunk (amx_src's storage: Q4_K's values and scales, Q8_0's
 * scales). */
typedef struct amx_unpacked {
    _Alignas(64) int8_t q[AMX_CHUNK][16][AMX_BLOCK];
    float a[AMX_CHUNK][16], b[AMX_CHUNK][16];
} amx_unpacked;

/* Where the next tile's weights are being prefetched: the 16 rows of a
 * tile are one run of bytes, read as 16 interleaved streams that the
 * hardware prefetcher does not follow, so the run after it (up to end) is
 * prefetched in even steps while the tile is multiplied with every group
 * of tokens. */
typedef struct amx_pf {
    const uint8_t *at, *end;
    size_t step; /* lines per pair of groups */
} amx_pf;

/* acc[n] (lanes: tokens) += group g's sums for row n times both scales,
 * and the offset term: amx.h's order. */
AMX_TARGET static AMX_INLINE void amx_scale(__m512 *acc, const int32_t *sums,
                                            const amx_src *s, int g,
                                            const float *da,
                                            const float *dsum) {
    const float *a = s->a[g];
    __m512 vda = _mm512_loadu_ps(da), vds = _mm512_loadu_ps(dsum);
    AMX_UNROLL
    for (int n = 0; n < 16; n++)
        acc[n] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * n)),
            _mm512_mul_ps(_mm512_set1_ps(a[n]), vda), acc[n]);
    if (s->b) {
        AMX_UNROLL
        for (int n = 0; n < 16; n++)
            acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(s->b[g][n]), vds, acc[n]);
    }
}

/* Starts the products of groups g and g + 1 (of the chunk) into sum
 * tiles C0 and C1, and prefetches the next tile's next lines. Tile
 * numbers are part of the instructions, hence a macro. */
#define AMX_ISSUE(C0, C1, g)                                                  \
    do {                                                                      \
        size_t at_ = (size_t)(g0 + (g));                                      \
        for (size_t i_ = 0; i_ < pf->step && pf->at < pf->end;               \
             i_++, pf->at += 64)                                              \
            _mm_prefetch((const char *)pf->at, _MM_HINT_T0);                  \
        _tile_zero(C0);                                                       \
        _tile_zero(C1);                                                       \
        _tile_loadd(4, s->q + (size_t)(g) * s->gstride, s->rstride);          \
        _tile_loadd(6, pq + at_ * AMX_BQ, 64);                                \
        _tile_dpbssd(C0, 4, 6);                                               \
        _tile_loadd(5, s->q + (size_t)((g) + 1) * s->gstride, s->rstride);    \
        _tile_loadd(7, pq + (at_ + 1) * AMX_BQ, 64);                          \
        _tile_dpbssd(C1, 5, 7);                                               \
    } while (0)

/* Stores the sums of groups g and g + 1 from C0 and C1 into sums[0..1]
 * and scales them into acc. */
#define AMX_RETIRE(C0, C1, g, sums)                                           \
    do {                                                                      \
        size_t at_ = (size_t)(g0 + (g));                                      \
        AMX_BARRIER();                                                        \
        _tile_stored(C0, (sums)[0], 64);                                      \
        _tile_stored(C1, (sums)[1], 64);                                      \
        AMX_BARRIER();                                                        \
        amx_scale(acc, (sums)[0], s, (g), pd + at_ * AMX_TOKENS,              \
                  ps + at_ * AMX_TOKENS);                                     \
        amx_scale(acc, (sums)[1], s, (g) + 1, pd + (at_ + 1) * AMX_TOKENS,    \
                  ps + (at_ + 1) * AMX_TOKENS);                               \
    } while (0)

/* ng groups of s times one group of tokens (packed: pq, its d_a and
 * d_a * qsum from group g0 on), added to res[n][m] (g0 > 0) or into it
 * (g0 == 0). Pairs of groups are pipelined: the next pair's products run
 * in one pair of sum tiles while the float code scales the other's. */
AMX_TARGET static void amx_chunk(const amx_src *s, int ng, const int8_t *pq,
                                 const float *pd, const float *ps, int g0,
                                 amx_pf *pf, float res[16][16]) {
    _Alignas(64) int32_t sa[2][256], sb[2][256];
    __m512 acc[16];
    int np = ng / 2;

    AMX_UNROLL
    for (int n = 0; n < 16; n++)
        acc[n] = g0 ? _mm512_load_ps(res[n]) : _mm512_setzero_ps();
    if (np > 0)
        AMX_ISSUE(0, 1, 0);
    for (int p = 0; p < np; p += 2) {
        if (p + 1 < np)
            AMX_ISSUE(2, 3, 2 * (p + 1));
        AMX_RETIRE(0, 1, 2 * p, sa);
        if (p + 1 >= np)
            break;
        if (p + 2 < np)
            AMX_ISSUE(0, 1, 2 * (p + 2));
        AMX_RETIRE(2, 3, 2 * (p + 1), sb);
    }
    if (ng % 2) {
        size_t at = (size_t)(g0 + ng - 1);
        _tile_zero(0);
        _tile_loadd(4, s->q + (size_t)(ng - 1) * s->gstride, s->rstride);
        _tile_loadd(6, pq + at * AMX_BQ, 64);
        _tile_dpbssd(0, 4, 6);
        AMX_BARRIER();
        _tile_stored(0, sa[0], 64);
        AMX_BARRIER();
        amx_scale(acc, sa[0], s, ng - 1, pd + at * AMX_TOKENS,
                  ps + at * AMX_TOKENS);
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

/* Row n's Q4_K block at blk as groups g..g+7 of u: quant_unpack32's
 * values (the nibbles of 32 bytes are two groups, low then high), scales
 * d * sc and offsets -dmin * m. */
AMX_TARGET static void amx_unpack_q4k(const uint8_t *blk, int g, int n,
                                      amx_unpacked *u) {
    /* F16C: kern_f16_to_f32's values, without its software path */
    float d = _cvtsh_ss((unsigned short)(blk[0] | blk[1] << 8)),
          dmin = _cvtsh_ss((unsigned short)(blk[2] | blk[3] << 8));
    __m256i lo4 = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * j));
        _mm256_store_si256((__m256i *)u->q[g + 2 * j][n],
                           _mm256_and_si256(v, lo4));
        _mm256_store_si256((__m256i *)u->q[g + 2 * j + 1][n],
                           _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4));
    }
    for (int j = 0; j < 8; j++) {
        int sc, m;
        quant_k_scale_min(j, blk + 4, &sc, &m);
        u->a[g + j][n] = d * (float)sc;
        u->b[g + j][n] = -dmin * (float)m;
    }
}

/* Groups g0..g0+ng-1 of rows base..base+15 of w (rows rb bytes apart) as
 * an amx_src: Q8_0's values in place, their half scales (the 2 bytes
 * before each block's values) converted into u; Q4_K unpacked into u (g0
 * and ng whole blocks of 8 groups). */
AMX_TARGET static amx_src amx_source(const kern_mat *w, size_t rb, int base,
                                     int g0, int ng, amx_unpacked *u) {
    const uint8_t *q = (const uint8_t *)w->q + rb * (size_t)base;

    if (w->type == KERN_Q8_0) {
        const uint8_t *v = q + (size_t)g0 * AMX_WBYTES + 2;
        __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                              14, 15),
            _mm512_set1_epi32((int)rb));
        for (int g = 0; g < ng; g++) {
            __m512i h = _mm512_i32gather_epi32(
                idx, v + (size_t)g * AMX_WBYTES - 2, 1);
            _mm512_store_ps(u->a[g], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
        }
        return (amx_src){v, AMX_WBYTES, rb, (const float (*)[16])u->a, NULL};
    }
    assert(w->type == KERN_Q4_K && g0 % 8 == 0 && ng % 8 == 0);
    for (int n = 0; n < 16; n++)
        for (int g = 0; g < ng; g += 8)
            amx_unpack_q4k(q + rb * (size_t)n + (size_t)(g0 + g) / 8 * 144, g,
                           n, u);
    return (amx_src){(const uint8_t *)u->q, sizeof u->q[0], AMX_BLOCK,
                     (const float (*)[16])u->a, (const float (*)[16])u->b};
}

/* Tiles of 16 rows from r0, each times every group of tokens while its
 * rows are in cache; a tile that would run past the matrix starts 16 rows
 * before its end instead (each row's sums are the same in any tile), and
 * only rows in [r0, r1) are written. */
AMX_TARGET void amx_rows(const kern_mat *w, const void *buf, int nx,
                         float *out, size_t stride, int r0, int r1) {
    int nb = w->cols / AMX_BLOCK, elems, bytes, ntg = (nx + 15) / 16;
    size_t rb, gb = amx_group_bytes(w->cols);
    const uint8_t *q = w->q;
    /* Pairs of groups over all groups of tokens: the prefetch's steps. */
    size_t passes = (size_t)(nb > 1 ? nb / 2 : 1) * (size_t)ntg;
    amx_pf pf;
    amx_unpacked u;
    _Alignas(64) float res[AMX_MAX_TOKENS / AMX_TOKENS][16][16];

    assert(amx_type(w->type) && w->rows >= 16 && nx <= AMX_MAX_TOKENS);
    quant_block(w->type, &elems, &bytes);
    rb = (size_t)(w->cols / elems) * (size_t)bytes;
    pf = (amx_pf){NULL,
                  q + rb * (size_t)(r1 + 15 < w->rows ? r1 + 15 : w->rows),
                  (16 * rb / 64 + passes - 1) / passes};
    amx_config();
    for (int r = r0; r < r1; r += 16) {
        int base = r + 16 <= w->rows ? r : w->rows - 16;
        pf.at = q + rb * (size_t)(base + 16);
        for (int g0 = 0; g0 < nb; g0 += AMX_CHUNK) {
            int ng = nb - g0 < AMX_CHUNK ? nb - g0 : AMX_CHUNK;
            amx_src s = amx_source(w, rb, base, g0, ng, &u);
            for (int t = 0; t < ntg; t++) {
                const int8_t *pq = (const int8_t *)buf + gb * (size_t)t;
                const float *pd = (const float *)(pq + (size_t)nb * AMX_BQ);
                amx_chunk(&s, ng, pq, pd, pd + (size_t)nb * AMX_TOKENS, g0,
                          &pf, res[t]);
            }
        }
        for (int t = 0; t < ntg; t++)
            amx_store(res[t], nx - 16 * t < 16 ? nx - 16 * t : 16,
                      out + stride * (size_t)(16 * t) + base, stride, r - base,
                      (r1 < base + 16 ? r1 : base + 16) - base);
    }
    _tile_release();
}
#else
int amx_detect(void) { return 0; }

void amx_rows(const kern_mat *w, const void *buf, int nx, float *out,
              size_t stride, int r0, int r1) {
    (void)w, (void)buf, (void)nx, (void)out, (void)stride, (void)r0, (void)r1;
    assert(!"amx_rows without AMX");
}
#endif
