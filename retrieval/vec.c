/* vec: one inner-product body, compiled twice (AVX2+FMA and the baseline)
 * and picked per call from the CPU's features; half rows of a multiple of
 * 16 values also have an AVX-512 body giving the same bits; quantized
 * rows' exact integer sums have AVX-512 VNNI, AVX2 and baseline bodies;
 * half rows kept by column have AVX-512, AVX2 and baseline bodies of one
 * fused multiply-add chain. */
#include "retrieval/vec.h"

#include <assert.h>
#include <cpuid.h>
#include <math.h>
#include <stdlib.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

/* Eight floats: GCC and clang lower it to one AVX register or two SSE ones. */
typedef float vec_v8 __attribute__((vector_size(32)));

/* The lanes' sum in one fixed tree, ((0+1)+(2+3))+((4+5)+(6+7)): the
 * order AVX2's horizontal adds give four rows at once (vec_dots4_avx2), so
 * a score is the same bits whichever kernel computed it. */
static inline __attribute__((always_inline)) float vec_lanes(const vec_v8 *v) {
    const vec_v8 s = *v;
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* a·b over the first d - d % 8 values into *out's lanes, in two
 * accumulators (they hide the add latency) folded into one; loads go
 * through memcpy since rows need not be 32-byte aligned. (By pointer: a
 * vector return would change the ABI of the baseline build.) */
static inline __attribute__((always_inline)) void vec_acc(const float *a, const float *b, int d,
                                                          vec_v8 *out) {
    vec_v8 s0 = {0}, s1 = {0}, x, y;
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        memcpy(&x, a + j, sizeof(x));
        memcpy(&y, b + j, sizeof(y));
        s0 += x * y;
        memcpy(&x, a + j + 8, sizeof(x));
        memcpy(&y, b + j + 8, sizeof(y));
        s1 += x * y;
    }
    if (j + 8 <= d) {
        memcpy(&x, a + j, sizeof(x));
        memcpy(&y, b + j, sizeof(y));
        s0 += x * y;
    }
    *out = s0 + s1;
}

/* The values past the last full eight, added last. */
static inline __attribute__((always_inline)) float vec_tail(float s, const float *a,
                                                            const float *b, int d) {
    for (int j = d - d % 8; j < d; j++) s += a[j] * b[j];
    return s;
}

static inline __attribute__((always_inline)) float vec_dot_body(const float *a, const float *b,
                                                                int d) {
    vec_v8 s;
    vec_acc(a, b, d, &s);
    return vec_tail(vec_lanes(&s), a, b, d);
}

/* Four rows' lane sums at once: three horizontal adds and one add of the
 * halves replace four scalar trees (the reduction, not the products, is
 * most of a short row's cost). Each row's sum is vec_lanes' tree. */
__attribute__((target("avx2,fma"))) static void vec_dots4_avx2(const float *q,
                                                                const float *const *r, int d,
                                                                float *out) {
    vec_v8 a[4];
    for (int i = 0; i < 4; i++) vec_acc(q, r[i], d, &a[i]);
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps((__m256)a[0], (__m256)a[1]),
                              _mm256_hadd_ps((__m256)a[2], (__m256)a[3]));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
    _mm_storeu_ps(out, t);
    for (int i = 0; d % 8 && i < 4; i++) out[i] = vec_tail(out[i], q, r[i], d);
}

__attribute__((target("avx2,fma"))) static void vec_dots_avx2(const float *q, const float *rows,
                                                               size_t n, int d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r = rows + i * (size_t)d, *four[4] = {r, r + d, r + 2 * d, r + 3 * d};
        vec_dots4_avx2(q, four, d, out + i);
    }
    for (; i < n; i++) out[i] = vec_dot_body(q, rows + i * (size_t)d, d);
}

__attribute__((target("avx2,fma"))) static void vec_dots_at_avx2(const float *q,
                                                                  const float *const *rows,
                                                                  size_t n, int d, float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vec_dots4_avx2(q, rows + i, d, out + i);
    for (; i < n; i++) out[i] = vec_dot_body(q, rows[i], d);
}

static void vec_dots_base(const float *q, const float *rows, size_t n, int d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = vec_dot_body(q, rows + i * (size_t)d, d);
}

/* Sixteen floats: one AVX-512 register. */
typedef float vec_v16 __attribute__((vector_size(64)));

/* q·row's lanes over a row of d half floats, d a multiple of 16, in
 * vec_acc's order: one 16-wide accumulator's lanes 0-7 are vec_acc's
 * first accumulator and lanes 8-15 its second (each sees the same
 * products in the same order), folded as vec_acc folds them; a row costs
 * half the conversions, products and adds of eight at a time. */
__attribute__((target("avx512f,avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
vec_acc_half_avx512(const float *q, const uint16_t *row, int d, vec_v8 *out) {
    vec_v16 s = {0}, x, y;
    for (int j = 0; j < d; j += 16) {
        memcpy(&x, q + j, sizeof(x));
        y = (vec_v16)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + j)));
        s += x * y;
    }
    *out = (vec_v8)_mm512_castps512_ps256((__m512)s) +
           (vec_v8)_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)s), 1));
}

/* vec_dots_half_avx2's answer, bit for bit, for d a multiple of 16: four
 * rows at a time reduced by the same horizontal adds. */
__attribute__((target("avx512f,avx2,fma,f16c"))) static void vec_dots_half_avx512(
    const float *q, const uint16_t *rows, size_t n, int d, float *out) {
    size_t i = 0;
    vec_v8 a[4];
    for (; i + 4 <= n; i += 4) {
        for (int r = 0; r < 4; r++)
            vec_acc_half_avx512(q, rows + (i + (size_t)r) * (size_t)d, d, &a[r]);
        __m256 u = _mm256_hadd_ps(_mm256_hadd_ps((__m256)a[0], (__m256)a[1]),
                                  _mm256_hadd_ps((__m256)a[2], (__m256)a[3]));
        _mm_storeu_ps(out + i, _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
    }
    for (; i < n; i++) {
        vec_acc_half_avx512(q, rows + i * (size_t)d, d, &a[0]);
        out[i] = vec_lanes(&a[0]);
    }
}

/* q·row over a row of d half floats, in vec_acc's order: eight values
 * at a time widened by F16C into the same two accumulators. */
/* q·row's lanes over the first d - d % 8 half floats of row into *out,
 * in vec_acc's order: eight values at a time widened by F16C into the same
 * two accumulators; returns how many values that covered. */
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) int
vec_acc_half_avx2(const float *q, const uint16_t *row, int d, vec_v8 *out) {
    vec_v8 s0 = {0}, s1 = {0}, x, y;
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        memcpy(&x, q + j, sizeof(x));
        y = (vec_v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + j)));
        s0 += x * y;
        memcpy(&x, q + j + 8, sizeof(x));
        y = (vec_v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + j + 8)));
        s1 += x * y;
    }
    if (j + 8 <= d) {
        memcpy(&x, q + j, sizeof(x));
        y = (vec_v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + j)));
        s0 += x * y;
        j += 8;
    }
    *out = s0 + s1;
    return j;
}

/* The half values past the last full eight, added last. */
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) float
vec_tail_half_avx2(float s, const float *q, const uint16_t *row, int j, int d) {
    for (; j < d; j++) s += q[j] * _cvtsh_ss(row[j]);
    return s;
}

__attribute__((target("avx2,fma,f16c"))) static inline float vec_dot_half_avx2(
    const float *q, const uint16_t *row, int d) {
    vec_v8 s;
    int j = vec_acc_half_avx2(q, row, d, &s);
    return vec_tail_half_avx2(vec_lanes(&s), q, row, j, d);
}

/* Four half rows at once, reduced as vec_dots4_avx2 reduces float rows
 * (the same tree, so the same bits as one row at a time): a short row's
 * lane sum, not its products, is most of what a scan pays. */
__attribute__((target("avx2,fma,f16c"))) static void vec_dots4_half_avx2(const float *q,
                                                                         const uint16_t *rows,
                                                                         int d, float *out) {
    size_t n = (size_t)d;
    vec_v8 a[4];
    int j = 0;
    for (int i = 0; i < 4; i++) j = vec_acc_half_avx2(q, rows + (size_t)i * n, d, &a[i]);
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps((__m256)a[0], (__m256)a[1]),
                              _mm256_hadd_ps((__m256)a[2], (__m256)a[3]));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
    _mm_storeu_ps(out, r);
    for (int i = 0; j < d && i < 4; i++)
        out[i] = vec_tail_half_avx2(out[i], q, rows + (size_t)i * n, j, d);
}

__attribute__((target("avx2,fma,f16c"))) static void vec_dots_half_avx2(const float *q,
                                                                        const uint16_t *rows,
                                                                        size_t n, int d,
                                                                        float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vec_dots4_half_avx2(q, rows + i * (size_t)d, d, out + i);
    for (; i < n; i++) out[i] = vec_dot_half_avx2(q, rows + i * (size_t)d, d);
}

float vec_from_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    float f;
    if (e == 0) { /* zero or subnormal: m · 2^-24, exact in a float */
        f = (float)m * (1.0f / 16777216.0f);
        memcpy(&x, &f, sizeof(x));
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    memcpy(&f, &x, sizeof(f));
    return f;
}

uint16_t vec_to_half(float f) {
    uint32_t x, sign, mant, h, rem, halfway;
    int e;
    memcpy(&x, &f, sizeof(x));
    sign = (x >> 16) & 0x8000;
    mant = x & 0x7fffff;
    e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (e <= 0) { /* a subnormal half (or zero): m = 1.mant >> (14 - e) */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        h = mant >> (14 - e);
        rem = mant & ((1u << (14 - e)) - 1);
        halfway = 1u << (13 - e);
    } else {
        h = ((uint32_t)e << 10) | (mant >> 13);
        rem = mant & 0x1fff;
        halfway = 0x1000;
    }
    if (rem > halfway || (rem == halfway && (h & 1))) h++; /* to nearest, ties to even */
    if (h >= 0x7c00) h = 0x7bff; /* the largest finite half, not infinity */
    return (uint16_t)(sign | h);
}

static void vec_dots_half_base(const float *q, const uint16_t *rows, size_t n, int d,
                               float *out) {
    for (size_t i = 0; i < n; i++) {
        const uint16_t *r = rows + i * (size_t)d;
        vec_v8 s0 = {0}, s1 = {0}, x, y;
        float s;
        int j = 0;
        for (; j + 8 <= d; j += 8) {
            memcpy(&x, q + j, sizeof(x));
            for (int l = 0; l < 8; l++) y[l] = vec_from_half(r[j + l]);
            if (j % 16) s1 += x * y;
            else s0 += x * y;
        }
        s0 += s1;
        s = vec_lanes(&s0);
        for (; j < d; j++) s += q[j] * vec_from_half(r[j]);
        out[i] = s;
    }
}

/* F16C from CPUID, since clang 14's __builtin_cpu_supports does not know
 * "f16c"; asked once, because CPUID traps to the hypervisor on a VM. */
static int vec_has_f16c(void) {
    static atomic_int known = -1;
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    unsigned a, b, c, d;
    if (v < 0) {
        v = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v;
}

void vec_dots_half(const float *q, const uint16_t *rows, size_t n, int d, float *out) {
    if (d % 16 == 0 && __builtin_cpu_supports("avx512f") && vec_has_f16c())
        vec_dots_half_avx512(q, rows, n, d, out);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && vec_has_f16c())
        vec_dots_half_avx2(q, rows, n, d, out);
    else
        vec_dots_half_base(q, rows, n, d, out);
}

/* Column blocks (vec_dots_half_cols): block b of blocks' n rows. */
static inline const uint16_t *vec_block(const uint16_t *blocks, size_t b, int d) {
    return blocks + b * (size_t)d * VEC_COLS;
}

/* One block's sixteen halves of a column, widened. */
__attribute__((target("avx512f,f16c"))) static inline __attribute__((always_inline)) __m512
vec_cols16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)p));
}

/* Four blocks at once, so four chains of dependent multiply-adds overlap
 * their latency; a lone block (the list's last few) runs alone. */
__attribute__((target("avx512f,f16c,fma"))) static void vec_dots_half_cols_avx512(
    const float *q, const uint16_t *blocks, size_t n, int d, float *out) {
    size_t nb = (n + VEC_COLS - 1) / VEC_COLS, b = 0;
    for (; (b + 4) * VEC_COLS <= n; b += 4) {
        const uint16_t *p = vec_block(blocks, b, d);
        size_t step = (size_t)d * VEC_COLS;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < d; j++, p += VEC_COLS) {
            __m512 x = _mm512_set1_ps(q[j]);
            a0 = _mm512_fmadd_ps(x, vec_cols16(p), a0);
            a1 = _mm512_fmadd_ps(x, vec_cols16(p + step), a1);
            a2 = _mm512_fmadd_ps(x, vec_cols16(p + 2 * step), a2);
            a3 = _mm512_fmadd_ps(x, vec_cols16(p + 3 * step), a3);
        }
        _mm512_storeu_ps(out + b * VEC_COLS, a0);
        _mm512_storeu_ps(out + (b + 1) * VEC_COLS, a1);
        _mm512_storeu_ps(out + (b + 2) * VEC_COLS, a2);
        _mm512_storeu_ps(out + (b + 3) * VEC_COLS, a3);
    }
    for (; b < nb; b++) {
        const uint16_t *p = vec_block(blocks, b, d);
        size_t left = n - b * VEC_COLS;
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < d; j++, p += VEC_COLS)
            a = _mm512_fmadd_ps(_mm512_set1_ps(q[j]), vec_cols16(p), a);
        _mm512_mask_storeu_ps(out + b * VEC_COLS,
                              left >= VEC_COLS ? 0xffff : (__mmask16)((1u << left) - 1), a);
    }
}

/* A block as two registers of eight lanes, two blocks at once. */
__attribute__((target("avx2,f16c,fma"))) static void vec_dots_half_cols_avx2(
    const float *q, const uint16_t *blocks, size_t n, int d, float *out) {
    size_t nb = (n + VEC_COLS - 1) / VEC_COLS;
    for (size_t b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        const uint16_t *p = vec_block(blocks, b, d), *p2 = two ? vec_block(blocks, b + 1, d) : p;
        float s[2 * VEC_COLS];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < d; j++, p += VEC_COLS, p2 += VEC_COLS) {
            __m256 x = _mm256_set1_ps(q[j]);
            a0 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const void *)p)), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const void *)(p + 8))), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const void *)p2)), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const void *)(p2 + 8))), a3);
        }
        _mm256_storeu_ps(s, a0);
        _mm256_storeu_ps(s + 8, a1);
        _mm256_storeu_ps(s + 16, a2);
        _mm256_storeu_ps(s + 24, a3);
        for (size_t r = 0; r < (size_t)(two ? 2 : 1) * VEC_COLS && b * VEC_COLS + r < n; r++)
            out[b * VEC_COLS + r] = s[r];
    }
}

static void vec_dots_half_cols_base(const float *q, const uint16_t *blocks, size_t n, int d,
                                    float *out) {
    for (size_t i = 0; i < n; i++) {
        const uint16_t *p = vec_block(blocks, i / VEC_COLS, d) + i % VEC_COLS;
        float s = 0;
        for (int j = 0; j < d; j++) s = fmaf(q[j], vec_from_half(p[(size_t)j * VEC_COLS]), s);
        out[i] = s;
    }
}

void vec_dots_half_cols_isa(vec_isa isa, const float *q, const uint16_t *blocks, size_t n,
                            int d, float *out) {
    assert(isa <= vec_best_isa());
    if (isa == VEC_ISA_VNNI && vec_has_f16c()) vec_dots_half_cols_avx512(q, blocks, n, d, out);
    else if (isa >= VEC_ISA_AVX2 && __builtin_cpu_supports("fma") && vec_has_f16c())
        vec_dots_half_cols_avx2(q, blocks, n, d, out);
    else vec_dots_half_cols_base(q, blocks, n, d, out);
}

void vec_dots_half_cols(const float *q, const uint16_t *blocks, size_t n, int d, float *out) {
    vec_dots_half_cols_isa(vec_best_isa(), q, blocks, n, d, out);
}

float vec_q8(const float *v, int d, int8_t *codes) {
    float m = 0, inv;
    for (int j = 0; j < d; j++) m = fmaxf(m, fabsf(v[j]));
    if (!(m > 0) || !isfinite(m)) {
        memset(codes, 0, (size_t)d);
        return 0;
    }
    inv = 127.0f / m;
    for (int j = 0; j < d; j++) {
        float c = fminf(fmaxf(v[j] * inv, -127.0f), 127.0f);
        codes[j] = (int8_t)lrintf(c == c ? c : 0);
    }
    return m / 127.0f;
}

/* Σ q[j] over d codes: what the rows' bias of 128 adds to each sum. */
static int32_t vec_q8_bias(const int8_t *q, int d) {
    int32_t s = 0;
    for (int j = 0; j < d; j++) s += q[j];
    return 128 * s;
}

static void vec_dots_q8_base(const int8_t *q, const uint8_t *rows, size_t n, int d,
                             int32_t *out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = rows + i * (size_t)d;
        int32_t s = 0;
        for (int j = 0; j < d; j++) s += (int32_t)q[j] * ((int32_t)r[j] - 128);
        out[i] = s;
    }
}

/* Sixteen codes at a time widened to 16 bits and multiplied in pairs into
 * eight 32-bit sums (no saturation: |255 · 127 · 2| fits). */
__attribute__((target("avx2"))) static void vec_dots_q8_avx2(const int8_t *q,
                                                             const uint8_t *rows, size_t n,
                                                             int d, int32_t *out) {
    int32_t bias = vec_q8_bias(q, d);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = rows + i * (size_t)d;
        __m256i acc = _mm256_setzero_si256();
        __m128i h;
        int32_t s;
        int j = 0;
        for (; j + 16 <= d; j += 16) {
            __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r + j)));
            __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + j)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
        }
        h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        s = _mm_cvtsi128_si32(h) - bias; /* the bias covers the tail too */
        for (; j < d; j++) s += (int32_t)q[j] * (int32_t)r[j];
        out[i] = s;
    }
}

/* The load mask for codes j.. of d, 64 a step. */
static inline uint64_t vec_q8_mask(int j, int d) {
    return d - j >= 64 ? ~0ULL : (1ULL << (d - j)) - 1;
}

/* One vpdpbusd per 64 codes (unsigned row bytes by signed query codes,
 * four products into each 32-bit lane), four rows at once so the
 * accumulators' latency overlaps; the tail is a masked load (zeros add
 * nothing). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void vec_dots_q8_vnni(
    const int8_t *q, const uint8_t *rows, size_t n, int d, int32_t *out) {
    int32_t bias = vec_q8_bias(q, d);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *r = rows + i * (size_t)d;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < d; j += 64) {
            __mmask64 m = vec_q8_mask(j, d);
            __m512i x = _mm512_maskz_loadu_epi8(m, q + j);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_maskz_loadu_epi8(m, r + j), x);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_maskz_loadu_epi8(m, r + d + j), x);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_maskz_loadu_epi8(m, r + 2 * d + j), x);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_maskz_loadu_epi8(m, r + 3 * d + j), x);
        }
        out[i] = _mm512_reduce_add_epi32(a0) - bias;
        out[i + 1] = _mm512_reduce_add_epi32(a1) - bias;
        out[i + 2] = _mm512_reduce_add_epi32(a2) - bias;
        out[i + 3] = _mm512_reduce_add_epi32(a3) - bias;
    }
    for (; i < n; i++) {
        const uint8_t *r = rows + i * (size_t)d;
        __m512i a = _mm512_setzero_si512();
        for (int j = 0; j < d; j += 64) {
            __mmask64 m = vec_q8_mask(j, d);
            a = _mm512_dpbusd_epi32(a, _mm512_maskz_loadu_epi8(m, r + j),
                                    _mm512_maskz_loadu_epi8(m, q + j));
        }
        out[i] = _mm512_reduce_add_epi32(a) - bias;
    }
}

/* AVX-512 VNNI from CPUID leaf 7 (ECX bit 11), beside the compiler's
 * check of AVX-512 F and BW (which also asks whether the OS saves the
 * registers); asked once, like F16C. */
vec_isa vec_best_isa(void) {
    static atomic_int known = -1;
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    unsigned a, b, c, d;
    if (v < 0) {
        int vnni = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));
        if (vnni && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
            v = VEC_ISA_VNNI;
        else
            v = __builtin_cpu_supports("avx2") ? VEC_ISA_AVX2 : VEC_ISA_BASE;
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return (vec_isa)v;
}

void vec_dots_q8_isa(vec_isa isa, const int8_t *q, const uint8_t *rows, size_t n, int d,
                     int32_t *out) {
    assert(isa <= vec_best_isa());
    if (isa == VEC_ISA_VNNI) vec_dots_q8_vnni(q, rows, n, d, out);
    else if (isa == VEC_ISA_AVX2) vec_dots_q8_avx2(q, rows, n, d, out);
    else vec_dots_q8_base(q, rows, n, d, out);
}

void vec_dots_q8(const int8_t *q, const uint8_t *rows, size_t n, int d, int32_t *out) {
    vec_dots_q8_isa(vec_best_isa(), q, rows, n, d, out);
}

static int vec_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void vec_dots(const float *q, const float *rows, size_t n, int d, float *out) {
    if (vec_has_avx2())
        vec_dots_avx2(q, rows, n, d, out);
    else
        vec_dots_base(q, rows, n, d, out);
}

void vec_dots_at(const float *q, const float *const *rows, size_t n, int d, float *out) {
    if (vec_has_avx2())
        vec_dots_at_avx2(q, rows, n, d, out);
    else
        for (size_t i = 0; i < n; i++) out[i] = vec_dot_body(q, rows[i], d);
}

float vec_dot(const float *a, const float *b, int d) {
    float s;
    vec_dots(a, b, 1, d, &s);
    return s;
}

/* Whether x goes before y. */
static inline int vec_hit_before(const vec_hit *x, const vec_hit *y) {
    return x->score > y->score || (x->score == y->score && x->id < y->id);
}

#define VEC_SORT_SMALL 16

/* Quicksort (median of three, the smaller side first) down to runs of
 * VEC_SORT_SMALL, which one insertion pass then finishes; past a depth of
 * 2·log2 n (an order that defeats the pivots) a range goes to qsort, so
 * the worst case stays n·log n. */
static void vec_hits_quick(vec_hit *h, size_t n, int depth) {
    while (n > VEC_SORT_SMALL) {
        vec_hit *a = h, *m = h + n / 2, *z = h + n - 1, t, pivot;
        size_t i = 0, j = n - 1;
        if (depth-- == 0) {
            qsort(h, n, sizeof(*h), vec_hit_desc);
            return;
        }
        if (vec_hit_before(m, a)) t = *m, *m = *a, *a = t;
        if (vec_hit_before(z, m)) t = *z, *z = *m, *m = t;
        if (vec_hit_before(m, a)) t = *m, *m = *a, *a = t;
        pivot = *m;
        /* Hoare partition: h[0..j] before or equal to pivot, h[i..n) after. */
        for (;;) {
            while (vec_hit_before(&h[i], &pivot)) i++;
            while (vec_hit_before(&pivot, &h[j])) j--;
            if (i >= j) break;
            t = h[i], h[i] = h[j], h[j] = t;
            i++, j--;
        }
        if (j + 1 < n - j - 1) {
            vec_hits_quick(h, j + 1, depth);
            h += j + 1;
            n -= j + 1;
        } else {
            vec_hits_quick(h + j + 1, n - j - 1, depth);
            n = j + 1;
        }
    }
}

/* From VEC_RADIX_MIN hits a sort is a radix sort of 64-bit keys: the
 * quicksort's comparisons of scores in no order mispredict about half the
 * time, where a radix pass only counts and moves (a search's 258 hits
 * sort in 0.42 of the quicksort's time, a pool's 600 in 0.33, measured
 * with gcc -O2 on this machine's AVX-512 cores). */
#define VEC_RADIX_MIN 64
#define VEC_RADIX_BITS 8
#define VEC_RADIX_PASSES (64 / VEC_RADIX_BITS)

/* h's key: ascending keys are vec_hit_desc's order (the score's bits
 * turned so that the larger score comes first, then the id). */
static inline uint64_t vec_hit_key(vec_hit h) {
    uint32_t u;
    memcpy(&u, &h.score, sizeof(u));
    u = u & 0x80000000u ? u : ~u & 0x7fffffffu;
    return (uint64_t)u << 32 | h.id;
}

static inline vec_hit vec_key_hit(uint64_t k) {
    uint32_t u = (uint32_t)(k >> 32);
    vec_hit h = {0, (uint32_t)k};
    u = u & 0x80000000u ? u : ~u & 0x7fffffffu;
    memcpy(&h.score, &u, sizeof(u));
    return h;
}

/* Sorts h by an LSD radix sort of its keys, skipping the digits every key
 * shares (an id's high bytes). Returns 0, h untouched, when a score is NaN
 * or -0 (the keys' order would not be the comparison's: -0 equals 0) or
 * the scratch cannot be had. */
static int vec_hits_radix(vec_hit *h, size_t n) {
    uint32_t count[VEC_RADIX_PASSES][1u << VEC_RADIX_BITS];
    uint64_t *src = malloc(2 * n * sizeof(*src)), *dst = src + n, *t;
    const uint64_t mask = (1u << VEC_RADIX_BITS) - 1;
    if (!src) return 0;
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < n; i++) {
        if (isnan(h[i].score) || (h[i].score == 0 && signbit(h[i].score))) {
            free(src);
            return 0;
        }
        src[i] = vec_hit_key(h[i]);
        for (int d = 0; d < VEC_RADIX_PASSES; d++)
            count[d][(src[i] >> (VEC_RADIX_BITS * d)) & mask]++;
    }
    for (int d = 0; d < VEC_RADIX_PASSES; d++) {
        uint32_t *c = count[d], sum = 0;
        int shift = VEC_RADIX_BITS * d;
        if (c[(src[0] >> shift) & mask] == n) continue;
        for (size_t v = 0; v <= mask; v++) {
            uint32_t x = c[v];
            c[v] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & mask]++] = src[i];
        t = src, src = dst, dst = t;
    }
    for (size_t i = 0; i < n; i++) h[i] = vec_key_hit(src[i]);
    free(src < dst ? src : dst);
    return 1;
}

void vec_hits_sort(vec_hit *h, size_t n) {
    int depth = 0;
    if (n >= VEC_RADIX_MIN && n <= UINT32_MAX && vec_hits_radix(h, n)) return;
    for (size_t m = n; m > 1; m >>= 1) depth += 2;
    vec_hits_quick(h, n, depth);
    for (size_t i = 1; i < n; i++) {
        vec_hit x = h[i];
        size_t j = i;
        for (; j > 0 && vec_hit_before(&x, &h[j - 1]); j--) h[j] = h[j - 1];
        h[j] = x;
    }
}

/* Moves h[i] down the heap of n hits to its place. */
static void vec_hits_sift(vec_hit *h, size_t n, size_t i) {
    vec_hit x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && vec_hit_before(&h[c + 1], &h[c])) c++;
        if (!vec_hit_before(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

void vec_hits_heap(vec_hit *h, size_t n) {
    for (size_t i = n / 2; i-- > 0;) vec_hits_sift(h, n, i);
}

vec_hit vec_hits_pop(vec_hit *h, size_t *n) {
    vec_hit top = h[0];
    h[0] = h[--*n];
    if (*n) vec_hits_sift(h, *n, 0);
    return top;
}
