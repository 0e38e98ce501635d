/* kern.c — matrix × vector products, quantization and half conversions.
 *
 * The engine spends nearly all of its time here streaming weights, so the
 * loops are written to keep the memory bus busy: a row is read once, front
 * to back. The SIMD versions are compiled with target attributes rather
 * than a global -m flag so one binary runs everywhere; kern_level() picks
 * AVX2+FMA+F16C, AVX-VNNI for int8 dot products, and AVX-512 (F, BW, VL,
 * VNNI) for tiles of rows x activations, from the CPU's features once per
 * process. A batched product sums each activation's products in the
 * single product's order, so no result depends on what shares its pass. */
#include "model/kern.h"

#include "model/amx.h"
#include "model/quant.h"
#include "services/base/status.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define KERN_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define KERN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define KERN_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
/* Not AVX-VNNI: Ice Lake and Cascade Lake have AVX-512 VNNI without it. */
#define KERN_AVX512                                                           \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,"          \
                          "avx512vnni")))
#endif

static int kern_cpu_level;       /* best level this CPU runs */
static int kern_avxvnni;         /* it has AVX-VNNI (VEX vpdpbusd) */
static int kern_cap = KERN_AMX_LEVEL;
static int kern_env_cap = KERN_AMX_LEVEL; /* AISLE_KERNEL's */
static pthread_once_t kern_once = PTHREAD_ONCE_INIT;

#ifdef KERN_X86
/* CPUID and XGETBV directly rather than __builtin_cpu_supports: clang 14
 * knows neither "f16c" nor "avxvnni" there, and the fuzz build uses clang.
 * The OS must save the YMM registers (XCR0 bits 1 and 2) for AVX to work,
 * and the opmask and ZMM registers (bits 5-7) for AVX-512. */
static void kern_cpu_detect(void) {
    unsigned a, b, c, d, xlo, xhi;
    int avx2, vnni, avx512;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_FMA) ||
        !(c & bit_F16C))
        return;
    __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 6) != 6) return;
    avx2 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2);
    /* AVX-512 F, BW, VL (ebx bits 16, 30, 31) and VNNI (ecx bit 11). */
    avx512 = avx2 && (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) &&
             (c & (1u << 11)) && (xlo & 0xe0) == 0xe0;
    vnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)); /* AVX-VNNI */
    kern_avxvnni = avx2 && vnni;
    if (avx2)
        kern_cpu_level = avx512 ? KERN_AVX512_LEVEL
                         : vnni ? KERN_VNNI_LEVEL
                                : KERN_AVX2_LEVEL;
    /* Only asked for when it would be used: the grant is for the life of
     * the process. */
    if (kern_cpu_level == KERN_AVX512_LEVEL && kern_env_cap >= KERN_AMX_LEVEL &&
        amx_detect())
        kern_cpu_level = KERN_AMX_LEVEL;
}
#else
static void kern_cpu_detect(void) {}
#endif

/* AISLE_KERNEL caps the level for the process (an unknown name is left
 * alone), then the CPU is asked what it runs. */
static void kern_detect(void) {
    static const char *const names[] = {"scalar", "avx2", "vnni", "avx512",
                                        "amx"};
    const char *e = getenv("AISLE_KERNEL");
    for (int i = 0; e && i <= KERN_AMX_LEVEL; i++)
        if (!strcmp(e, names[i]))
            kern_env_cap = i;
    kern_cpu_detect();
}

/* The kernel level in effect (AVX2 for the VNNI level on an AVX-512 CPU
 * without AVX-VNNI). */
static int kern_level(void) {
    int l;
    pthread_once(&kern_once, kern_detect);
    l = kern_cpu_level < kern_cap ? kern_cpu_level : kern_cap;
    l = l < kern_env_cap ? l : kern_env_cap;
    return l == KERN_VNNI_LEVEL && !kern_avxvnni ? KERN_AVX2_LEVEL : l;
}

int kern_get_level(void) { return kern_level(); }
#ifdef KERN_X86
/* Whether the 256-bit int8 kernels may use AVX-VNNI at this level. */
static int kern_vnni(int level) {
    return level >= KERN_VNNI_LEVEL && kern_avxvnni;
}
#endif

int kern_set_level(int level) {
    kern_cap = level;
    return kern_level();
}

/* ---------------------------------------------------------------- halves */

float kern_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    float f;

    if (exp == 0 && man == 0) {
        bits = sign;
    } else if (exp == 0) {
        /* Subnormal half: shift until the implicit bit appears. */
        uint32_t e = 0;
        while (!(man & 0x400)) {
            man <<= 1;
            e++;
        }
        bits = sign | ((127 - 14 - e) << 23) | ((man & 0x3ff) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t kern_f32_to_f16(float f) {
    uint32_t x, man, m, rem, half;
    int e, shift;
    uint16_t sign;

    memcpy(&x, &f, sizeof x);
    sign = (uint16_t)((x >> 16) & 0x8000);
    man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return sign;
        man |= 0x800000;
        shift = 14 - e;
        m = man >> shift;
        rem = man & ((1u << shift) - 1);
        half = 1u << (shift - 1);
        if (rem > half || (rem == half && (m & 1)))
            m++; /* may carry into the smallest normal: still correct */
        return (uint16_t)(sign | m);
    }
    m = man >> 13;
    rem = man & 0x1fff;
    m = sign | ((uint32_t)e << 10) | m;
    if (rem > 0x1000 || (rem == 0x1000 && (m & 1)))
        m++; /* a carry into the exponent rounds up to the next binade/inf */
    return (uint16_t)m;
}


/* --------------------------------------------------------- quantization */

void kern_softmax(float *x, int n) {
    float max = x[0], sum = 0.0f;
    for (int i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

/* --------------------------------------------------- ggml's arithmetic */

float kern_expf_ggml(float x) {
    float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f), n = z - 0x1.8p23f, b, u, j;

    if (!(fabsf(n) <= 192.0f)) /* also NaN from -inf: exp(-inf) = 0 */
        return n > 0.0f ? INFINITY : 0.0f;
    b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    u = b * b;
    j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                  fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
             u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n); /* _mm512_scalef_ps */
}

#ifdef KERN_X86
/* kern_expf_ggml of eight values with the same operations in AVX2, a
 * multiply by 2^n standing in for scalef: exact while every result stays
 * a normal number (|n| <= 125); 0, and nothing written, otherwise. */
KERN_AVX2 static int expf_ggml8(const float *x, float *y) {
    __m256 xv = _mm256_loadu_ps(x), r = _mm256_set1_ps(0x1.8p23f);
    __m256 z = _mm256_fmadd_ps(xv, _mm256_set1_ps(0x1.715476p+0f), r);
    __m256 n = _mm256_sub_ps(z, r), b, u, j, big;

    big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n),
                        _mm256_set1_ps(125.0f), _CMP_NLE_UQ);
    if (_mm256_movemask_ps(big))
        return 0;
    b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                         _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), xv));
    u = _mm256_mul_ps(b, b);
    j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b,
                                        _mm256_set1_ps(0x1.573e2ep-5f)),
                        u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b,
                                        _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b,
                           _mm256_set1_ps(1.0f)));
    _mm256_storeu_ps(
        y, _mm256_mul_ps(j, _mm256_castsi256_ps(_mm256_slli_epi32(
                                _mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                 _mm256_set1_epi32(127)),
                                23))));
    return 1;
}
#endif

/* y[i] = kern_expf_ggml(x[i]) for i < n (in place allowed), eight at a
 * time where the CPU can. */
static void expf_ggml_n(const float *x, float *y, int n) {
    int i = 0;
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL)
        for (; i + 8 <= n; i += 8)
            if (!expf_ggml8(x + i, y + i))
                for (int k = i; k < i + 8; k++)
                    y[k] = kern_expf_ggml(x[k]);
#endif
    for (; i < n; i++)
        y[i] = kern_expf_ggml(x[i]);
}

/* _mm512_reduce_add_ps of 16 lanes: halves added, then quarters, ... */
static float fold16(const float *a) {
    float t8[8], t4[4];
    for (int l = 0; l < 8; l++)
        t8[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++)
        t4[l] = t8[l + 4] + t8[l];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

/* GGML_F16_VEC_REDUCE of four 16-lane accumulators (64 lanes). */
static float fold64(float *a) {
    for (int l = 0; l < 16; l++) {
        a[l] += a[l + 32];
        a[l + 16] += a[l + 48];
    }
    for (int l = 0; l < 16; l++)
        a[l] += a[l + 16];
    return fold16(a);
}

/* Value i of x: halves when `half`, else floats. */
static float value_at(const void *x, int half, int i) {
    return half ? kern_f16_to_f32(((const uint16_t *)x)[i])
                : ((const float *)x)[i];
}

/* The end both BF16 forms share: the two 16-lane accumulators folded and
 * added in double, then the values past the last 64, in double. */
static float dot_bf16_finish(float lanes[2][16], int np, const uint16_t *h, const float *x,
                             int n) {
    double sum = 0.0;
    if (np) {
        sum += (double)fold16(lanes[0]);
        sum += (double)fold16(lanes[1]);
    }
    for (int i = np; i < n; i++)
        sum += (double)(kern_bf16_to_f32(h[i]) * x[i]);
    return (float)sum;
}

/* ggml_vec_dot_bf16 as its AVX512-BF16 form sums (the activation already
 * rounded to bf16): per 64 values two accumulators of 16 lanes, lane l
 * adding values 2l+1 then 2l of each 32 (vdpbf16ps; the products are
 * exact), folded and added in double, the rest in double. */
static float dot_bf16_any(const uint16_t *h, const float *x, int n) {
    float c[2][16] = {{0}};
    int np = n & ~63;

    for (int i = 0; i < np; i += 32)
        for (int l = 0; l < 16; l++) {
            float *acc = &c[(i >> 5) & 1][l];
            int j = i + 2 * l;
            *acc += kern_bf16_to_f32(h[j + 1]) * x[j + 1];
            *acc += kern_bf16_to_f32(h[j]) * x[j];
        }
    return dot_bf16_finish(c, np, h, x, n);
}

/* kern_dot_half of x (halves or floats, value_at) with y. */
static float dot_half_any(const void *x, int half, const float *y, int n) {
    float lanes[64] = {0};
    int np = n & ~63;
    double sum;

    for (int i = 0; i < np; i++)
        lanes[i & 63] += value_at(x, half, i) * y[i];
    sum = np ? fold64(lanes) : 0.0f;
    for (int i = np; i < n; i++)
        sum += (double)(value_at(x, half, i) * y[i]);
    return (float)sum;
}


void kern_softmax_ggml(float *x, int n, float scale) {
    float max = -INFINITY, inv;
    double sum = 0.0;

    for (int i = 0; i < n; i++) {
        x[i] *= scale;
        max = fmaxf(max, x[i]);
    }
    /* llama.cpp's row is the cache padded to 32 positions with masked
     * (zero) entries, so every run of 16 is a vector one. */
    for (int i = 0; i < n; i += 16) {
        float run[16] = {0};
        int m = n - i < 16 ? n - i : 16;
        for (int k = 0; k < m; k++)
            run[k] = x[i + k] - max;
        expf_ggml_n(run, run, m);
        memcpy(x + i, run, (size_t)m * sizeof *x);
        sum += (double)fold16(run);
    }
    inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* kern_mix_half for the output values j0 <= j < j1, np = n_kv rounded
 * down to 64: position t < np adds into lane t % 64 of each output, the
 * lanes fold as in kern_dot_half, the rest add in double. */
static void mix_half_scalar(const float *w, const uint16_t *v, size_t stride,
                            int n, int np, int j0, int j1, float *out) {
    int nl = n < np ? n : np;

    for (int j = j0; j < j1; j++) {
        float lanes[64] = {0};
        double sum;
        for (int t = 0; t < nl; t++)
            lanes[t & 63] += kern_f16_to_f32(v[(size_t)t * stride + j]) * w[t];
        sum = np ? fold64(lanes) : 0.0f;
        for (int t = nl; t < n; t++)
            sum += (double)(kern_f16_to_f32(v[(size_t)t * stride + j]) * w[t]);
        out[j] = (float)sum;
    }
}

void kern_swiglu_ggml(float *g, const float *u, int n) {
    int nv = n & ~15;
    for (int i = 0; i < n; i += 64) {
        float e[64];
        int m = n - i < 64 ? n - i : 64, mv = nv - i < m ? nv - i : m;
        assert(mv >= 0); /* i, a multiple of 16, is at most nv */
        for (int k = 0; k < m; k++)
            e[k] = -g[i + k];
        expf_ggml_n(e, e, mv);
        for (int k = mv; k < m; k++)
            e[k] = expf(e[k]);
        for (int k = 0; k < m; k++)
            g[i + k] = g[i + k] / (1.0f + e[k]) * u[i + k];
    }
}

void kern_quantize(const float *x, int n, int gs, int8_t *q, float *s) {
    for (int g = 0; g < n / gs; g++) {
        const float *xg = x + (size_t)g * gs;
        float amax = 0.0f, scale, inv;

        for (int i = 0; i < gs; i++) {
            float a = fabsf(xg[i]);
            if (a > amax)
                amax = a;
        }
        scale = amax / 127.0f;
        inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        s[g] = scale;
        for (int i = 0; i < gs; i++) {
            /* NaN/inf inputs must not reach the int conversion (UB). */
            float v = roundf(xg[i] * inv);
            if (!(v >= -127.0f))
                v = v != v ? 0.0f : -127.0f;
            if (v > 127.0f)
                v = 127.0f;
            q[(size_t)g * gs + i] = (int8_t)v;
        }
    }
}

/* x * m rounded to the nearest integer, ties to even (ggml's
 * _mm256_round_ps and nearest_int), as an int8; NaN becomes 0. */
static int8_t act_round(float x, float m) {
    float v = rintf(x * m);
    if (!(v >= -127.0f))
        v = v != v ? 0.0f : -127.0f;
    return (int8_t)(v > 127.0f ? 127.0f : v);
}

#ifdef KERN_X86
/* The largest magnitude among x[0..n) (n a multiple of 8), NaNs ignored
 * as fmaxf ignores them: max_ps returns its second operand on a NaN. */
KERN_AVX2 static float act_amax_avx2(const float *x, int n) {
    __m256 m = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    __m128 h;
    for (int i = 0; i < n; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* act_round of the 32 values x * m into q, returning their sum: rounded
 * to nearest even, NaN to 0 and clamped to +-127 as act_round does, then
 * packed in order (packs interleave 128-bit lanes; the permute undoes
 * it, as in ggml's quantize_row_q8_0). */
KERN_AVX2 static int32_t act_round32_avx2(const float *x, float m,
                                          int8_t *q) {
    __m256 mv = _mm256_set1_ps(m), lo = _mm256_set1_ps(-127.0f),
           hi = _mm256_set1_ps(127.0f);
    __m256i v[4], t, b;
    __m128i h;
    for (int k = 0; k < 4; k++) {
        __m256 y = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        y = _mm256_and_ps(y, _mm256_cmp_ps(y, y, _CMP_ORD_Q));
        v[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, lo), hi));
    }
    t = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]),
                         _mm256_add_epi32(v[2], v[3]));
    b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]),
                           _mm256_packs_epi32(v[2], v[3]));
    _mm256_storeu_si256((__m256i *)q,
                        _mm256_permutevar8x32_epi32(
                            b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}
#endif

/* The largest magnitude among x[0..n), n a multiple of 8. */
static float act_amax(const float *x, int n) {
    float amax = 0.0f;
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL)
        return act_amax_avx2(x, n);
#endif
    for (int i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    return amax;
}

/* q[i] = act_round(x[i], m) for 32 values; returns the sum of q. */
static int32_t act_round32(const float *x, float m, int8_t *q) {
    int32_t t = 0;
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL)
        return act_round32_avx2(x, m, q);
#endif
    for (int i = 0; i < 32; i++) {
        q[i] = act_round(x[i], m);
        t += q[i];
    }
    return t;
}

/* ggml's quantize_row_q8_0 / q8_1 (x86): 32 values per block. The dot
 * product reads the scale as the half d is stored in, and Q8_1's sum as a
 * half of the unrounded d times the sum of q. */
static void act_q8_0(kern_act *a) {
    for (int g = 0; g < a->n / 32; g++) {
        const float *x = a->f + (size_t)g * 32;
        float amax = act_amax(x, 32), d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t t = act_round32(x, id, a->q + (size_t)g * 32);
        a->s[g] = kern_f16_to_f32(kern_f32_to_f16(d));
        a->sum[g] = kern_f16_to_f32(kern_f32_to_f16(d * (float)t));
    }
}

/* ggml's quantize_row_q8_K_ref: 256 values per block around the signed
 * value of largest magnitude (the first such), float scale; sum holds
 * each group's integer sum (the K-quant kernels multiply it with the
 * integer mins, as ggml does with its bsums). */
static void act_q8_k(kern_act *a) {
    for (int b = 0; b < a->n / 256; b++) {
        const float *x = a->f + (size_t)b * 256;
        float amax = act_amax(x, 256), max = 0.0f, iscale, d;
        for (int i = 0; amax != 0.0f && i < 256; i++)
            if (fabsf(x[i]) == amax) {
                max = x[i];
                break;
            }
        iscale = amax != 0.0f ? -127.0f / max : 0.0f;
        d = amax != 0.0f ? 1.0f / iscale : 0.0f;
        for (int g = 0; g < 8; g++) {
            int32_t t = act_round32(x + 32 * g, iscale,
                                    a->q + (size_t)b * 256 + 32 * g);
            a->s[8 * b + g] = d;
            a->sum[8 * b + g] = (float)t; /* exact: |t| <= 32 * 127 */
        }
    }
}

/* ggml's fp32 -> bf16: to nearest even, NaN kept quiet. */
static uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

int kern_act_group(int code) { return code > 0 ? code : 32; }

void kern_act_quantize(kern_act *a, int code) {
    if (a->gs == code)
        return;
    if (code == KERN_ACT_F16 || code == KERN_ACT_BF16) {
        for (int i = 0; i < a->n; i++)
            a->s[i] = code == KERN_ACT_F16
                          ? kern_f16_to_f32(kern_f32_to_f16(a->f[i]))
                          : kern_bf16_to_f32(bf16_round(a->f[i]));
        a->f = a->s;
    } else if (code == KERN_ACT_Q8_0) {
        act_q8_0(a);
    } else if (code == KERN_ACT_Q8_K) {
        act_q8_k(a);
    } else {
        assert(code > 0);
        kern_quantize(a->f, a->n, code, a->q, a->s);
        for (int g = 0; g < a->n / code; g++) {
            int32_t t = 0;
            for (int k = 0; k < code; k++)
                t += a->q[g * code + k];
            a->sum[g] = a->s[g] * (float)t;
        }
    }
    a->gs = code;
}

int kern_needs_act(const kern_mat *w) {
    switch (w->type) {
    case KERN_F32: return 0;
    case KERN_F16: return KERN_ACT_F16;
    case KERN_BF16: return KERN_ACT_BF16;
    case KERN_Q8: return w->gs;
    case KERN_Q4_K:
    case KERN_Q5_K:
    case KERN_Q6_K: return KERN_ACT_Q8_K;
    default: return KERN_ACT_Q8_0;
    }
}

float kern_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

const char *kern_type_name(int type) {
    static const char *const names[] = {"F32",  "F16",  "int8 groups", "Q8_0",
                                        "BF16", "Q4_0", "Q4_1", "Q5_0",
                                        "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
    return type >= 0 && type <= KERN_Q6_K ? names[type] : "?";
}

size_t kern_mat_bytes(const kern_mat *w) {
    size_t n = (size_t)w->rows * (size_t)w->cols;
    int be, bb;
    switch (w->type) {
    case KERN_F32: return n * 4;
    case KERN_F16:
    case KERN_BF16: return n * 2;
    case KERN_Q8: return n + n / (size_t)w->gs * 4;
    default:
        if (quant_block(w->type, &be, &bb))
            return 0;
        return n / (size_t)be * (size_t)bb;
    }
}

/* Start of row `row` of a block-quantized matrix. */
static const uint8_t *block_row(const kern_mat *w, int row) {
    int be, bb;
    int ok = quant_block(w->type, &be, &bb) == AISLE_OK;
    assert(ok && w->cols % be == 0);
    (void)ok;
    return (const uint8_t *)w->q + (size_t)row * (size_t)(w->cols / be) * bb;
}

void kern_mat_row(const kern_mat *w, int row, float *dst) {
    size_t n = (size_t)w->cols, base = (size_t)row * n;

    switch (w->type) {
    case KERN_F32:
        memcpy(dst, (const float *)w->q + base, n * sizeof *dst);
        break;
    case KERN_F16:
    case KERN_BF16: {
        const uint16_t *h = (const uint16_t *)w->q + base;
        for (size_t j = 0; j < n; j++)
            dst[j] = w->type == KERN_F16 ? kern_f16_to_f32(h[j])
                                         : kern_bf16_to_f32(h[j]);
        break;
    }
    case KERN_Q8: {
        const int8_t *q = (const int8_t *)w->q + base;
        const float *s = w->s + base / (size_t)w->gs;
        for (size_t j = 0; j < n; j++)
            dst[j] = q[j] * s[j / (size_t)w->gs];
        break;
    }
    default:
        quant_dequant(w->type, block_row(w, row), n, dst);
        break;
    }
}

/* The repacked layouts (kern.h), a run of KERN_RP_ROWS (16) rows each.
 *
 * Q8_0: the rows' half scales block by block (16 per block, half a cache
 * line; the run padded to whole lines), then per block eight 64-byte
 * registers, register j holding values 4j..4j+3 of each of the 16 rows,
 * offset by 128. Halves, not floats: decoding streams the copy once per
 * token, and the scales as floats made it 36/34 of the file's Q8_0 bytes.
 *
 * Q4_K and Q6_K: four quads of four rows, each quad's blocks as three
 * regions: per block 64 bytes of scales, 16 to a row (one 128-bit lane):
 * Q4_K's eight 6-bit scales then its eight mins as bytes, Q6_K's sixteen
 * int8 scales as they are; per block the value bytes, in 64-byte
 * registers that hold 16 bytes of each row, one row to a lane, as the
 * file has them (Q4_K: register 2c + h holds bytes 32c + 16h .. + 15 of
 * the 128 value bytes, low nibbles group 2c, high nibbles 2c + 1, ggml's
 * int32 lanes 4h..4h + 3 of both; Q6_K: register 3(2H + h) + j holds, for
 * j 0 and 1, bytes 64H + 32j + 16h .. + 15 of the 128 low-nibble bytes
 * (groups 4H + j and 4H + j + 2), for j 2, bytes 32H + 16h .. + 15 of the
 * 64 high-bit bytes (two bits for each of groups 4H..4H + 3)); then per
 * block the rows' half scales d (and Q4_K's dmin), the region padded to a
 * whole line. The values keep their bits: per quad and block 592 bytes
 * against the file's 576 (Q4_K), 840 against 840 (Q6_K), plus the
 * padding. */
#define KERN_RQ_ROWS 4 /* rows of a quad, one to a 128-bit lane */

static size_t rp_scale_bytes(size_t nb) {
    return (nb * KERN_RP_ROWS * sizeof(uint16_t) + 63) & ~(size_t)63;
}

/* Per block of a quad (Q4_K or Q6_K): value bytes and half-scale bytes. */
static size_t rq_value_bytes(int type) { return type == KERN_Q4_K ? 512 : 768; }
static size_t rq_half_bytes(int type) { return type == KERN_Q4_K ? 16 : 8; }

/* Bytes of one quad of nb blocks. */
static size_t rq_quad_bytes(int type, size_t nb) {
    return nb * (64 + rq_value_bytes(type)) +
           ((nb * rq_half_bytes(type) + 63) & ~(size_t)63);
}

/* Bytes of one run of w's copy. */
static size_t rp_group_bytes(const kern_mat *w) {
    int elems, bytes;
    size_t nb;
    quant_block(w->type, &elems, &bytes);
    nb = (size_t)(w->cols / elems);
    if (w->type != KERN_Q8_0)
        return KERN_RP_ROWS / KERN_RQ_ROWS * rq_quad_bytes(w->type, nb);
    return rp_scale_bytes(nb) + nb * KERN_RP_ROWS * KERN_Q8_0_BLOCK;
}

size_t kern_repack_bytes(const kern_mat *w) {
    if ((w->type != KERN_Q8_0 && w->type != KERN_Q4_K &&
         w->type != KERN_Q6_K) ||
        w->rows < KERN_RP_ROWS || kern_level() < KERN_AVX512_LEVEL)
        return 0;
    return (size_t)(w->rows / KERN_RP_ROWS) * rp_group_bytes(w);
}

const uint8_t *kern_rp_run(const kern_mat *w, int run,
                           const uint16_t **scales) {
    size_t nb = (size_t)w->cols / KERN_Q8_0_BLOCK;
    const uint8_t *g = (const uint8_t *)w->rp + (size_t)run * rp_group_bytes(w);

    assert(w->rp && w->type == KERN_Q8_0 && run >= 0 &&
           run < w->rows / KERN_RP_ROWS);
    *scales = (const uint16_t *)(const void *)g;
    return g + rp_scale_bytes(nb);
}

size_t kern_mat_read_bytes(const kern_mat *w) {
    int runs = w->rows / KERN_RP_ROWS;

    if (!w->rp)
        return kern_mat_bytes(w);
    return (size_t)runs * rp_group_bytes(w) +
           (size_t)(w->rows - runs * KERN_RP_ROWS) *
               (kern_mat_bytes(w) / (size_t)w->rows);
}

static void repack_q8_0(const kern_mat *w, uint8_t *out) {
    size_t nb = (size_t)w->cols / KERN_Q8_0_BLOCK, gb = rp_group_bytes(w);

    for (int g = 0; g < w->rows / KERN_RP_ROWS; g++) {
        uint16_t *sc = (uint16_t *)(void *)(out + (size_t)g * gb);
        uint8_t *qs = out + (size_t)g * gb + rp_scale_bytes(nb);
        for (int r = 0; r < KERN_RP_ROWS; r++) {
            const uint8_t *b = block_row(w, g * KERN_RP_ROWS + r);
            for (size_t k = 0; k < nb; k++, b += KERN_Q8_0_BYTES) {
                uint16_t h;
                uint8_t *v = qs + k * KERN_RP_ROWS * KERN_Q8_0_BLOCK +
                             (size_t)r * 4;
                memcpy(&h, b, 2);
                sc[k * KERN_RP_ROWS + (size_t)r] = h;
                for (int j = 0; j < KERN_Q8_0_BLOCK; j++)
                    v[(j / 4) * 4 * KERN_RP_ROWS + j % 4] =
                        (uint8_t)(b[2 + j] ^ 0x80);
            }
        }
    }
}

/* Q4_K's and Q6_K's quads (the layout above). A Q4_K block: d, dmin
 * (halves), 12 packed scale bytes, 128 value bytes; Q6_K (quant.c): 128
 * low-nibble bytes, 64 high-bit bytes, 16 int8 scales, d. */
static void repack_quads(const kern_mat *w, uint8_t *out) {
    int q4k = w->type == KERN_Q4_K, elems, bytes;
    size_t nb, qb, vb = rq_value_bytes(w->type), hb = rq_half_bytes(w->type);
    int quads = w->rows / KERN_RP_ROWS * (KERN_RP_ROWS / KERN_RQ_ROWS);

    quant_block(w->type, &elems, &bytes);
    nb = (size_t)(w->cols / elems);
    qb = rq_quad_bytes(w->type, nb);
    for (int qd = 0; qd < quads; qd++) {
        uint8_t *sc = out + (size_t)qd * qb, *v = sc + nb * 64,
                *dh = v + nb * vb;
        for (int r = 0; r < KERN_RQ_ROWS; r++) {
            const uint8_t *b = block_row(w, qd * KERN_RQ_ROWS + r);
            for (size_t k = 0; k < nb; k++, b += bytes) {
                uint8_t *s16 = sc + k * 64 + (size_t)r * 16;
                uint8_t *vr = v + k * vb + (size_t)r * 16;
                if (q4k) {
                    for (int j = 0; j < 8; j++) {
                        int s, m;
                        quant_k_scale_min(j, b + 4, &s, &m);
                        s16[j] = (uint8_t)s;
                        s16[8 + j] = (uint8_t)m;
                    }
                    for (int reg = 0; reg < 8; reg++)
                        memcpy(vr + reg * 64, b + 16 + 16 * reg, 16);
                    memcpy(dh + k * hb + (size_t)r * 2, b, 2);
                    memcpy(dh + k * hb + 8 + (size_t)r * 2, b + 2, 2);
                    continue;
                }
                memcpy(s16, b + 192, 16);
                for (int hr = 0; hr < 4; hr++) { /* 2H + h */
                    int H = hr / 2, h = hr % 2;
                    for (int j = 0; j < 2; j++)
                        memcpy(vr + (3 * hr + j) * 64,
                               b + 64 * H + 32 * j + 16 * h, 16);
                    memcpy(vr + (3 * hr + 2) * 64, b + 128 + 32 * H + 16 * h,
                           16);
                }
                memcpy(dh + k * hb + (size_t)r * 2, b + 208, 2);
            }
        }
    }
}

void kern_repack(kern_mat *w, void *dst) {
    assert(kern_repack_bytes(w) && (uintptr_t)dst % 64 == 0);
    if (w->type == KERN_Q8_0)
        repack_q8_0(w, dst);
    else
        repack_quads(w, dst);
    w->rp = dst;
}

/* ------------------------------------------------------- scalar kernels */

/* The sum of eight float lanes in hsum8's order (the SIMD kernels' and
 * ggml's hsum_float_8). */
static float hsum8_scalar(const float *l) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* Row i of a 32-value block matrix times the int8 activation: per block,
 * eight int32 lanes (lane l: values 4l..4l+3) scaled in one float chain,
 * as ggml_vec_dot_q4_0_q8_0 and its kin sum them. */
static float dot_blocks_scalar(const kern_mat *w, int i, const kern_act *x) {
    const uint8_t *row = block_row(w, i);
    float acc[8] = {0}, off = 0.0f;

    for (int g = 0; g < w->cols / 32; g++) {
        int8_t q[32];
        int32_t lane[8] = {0};
        float a[2], b;
        quant_unpack32(w->type, row, g, q, a, &b);
        for (int k = 0; k < 32; k++)
            lane[k / 4] += q[k] * x->q[(size_t)g * 32 + k];
        if (w->x8) {
            for (int l = 1; l < 8; l++)
                lane[0] += lane[l];
            acc[0] = fmaf((float)lane[0], a[0] * x->s[g], acc[0]);
            continue;
        }
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(a[0] * x->s[g], (float)lane[l], acc[l]);
        off = fmaf(b, x->sum[g], off); /* ggml's summs, contracted */
    }
    return w->x8 ? acc[0] : hsum8_scalar(acc) + off;
}

/* Row i of a K-quant matrix times a Q8_K activation in the order of
 * ggml's AVX2 ggml_vec_dot_q{4,5,6}_K_q8_K: per block, eight int32 lanes
 * of integer scale x product sums, one float FMA per lane; the mins times
 * the group sums as integers, in four float lanes (Q4_K) or one sum
 * (Q5_K; a fused multiply-add, as gcc compiles ggml's scalar line). */
static float dot_kquant_scalar(const kern_mat *w, int i, const kern_act *x) {
    const uint8_t *row = block_row(w, i);
    float acc[8] = {0}, accm[4] = {0}, summs = 0.0f;
    int elems, bytes;

    quant_block(w->type, &elems, &bytes);

    for (int k = 0; k < w->cols / 256; k++) {
        quant_kscales h;
        int32_t lane[8] = {0}, prod[4] = {0};
        float xd = x->s[8 * k];
        quant_k_header(w->type, row + (size_t)k * bytes, &h);
        for (int g = 0; g < 8; g++) {
            int8_t q[32];
            float a[2], b;
            const int8_t *xq = x->q + (size_t)(8 * k + g) * 32;
            quant_unpack32(w->type, row, 8 * k + g, q, a, &b);
            for (int j = 0; j < 32; j++)
                lane[j / 4] += h.sc[2 * g + j / 16] * (q[j] * xq[j]);
            prod[g / 2] += h.m[g] * (int32_t)x->sum[8 * k + g];
        }
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(xd * h.d, (float)lane[l], acc[l]);
        if (w->type == KERN_Q4_K)
            for (int l = 0; l < 4; l++)
                accm[l] = fmaf(-xd * h.dmin, (float)prod[l], accm[l]);
        else if (w->type == KERN_Q5_K)
            summs = fmaf(-xd * h.dmin,
                         (float)(prod[0] + prod[1] + prod[2] + prod[3]), summs);
    }
    return hsum8_scalar(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3])) +
           summs;
}

static float dot_f32_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int j = 0; j < n; j++)
        s += a[j] * b[j];
    return s;
}

static void mv_scalar(const kern_mat *w, const kern_act *x, float *out,
                      int r0, int r1) {
    size_t n = (size_t)w->cols;

    for (int i = r0; i < r1; i++) {
        size_t base = (size_t)i * n;
        float acc = 0.0f;

        switch (w->type) {
        case KERN_F32:
            acc = dot_f32_scalar((const float *)w->q + base, x->f, (int)n);
            break;
        case KERN_F16:
            acc = dot_half_any((const uint16_t *)w->q + base, 1, x->f, (int)n);
            break;
        case KERN_Q8: {
            const int8_t *q = (const int8_t *)w->q + base;
            const float *s = w->s + base / (size_t)w->gs;
            for (size_t g = 0; g < n / (size_t)w->gs; g++) {
                int32_t si = 0;
                for (int k = 0; k < w->gs; k++)
                    si += q[g * w->gs + k] * x->q[g * w->gs + k];
                acc += (float)si * s[g] * x->s[g];
            }
            break;
        }
        case KERN_BF16:
            acc = dot_bf16_any((const uint16_t *)w->q + base, x->f, (int)n);
            break;
        case KERN_Q4_K:
        case KERN_Q5_K:
        case KERN_Q6_K:
            acc = dot_kquant_scalar(w, i, x);
            break;
        default: /* blocks: int8 x int8 per group, as the SIMD kernels */
            acc = dot_blocks_scalar(w, i, x);
            break;
        }
        out[i] = acc;
    }
}

/* --------------------------------------------------------- AVX2 kernels */

#ifdef KERN_X86
/* Weights are read once per token from DRAM. In the int8 loops, which do
 * more work per byte, the hardware prefetcher alone leaves the misses and
 * the arithmetic serialized; asking for the data ahead keeps enough
 * misses in flight to run near the streaming-read bandwidth (measured:
 * ~90% instead of ~65% of it, 4 KiB ahead into L1, on the machine kind
 * of sessions 1-14). On an AMD EPYC with AVX-512 (Zen 4), a request into
 * L1 holds one of the core's few L1 miss buffers until DRAM answers,
 * which capped a decoding stream at 13-14 GB/s of the 32-35 the core
 * reads: asking 16 KiB ahead into L2 (prefetcht1) lets the L2's larger
 * queue keep more lines in flight, and the 1-thread decode ran 1.8-1.9x
 * (F32), 1.2-1.4x (Q8_0, with KERN_RP_PF) and 1.0-1.06x (Q4_K_M) the old
 * form's speed, the two alternating (bench/model, model/README.md). The
 * line then reaches L1 from L2 by the hardware's own prefetch or on its
 * load. Prefetches never fault, so running past the end is harmless. */
#define KERN_PREFETCH 16384
#define KERN_PF(p) _mm_prefetch((const char *)(p) + KERN_PREFETCH, _MM_HINT_T1)

KERN_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KERN_AVX2 static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    float s;

    for (; j + 32 <= n; j += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8),
                             _mm256_loadu_ps(b + j + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 16),
                             _mm256_loadu_ps(b + j + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 24),
                             _mm256_loadu_ps(b + j + 24), a3);
    }
    for (; j + 8 <= n; j += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
    s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < n; j++)
        s += a[j] * b[j];
    return s;
}

/* dot_half_any in AVX2, the same sums: a half row times the half-rounded
 * activation (KERN_ACT_F16), or a query times a key: 64 lanes as eight
 * vectors, folded pairwise, the tail in double. The products are exact,
 * so FMA changes nothing. */
KERN_AVX2 static float dot_half_avx2(const void *x, int half, const float *y,
                                     int n) {
    const uint16_t *h = x;
    const float *f = x;
    __m256 a[8];
    int np = n & ~63;
    double sum;

    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_ps();
    for (int j = 0; j < np; j += 64)
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_fmadd_ps(
                half ? _mm256_cvtph_ps(
                           _mm_loadu_si128((const __m128i *)(h + j + 8 * k)))
                     : _mm256_loadu_ps(f + j + 8 * k),
                _mm256_loadu_ps(y + j + 8 * k), a[k]);
    for (int k = 0; k < 4; k++)
        a[k] = _mm256_add_ps(a[k], a[k + 4]);
    a[0] = _mm256_add_ps(a[0], a[2]);
    a[1] = _mm256_add_ps(a[1], a[3]);
    sum = np ? hsum8(_mm256_add_ps(a[0], a[1])) : 0.0f;
    for (int j = np; j < n; j++)
        sum += (double)(value_at(x, half, j) * y[j]);
    return (float)sum;
}

/* Eight cached half values as floats (exact). */
KERN_AVX2 static inline __m256 half8(const uint16_t *h) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h));
}

/* mix_half_scalar in AVX2 for eight outputs at a time: lane l of the 64
 * is a vector over the outputs, so every output's sums are the scalar
 * ones. */
KERN_AVX2 static void mix_half_avx2(const float *w, const uint16_t *v,
                                    size_t stride, int n, int np, int hs,
                                    float *out) {
    int nl = n < np ? n : np, j0 = 0;

    for (; j0 + 8 <= hs; j0 += 8) {
        __m256 a[64], r;
        __m256d s0, s1;
        for (int l = 0; l < 64; l++)
            a[l] = _mm256_setzero_ps();
        for (int t = 0; t < nl; t++)
            a[t & 63] = _mm256_fmadd_ps(
                half8(v + (size_t)t * stride + j0),
                _mm256_set1_ps(w[t]), a[t & 63]);
        for (int l = 0; l < 16; l++) {
            a[l] = _mm256_add_ps(a[l], a[l + 32]);
            a[l + 16] = _mm256_add_ps(a[l + 16], a[l + 48]);
        }
        for (int l = 0; l < 16; l++)
            a[l] = _mm256_add_ps(a[l], a[l + 16]);
        for (int l = 0; l < 8; l++)
            a[l] = _mm256_add_ps(a[l + 8], a[l]);
        for (int l = 0; l < 4; l++)
            a[l] = _mm256_add_ps(a[l + 4], a[l]);
        r = np ? _mm256_add_ps(_mm256_add_ps(a[0], a[2]),
                               _mm256_add_ps(a[1], a[3]))
               : _mm256_setzero_ps();
        s0 = _mm256_cvtps_pd(_mm256_castps256_ps128(r));
        s1 = _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1));
        for (int t = nl; t < n; t++) {
            __m256 p = _mm256_mul_ps(half8(v + (size_t)t * stride + j0),
                                     _mm256_set1_ps(w[t]));
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
        }
        _mm256_storeu_ps(out + j0, _mm256_set_m128(_mm256_cvtpd_ps(s1),
                                                   _mm256_cvtpd_ps(s0)));
    }
    mix_half_scalar(w, v, stride, n, np, j0, hs, out);
}

/* dot_bf16_any in AVX2: each 16-lane accumulator is two vectors over
 * the even and odd values of 16 (shuffled alike, so vector lane k holds
 * lane BF16_LANE[k] of the 8), put back in order for the fold. */
static const int BF16_LANE[8] = {0, 1, 4, 5, 2, 3, 6, 7};

KERN_AVX2 static float dot_bf16_avx2(const uint16_t *h, const float *x, int n) {
    __m256 c[4];
    float lanes[2][16];
    int np = n & ~63;

    for (int k = 0; k < 4; k++)
        c[k] = _mm256_setzero_ps();
    for (int i = 0; i < np; i += 16) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(h + i));
        __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(
                   _mm256_cvtepu16_epi32(_mm256_castsi256_si128(w)), 16)),
               hi = _mm256_castsi256_ps(_mm256_slli_epi32(
                   _mm256_cvtepu16_epi32(_mm256_extracti128_si256(w, 1)), 16));
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        __m256 *acc = &c[(i >> 4) & 3];
        *acc = _mm256_fmadd_ps(_mm256_shuffle_ps(lo, hi, 0xdd),
                               _mm256_shuffle_ps(x0, x1, 0xdd), *acc);
        *acc = _mm256_fmadd_ps(_mm256_shuffle_ps(lo, hi, 0x88),
                               _mm256_shuffle_ps(x0, x1, 0x88), *acc);
    }
    for (int k = 0; k < 4; k++) {
        float v[8];
        _mm256_storeu_ps(v, c[k]);
        for (int l = 0; l < 8; l++)
            lanes[k >> 1][8 * (k & 1) + BF16_LANE[l]] = v[l];
    }
    return dot_bf16_finish(lanes, np, h, x, n);
}

/* fp32, fp16 and bf16 rows. */
KERN_AVX2 static void mv_avx2(const kern_mat *w, const kern_act *x, float *out,
                              int r0, int r1) {
    size_t n = (size_t)w->cols;

    for (int i = r0; i < r1; i++) {
        size_t base = (size_t)i * n;

        if (w->type == KERN_F32)
            out[i] = dot_f32_avx2((const float *)w->q + base, x->f, (int)n);
        else if (w->type == KERN_F16)
            out[i] = dot_half_avx2((const uint16_t *)w->q + base, 1, x->f,
                                   (int)n);
        else
            out[i] = dot_bf16_avx2((const uint16_t *)w->q + base, x->f, (int)n);
    }
}

/* Eight int32 partial sums of 32 int8 products added to acc. maddubs wants
 * one unsigned operand, so the sign of w moves onto x; |w| <= 128 and
 * |x| <= 127 keep the pairwise int16 sums below saturation. The VNNI
 * form sums four products straight into int32 in one instruction. */
#define KERN_ACC32_AVX2(acc, w, x)                                            \
    _mm256_add_epi32(                                                         \
        acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w),   \
                                                    _mm256_sign_epi8(x, w)),  \
                               _mm256_set1_epi16(1)))
#define KERN_ACC32_VNNI(acc, w, x)                                            \
    _mm256_dpbusd_avx_epi32(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))

#define KERN_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))


KERN_AVX2 static inline float f16at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The int8 row loops, instantiated for AVX2 and AVX-VNNI. Two groups per
 * step with separate accumulators keep two dependency chains in flight;
 * q8_row is inlined with a constant gs for the common sizes so the inner
 * loop unrolls. Q8_0 rows are 34-byte blocks with a half-precision scale,
 * summed in one chain of eight lanes per activation as
 * ggml_vec_dot_q8_0_q8_0 sums them (its order, so the result is
 * llama.cpp's to the last bit); a batch reads each block once for all nx
 * activations. */
#define KERN_INT8_KERNELS(SUF, TARGET, ACC32)                                 \
    TARGET static inline __attribute__((always_inline)) float q8_row_##SUF(  \
        const int8_t *q, const float *s, const int8_t *xq, const float *xs,  \
        size_t ng, size_t gs) {                                               \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;                             \
        size_t g = 0;                                                         \
        for (; g + 2 <= ng; g += 2) {                                         \
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;                     \
            for (size_t o = 0; o < 2 * gs; o += 64)                           \
                KERN_PF(q + g * gs + o);                                      \
            for (size_t k = 0; k < gs; k += 32) {                             \
                s0 = ACC32(s0, KERN_LOAD(q + g * gs + k),                     \
                           KERN_LOAD(xq + g * gs + k));                       \
                s1 = ACC32(s1, KERN_LOAD(q + (g + 1) * gs + k),               \
                           KERN_LOAD(xq + (g + 1) * gs + k));                 \
            }                                                                 \
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0),                      \
                                 _mm256_set1_ps(s[g] * xs[g]), a0);           \
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1),                      \
                                 _mm256_set1_ps(s[g + 1] * xs[g + 1]), a1);   \
        }                                                                     \
        if (g < ng) {                                                         \
            __m256i s0 = _mm256_setzero_si256();                              \
            for (size_t k = 0; k < gs; k += 32)                               \
                s0 = ACC32(s0, KERN_LOAD(q + g * gs + k),                     \
                           KERN_LOAD(xq + g * gs + k));                       \
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0),                      \
                                 _mm256_set1_ps(s[g] * xs[g]), a0);           \
        }                                                                     \
        return hsum8(_mm256_add_ps(a0, a1));                                  \
    }                                                                         \
                                                                              \
    TARGET static void q8_rows_##SUF(const kern_mat *w, const kern_act *x,    \
                                     float *out, int r0, int r1) {            \
        size_t n = (size_t)w->cols, gs = (size_t)w->gs, ng = n / gs;          \
        for (int i = r0; i < r1; i++) {                                       \
            const int8_t *q = (const int8_t *)w->q + (size_t)i * n;           \
            const float *s = w->s + (size_t)i * ng;                           \
            if (gs == 64)                                                     \
                out[i] = q8_row_##SUF(q, s, x->q, x->s, ng, 64);              \
            else if (gs == 32)                                                \
                out[i] = q8_row_##SUF(q, s, x->q, x->s, ng, 32);              \
            else                                                              \
                out[i] = q8_row_##SUF(q, s, x->q, x->s, ng, gs);              \
        }                                                                     \
    }                                                                         \
                                                                              \
    TARGET static void q8_0_rows_##SUF(const kern_mat *w, const kern_act *x,  \
                                       int nx, float *out, size_t stride,     \
                                       int r0, int r1) {                      \
        size_t nb = (size_t)w->cols / KERN_Q8_0_BLOCK;                        \
        for (int i = r0; i < r1; i++) {                                       \
            const uint8_t *b =                                                \
                (const uint8_t *)w->q + (size_t)i * nb * KERN_Q8_0_BYTES;     \
            __m256 acc[KERN_MAX_ACTS];                                        \
            for (int t = 0; t < nx; t++)                                      \
                acc[t] = _mm256_setzero_ps();                                 \
            for (size_t g = 0; g < nb; g++, b += KERN_Q8_0_BYTES) {           \
                __m256i wv = KERN_LOAD(b + 2);                                \
                float d = f16at(b);                                           \
                if (!(g & 1))                                                 \
                    KERN_PF(b);                                               \
                for (int t = 0; t < nx; t++)                                  \
                    acc[t] = _mm256_fmadd_ps(                                 \
                        _mm256_cvtepi32_ps(ACC32(_mm256_setzero_si256(), wv,  \
                                                 KERN_LOAD(x[t].q + g * 32))), \
                        _mm256_set1_ps(d * x[t].s[g]), acc[t]);               \
            }                                                                 \
            for (int t = 0; t < nx; t++)                                      \
                out[stride * (size_t)t + (size_t)i] = hsum8(acc[t]);          \
        }                                                                     \
    }

KERN_INT8_KERNELS(avx2, KERN_AVX2, KERN_ACC32_AVX2)
KERN_INT8_KERNELS(vnni, KERN_VNNI, KERN_ACC32_VNNI)

KERN_AVX2 static inline __m256i nib_lo(__m256i v) {
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}
KERN_AVX2 static inline __m256i nib_hi(__m256i v) {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
}

/* 16 bytes of packed nibbles as 32 values: low nibbles, then high. */
KERN_AVX2 static inline __m256i nibbles32(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m),
                            _mm_and_si128(v, m));
}

/* Bit j of the 32 bits at p as byte j: 0x10 where set, else 0 (the fifth
 * bit of a Q5 value). Each byte picks its source byte of the broadcast
 * word, then tests its own bit. */
KERN_AVX2 static inline __m256i fifth_bits(const uint8_t *p) {
    uint32_t u;
    __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull), v;
    memcpy(&u, p, 4);
    v = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)u),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                         2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Unpacking a 32-value block into int8 weights w with its scale a and
 * offset bo, so that value j is a * w[j] + bo. */
KERN_AVX2 static inline __m256i up_q45(int type, const uint8_t *b, float *a,
                                       float *bo) {
    int one = type == KERN_Q4_1 || type == KERN_Q5_1;
    int five = type == KERN_Q5_0 || type == KERN_Q5_1;
    __m256i v = nibbles32(b + 2 + 2 * one + 4 * five);
    if (five)
        v = _mm256_or_si256(v, fifth_bits(b + 2 + 2 * one));
    *a = f16at(b);
    *bo = one ? f16at(b + 2) : 0.0f;
    return _mm256_sub_epi8(v, _mm256_set1_epi8(one ? 0 : five ? 16 : 8));
}

/* The 256 values of a Q4_K or Q5_K block as eight int8 groups of 32. */
KERN_AVX2 static inline __attribute__((always_inline)) void up_qk45(int type, const uint8_t *b, __m256i *w) {
    int five = type == KERN_Q5_K;
    const uint8_t *qs = b + (five ? 48 : 16);
    __m256i qh = five ? KERN_LOAD(b + 16) : _mm256_setzero_si256();
    __m256i one = _mm256_set1_epi8(1);

    for (int c = 0; c < 4; c++) {
        __m256i v = KERN_LOAD(qs + 32 * c);
        w[2 * c] = nib_lo(v);
        w[2 * c + 1] = nib_hi(v);
        if (five) {
            __m256i b0 = _mm256_and_si256(
                _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
            __m256i b1 = _mm256_and_si256(
                _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
            w[2 * c] = _mm256_or_si256(w[2 * c], _mm256_slli_epi16(b0, 4));
            w[2 * c + 1] =
                _mm256_or_si256(w[2 * c + 1], _mm256_slli_epi16(b1, 4));
        }
    }
}

/* The 256 values of a Q6_K block, minus 32, as eight int8 groups. */
KERN_AVX2 static inline __attribute__((always_inline)) void up_q6k(const uint8_t *b, __m256i *w) {
    __m256i m30 = _mm256_set1_epi8(0x30), m32 = _mm256_set1_epi8(32);

    for (int h = 0; h < 2; h++) {
        __m256i l0 = KERN_LOAD(b + 64 * h), l1 = KERN_LOAD(b + 64 * h + 32),
                qh = KERN_LOAD(b + 128 + 32 * h);
        __m256i *o = w + 4 * h;
        o[0] = _mm256_or_si256(nib_lo(l0),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        o[1] = _mm256_or_si256(nib_lo(l1),
                               _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        o[2] = _mm256_or_si256(nib_hi(l0), _mm256_and_si256(qh, m30));
        o[3] = _mm256_or_si256(nib_hi(l1),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        for (int q = 0; q < 4; q++)
            o[q] = _mm256_sub_epi8(o[q], m32);
    }
}

/* A K-quant block's integer scales as maddubs/madd wants them: sc[q]
 * holds group q's scale for values 0-15 in int16 elements 0-7 and for
 * 16-31 in 8-15 (the same for Q4_K and Q5_K), m its min; the half scales
 * d and dmin. quant_k_header with the scale bytes unpacked four at a
 * time. */
KERN_AVX2 static inline __attribute__((always_inline)) void kscales(int type, const uint8_t *b, __m256i *sc,
                                     int32_t *m, float *d, float *dmin) {
    if (type == KERN_Q6_K) {
        const int8_t *s = (const int8_t *)(b + 192);
        for (int q = 0; q < 8; q++) {
            sc[q] = _mm256_set_m128i(_mm_set1_epi16(s[2 * q + 1]),
                                     _mm_set1_epi16(s[2 * q]));
            m[q] = 0;
        }
        *d = f16at(b + 208);
        *dmin = 0.0f;
    } else {
        uint32_t u[3], v[4];
        uint8_t by[16];
        memcpy(u, b + 4, 12);
        v[0] = u[0] & 0x3f3f3f3fu;                                /* sc 0-3 */
        v[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u); /* sc 4-7 */
        v[2] = u[1] & 0x3f3f3f3fu;                                /* m 0-3 */
        v[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
        memcpy(by, v, 16);
        for (int q = 0; q < 8; q++) {
            sc[q] = _mm256_set1_epi16(by[q]);
            m[q] = by[8 + q];
        }
        *d = f16at(b);
        *dmin = f16at(b + 2);
    }
}

/* The sum of eight int32 lanes (exact in any order). */
KERN_AVX2 static inline int32_t hsum8_i32(__m256i v) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v),
                              _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

KERN_AVX2 static inline float hsum4(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

/* Rows of 32-value blocks (Q4_0, Q4_1, Q5_0, Q5_1) times nx int8
 * activations, instantiated for AVX2 and AVX-VNNI: each block is unpacked
 * once and every activation multiplies it into eight int32 lanes, scaled
 * into one float chain per activation, the offsets (Q4_1, Q5_1) times the
 * activation's group sums in another: ggml_vec_dot_q4_0_q8_0 and its kin
 * sum in that order, and an activation's arithmetic never depends on nx,
 * so a sequence's logits do not depend on what it was batched with.
 *
 * The K-quants (Q4_K, Q5_K, Q6_K) multiply a Q8_K activation as ggml's
 * AVX2 kernels do: per block, eight int32 lanes of integer scale x
 * product sums, one float FMA per block; the mins times the group sums
 * as integers, into four float lanes (Q4_K) or one float (Q5_K). */
#define KERN_BLOCK_KERNELS(SUF, TARGET, ACC32)                                \
    TARGET static void blocks_##SUF(const kern_mat *w, const kern_act *x,    \
                                    int nx, float *out, size_t stride,       \
                                    int r0, int r1) {                         \
        int nb = w->cols / 32;                                                \
        for (int i = r0; i < r1; i++) {                                       \
            const uint8_t *blk = block_row(w, i);                             \
            __m256 acc[KERN_MAX_ACTS];                                        \
            float off[KERN_MAX_ACTS];                                         \
            int bytes = (int)(kern_mat_bytes(w) / (size_t)w->rows) / nb;      \
            for (int t = 0; t < nx; t++) {                                    \
                acc[t] = _mm256_setzero_ps();                                 \
                off[t] = 0.0f;                                                \
            }                                                                 \
            for (int g = 0; g < nb; g++, blk += bytes) {                      \
                float a, bo;                                                  \
                __m256i wv = up_q45(w->type, blk, &a, &bo);                   \
                KERN_PF(blk);                                                 \
                for (int t = 0; t < nx; t++) {                                \
                    __m256i p = ACC32(_mm256_setzero_si256(), wv,             \
                                      KERN_LOAD(x[t].q + 32 * g));            \
                    if (w->x8) { /* off[t] is the one float chain */         \
                        off[t] = fmaf((float)hsum8_i32(p), a * x[t].s[g],     \
                                      off[t]);                                \
                        continue;                                             \
                    }                                                         \
                    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a * x[t].s[g]),   \
                                             _mm256_cvtepi32_ps(p), acc[t]);  \
                    off[t] = fmaf(bo, x[t].sum[g], off[t]);                   \
                }                                                             \
            }                                                                 \
            for (int t = 0; t < nx; t++)                                      \
                out[stride * (size_t)t + (size_t)i] =                         \
                    w->x8 ? off[t] : hsum8(acc[t]) + off[t];                  \
        }                                                                     \
    }                                                                         \
                                                                              \
    TARGET static void kquant_##SUF(const kern_mat *w, const kern_act *x,    \
                                    int nx, float *out, size_t stride,       \
                                    int r0, int r1) {                         \
        int elems, bytes, nb, q4k = w->type == KERN_Q4_K,                     \
                              q6k = w->type == KERN_Q6_K;                     \
        quant_block(w->type, &elems, &bytes);                                 \
        nb = w->cols / elems;                                                 \
        for (int i = r0; i < r1; i++) {                                       \
            const uint8_t *blk = block_row(w, i);                             \
            __m256 acc[KERN_MAX_ACTS];                                        \
            __m128 accm[KERN_MAX_ACTS];                                       \
            float summs[KERN_MAX_ACTS];                                       \
            for (int t = 0; t < nx; t++) {                                    \
                acc[t] = _mm256_setzero_ps();                                 \
                accm[t] = _mm_setzero_ps();                                   \
                summs[t] = 0.0f;                                              \
            }                                                                 \
            for (int k = 0; k < nb; k++, blk += bytes) {                      \
                __m256i wv[8], wa[8], sc[8];                                  \
                int32_t mn[8];                                                \
                float d, dmin;                                                \
                KERN_PF(blk);                                                 \
                if (q6k)                                                      \
                    up_q6k(blk, wv);                                          \
                else                                                          \
                    up_qk45(w->type, blk, wv);                                \
                kscales(w->type, blk, sc, mn, &d, &dmin);                     \
                /* maddubs wants one unsigned operand: Q6_K's sign moves   \
                 * onto the activation. */                                  \
                for (int q = 0; q < 8; q++)                                   \
                    wa[q] = q6k ? _mm256_sign_epi8(wv[q], wv[q]) : wv[q];     \
                for (int t = 0; t < nx; t++) {                                \
                    const int8_t *xq = x[t].q + 256 * (size_t)k;              \
                    const float *xsum = x[t].sum + 8 * k;                     \
                    float xd = x[t].s[8 * k];                                 \
                    __m256i sumi = _mm256_setzero_si256();                    \
                    for (int q = 0; q < 8; q++) {                             \
                        __m256i xv = KERN_LOAD(xq + 32 * q);                  \
                        if (q6k)                                              \
                            xv = _mm256_sign_epi8(xv, wv[q]);                 \
                        sumi = _mm256_add_epi32(                              \
                            sumi, _mm256_madd_epi16(                          \
                                      _mm256_maddubs_epi16(wa[q], xv), sc[q])); \
                    }                                                         \
                    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(xd * d),          \
                                             _mm256_cvtepi32_ps(sumi), acc[t]); \
                    if (!q6k) {                                               \
                        int32_t p[4];                                         \
                        float dm = -xd * dmin;                                \
                        for (int l = 0; l < 4; l++)                           \
                            p[l] = mn[2 * l] * (int32_t)xsum[2 * l] +         \
                                   mn[2 * l + 1] * (int32_t)xsum[2 * l + 1];  \
                        if (q4k)                                              \
                            accm[t] = _mm_fmadd_ps(                           \
                                _mm_set1_ps(dm),                              \
                                _mm_cvtepi32_ps(_mm_loadu_si128(              \
                                    (const __m128i *)p)),                     \
                                accm[t]);                                     \
                        else                                                  \
                            summs[t] = fmaf(dm, (float)(p[0] + p[1] + p[2] + p[3]), \
                                            summs[t]);                        \
                    }                                                         \
                }                                                             \
            }                                                                 \
            for (int t = 0; t < nx; t++)                                      \
                out[stride * (size_t)t + (size_t)i] =                         \
                    hsum8(acc[t]) + hsum4(accm[t]) + summs[t];                \
        }                                                                     \
    }

KERN_BLOCK_KERNELS(avx2, KERN_AVX2, KERN_ACC32_AVX2)
KERN_BLOCK_KERNELS(vnni, KERN_VNNI, KERN_ACC32_VNNI)

/* ------------------------------------------------------- AVX-512 tiles */

/* A batched product (a prompt's tokens, or model_batch_step's sequences)
 * runs as tiles of R rows x N register columns: each weight block is
 * loaded once per tile for all N columns and each activation block once
 * for all R rows, so the arithmetic, not the loads, sets the speed. A
 * tile keeps every product's own summation order (one accumulator per
 * row, activation and lane, blocks taken in order), so its results are
 * the per-row kernels' to the bit. The tile functions are always inlined
 * with constant R and N, so their accumulators stay in registers. */
#define KERN_TILE_N 4 /* register columns of a tile */
#define KERN_KQ_N 8  /* activations of a K-quant tile */
#define KERN_DEC_R 8  /* rows of a Q8_0 decode tile, two to a register */
#define KERN_DEC_G 64 /* blocks whose scales a decode tile copies at once */
#define KERN_INLINE inline __attribute__((always_inline))
/* -O2 does not unroll the loops over a tile's rows and columns by itself;
 * unrolled, its accumulators are registers rather than stack slots. */
#define KERN_UNROLL _Pragma("GCC unroll 4")
#define KERN_UNROLL8 _Pragma("GCC unroll 8")

/* Calls TILE for nc (1..KERN_TILE_N) columns as a constant. */
#define KERN_TILE_COLS(TILE, w, x, nc, out, stride, i, R)                     \
    do {                                                                      \
        switch (nc) {                                                         \
        case 1: TILE(w, x, 1, out, stride, i, R, 1); break;                   \
        case 2: TILE(w, x, 2, out, stride, i, R, 2); break;                   \
        case 3: TILE(w, x, 3, out, stride, i, R, 3); break;                   \
        default: TILE(w, x, 4, out, stride, i, R, 4); break;                  \
        }                                                                     \
    } while (0)

/* The F32 tile driver: rows r0..r1 in tiles of TR (then single rows), the
 * activations in groups of KERN_TILE_N columns. */
#define KERN_TILE_DRIVER(NAME, TILE, TR)                                      \
    KERN_AVX512 static void NAME(const kern_mat *w, const kern_act *x,       \
                                 int nx, float *out, size_t stride, int r0,  \
                                 int r1) {                                    \
        for (int t = 0; t < nx; t += KERN_TILE_N) {                           \
            int nc = nx - t < KERN_TILE_N ? nx - t : KERN_TILE_N, i = r0;     \
            float *o = out + stride * (size_t)t;                              \
            for (; i + (TR) <= r1; i += (TR))                                 \
                KERN_TILE_COLS(TILE, w, x + t, nc, o, stride, i, TR);         \
            for (; i < r1; i++)                                               \
                KERN_TILE_COLS(TILE, w, x + t, nc, o, stride, i, 1);          \
        }                                                                     \
    }

/* The driver of the Q8_0 and K-quant tiles: the activations in groups of
 * up to KERN_KQ_N, each group's rows r0..r1 in tiles of TR1 rows (one
 * activation) or TRN (more), then pairs, then the last row;
 * TILE(w, x, n, out, stride, i, R) with n and R constants. */
#define KERN_WIDE_ROWS(TILE, n, TR)                                           \
    do {                                                                      \
        int i = r0;                                                           \
        for (; i + (TR) <= r1; i += (TR))                                     \
            TILE(w, x + t, n, o, stride, i, TR);                              \
        for (; i + 2 <= r1; i += 2)                                           \
            TILE(w, x + t, n, o, stride, i, 2);                               \
        if (i < r1)                                                           \
            TILE(w, x + t, n, o, stride, i, 1);                               \
    } while (0)
#define KERN_WIDE_CASE(TILE, n, TR)                                           \
    case n:                                                                   \
        KERN_WIDE_ROWS(TILE, n, TR);                                          \
        break
/* PREP(w, x, n) runs once per group of n activations before its rows
 * (what a tile takes from the activations alone, kq_prepare). */
#define KERN_WIDE_DRIVER(NAME, TILE, TR1, TRN, PREP)                          \
    KERN_AVX512 static void NAME(const kern_mat *w, const kern_act *x,       \
                                 int nx, float *out, size_t stride, int r0,  \
                                 int r1) {                                    \
        for (int t = 0; t < nx; t += KERN_KQ_N) {                             \
            float *o = out + stride * (size_t)t;                              \
            int nt = nx - t < KERN_KQ_N ? nx - t : KERN_KQ_N;                 \
            PREP(w, x + t, nt);                                               \
            switch (nt) {                                                     \
                KERN_WIDE_CASE(TILE, 1, TR1);                                 \
                KERN_WIDE_CASE(TILE, 2, TRN);                                 \
                KERN_WIDE_CASE(TILE, 3, TRN);                                 \
                KERN_WIDE_CASE(TILE, 4, TRN);                                 \
                KERN_WIDE_CASE(TILE, 5, TRN);                                 \
                KERN_WIDE_CASE(TILE, 6, TRN);                                 \
                KERN_WIDE_CASE(TILE, 7, TRN);                                 \
            default:                                                          \
                KERN_WIDE_ROWS(TILE, 8, TRN);                                 \
            }                                                                 \
        }                                                                     \
    }

/* The two 256-bit halves of v. */
KERN_AVX512 static KERN_INLINE __m256 lo256(__m512 v) {
    return _mm512_castps512_ps256(v);
}
KERN_AVX512 static KERN_INLINE __m256 hi256(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* The 32 bytes at a and the 32 at b as one register: two activations'
 * blocks side by side. */
KERN_AVX512 static KERN_INLINE __m512i pair_si(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(KERN_LOAD(a)),
                              KERN_LOAD(b), 1);
}

/* *a in the low eight lanes, *b in the high eight (two broadcasts). */
KERN_AVX512 static KERN_INLINE __m512 pair_ps(const float *a, const float *b) {
    return _mm512_mask_broadcastss_ps(_mm512_set1_ps(*a), 0xff00,
                                      _mm_load_ss(b));
}


/* Q8_0 rows i..i+R times activations x[0..N) (R <= 8 for one
 * activation, R <= 4 and N <= KERN_KQ_N for more), two rows to a
 * register: the low half of pair p holds row i+2p's eight lanes of
 * q8_0_rows' chain for an activation, the high half row i+2p+1's (row
 * i+R-1 again when R is odd); weights are loaded once per block for
 * all N and each activation block (broadcast to both halves) once for
 * all R rows. vpdpbusd multiplies unsigned by signed bytes, so the
 * weights go in as w + 128 (w ^ 0x80) and each accumulator starts at
 * -128 times the sum of its four activation values: the int32 lane is
 * then exactly the signed sum, as in q8_0_rows. The rows' half
 * scales are first copied side by side (KERN_DEC_G blocks at a time;
 * scalar loads and stores, which leave the vector ports to the products),
 * then converted eight at a time: picked out of the blocks in the vector
 * loop they cost more than the products. Each row's float chain, scale
 * product (weight's times activation's) and fold are q8_0_rows', so the
 * results are its to the bit. The tile after next is prefetched, front to
 * back (its rows are contiguous), so every row of it is asked for a
 * tile's time or more before it is read: decoding streams each matrix
 * once. */
KERN_AVX512 static KERN_INLINE void q8_0_dec(const kern_mat *w,
                                             const kern_act *x, int N,
                                             float *out, size_t stride, int i,
                                             int R) {
    size_t nb = (size_t)w->cols / KERN_Q8_0_BLOCK, rb = nb * KERN_Q8_0_BYTES;
    const uint8_t *row = (const uint8_t *)w->q + (size_t)i * rb;
    const char *pf = (const char *)row + 2 * (size_t)R * rb;
    const __m512i off = _mm512_set1_epi8((char)0x80);
    const uint8_t *at[KERN_DEC_R];
    uint16_t sc[KERN_DEC_G][KERN_DEC_R] = {{0}};
    int P = (R + 1) / 2;
    __m512 acc[KERN_DEC_R / 2][KERN_KQ_N];
    __m512i idx[KERN_DEC_R / 2];

    assert(R >= 1 && N >= 1 && (N == 1 ? R <= KERN_DEC_R : R <= 4) &&
           N <= KERN_KQ_N);
    KERN_UNROLL8
    for (int r = 0; r < KERN_DEC_R; r++)
        at[r] = row + (size_t)(r < R ? r : R - 1) * rb;
    KERN_UNROLL
    for (int p = 0; p < P; p++) {
        idx[p] = _mm512_inserti64x4(_mm512_set1_epi32(2 * p),
                                    _mm256_set1_epi32(2 * p + 1 < R ? 2 * p + 1
                                                                    : R - 1),
                                    1);
        KERN_UNROLL8
        for (int c = 0; c < N; c++)
            acc[p][c] = _mm512_setzero_ps();
    }
    for (size_t g0 = 0; g0 < nb; g0 += KERN_DEC_G) {
        size_t ng = nb - g0 < KERN_DEC_G ? nb - g0 : KERN_DEC_G;
        for (size_t g = 0; g < ng; g++)
            KERN_UNROLL8
            for (int r = 0; r < R; r++)
                memcpy(&sc[g][r], at[r] + (g0 + g) * KERN_Q8_0_BYTES, 2);
        for (size_t g = g0; g < g0 + ng; g++, pf += (size_t)R * KERN_Q8_0_BYTES) {
            const size_t o = g * KERN_Q8_0_BYTES + 2;
            __m256 dw = _mm256_cvtph_ps(
                _mm_loadu_si128((const __m128i *)sc[g - g0]));
            __m512i wv[KERN_DEC_R / 2];
            __m512 d[KERN_DEC_R / 2];
            /* one activation: its scale taken into the rows' at once */
            if (N == 1)
                dw = _mm256_mul_ps(dw, _mm256_set1_ps(x->s[g]));
            /* R x 34 bytes a block step, in lines */
            for (int l = 0; l < R * KERN_Q8_0_BYTES; l += 64)
                _mm_prefetch(pf + l, _MM_HINT_T0);
            KERN_UNROLL
            for (int p = 0; p < P; p++) {
                wv[p] = _mm512_xor_si512(
                    pair_si(at[2 * p] + o, at[2 * p + 1] + o), off);
                d[p] = _mm512_permutexvar_ps(idx[p],
                                             _mm512_castps256_ps512(dw));
            }
            KERN_UNROLL8
            for (int c = 0; c < N; c++) {
                __m512i xv =
                    _mm512_broadcast_i64x4(KERN_LOAD(x[c].q + 32 * g));
                __m512i neg = _mm512_sub_epi32(
                    _mm512_setzero_si512(),
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, xv));
                KERN_UNROLL
                for (int p = 0; p < P; p++)
                    acc[p][c] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(
                            _mm512_dpbusd_epi32(neg, wv[p], xv)),
                        N == 1 ? d[p]
                               : _mm512_mul_ps(d[p],
                                               _mm512_set1_ps(x[c].s[g])),
                        acc[p][c]);
            }
        }
    }
    KERN_UNROLL8
    for (int c = 0; c < N; c++)
        KERN_UNROLL
        for (int p = 0; p < P; p++) {
            out[stride * (size_t)c + (size_t)(i + 2 * p)] =
                hsum8(lo256(acc[p][c]));
            if (2 * p + 1 < R)
                out[stride * (size_t)c + (size_t)(i + 2 * p + 1)] =
                    hsum8(hi256(acc[p][c]));
        }
}

#define KERN_NO_PREP(w, x, n) (void)0
KERN_WIDE_DRIVER(q8_0_rows512, q8_0_dec, KERN_DEC_R, 4, KERN_NO_PREP)

/* q8_0_dec's products on kern_repack's copy: the KERN_RP_ROWS rows
 * i..i+16 times activations x[0..N) (N <= KERN_RP_N). Register j of a
 * block holds value group j (values 4j..4j+3, vpdpbusd's lane) of all 16
 * rows, so each of ggml's eight int32 lanes per row, block and activation
 * is a lane of its own register: one `vpdpbusd` with the activation's
 * four values broadcast gives lane j of 16 rows, started at −128 × those
 * values' sum (the weights are offset by 128, so the lanes are exact);
 * the 16 rows' scale products d_w·d_x are one multiply per block and
 * activation (not one per two rows), and the lanes fold by hsum8's order
 * across the eight registers. Same int32 lanes, scale products, FMA chain
 * and fold as q8_0_dec, so the same bits, with about two thirds of its
 * vector instructions per row and activation. The group's scales and
 * values are one stream each, prefetched KERN_RP_PF ahead by the first
 * of the group's `npass` passes (one per KERN_RP_N activations).
 *
 * With more than one pass, the later ones would find every byte in L1
 * and leave the memory idle while the first waits on it (five sequences
 * took the time of their arithmetic plus one sequence's stream), so each
 * pass also asks for a share of the next group into L2: pass p, block g
 * with g % npass == p, that block's lines of the next group (`next`;
 * NULL for the last group of a matrix, and with a single pass). */

#define KERN_RP_PF KERN_PREFETCH /* into L2, as KERN_PF */
#define KERN_RP_N 3 /* activations of a tile: 24 of the 32 registers sum */
#define KERN_RP_PRE 32 /* blocks whose offset terms are formed at once */
KERN_AVX512 static KERN_INLINE void q8_0_rp(const kern_mat *w,
                                            const kern_act *x, int N,
                                            float *out, size_t stride, int i,
                                            int pass, int npass) {
    size_t nb = (size_t)w->cols / KERN_Q8_0_BLOCK, gb = rp_group_bytes(w);
    const uint8_t *grp = (const uint8_t *)w->rp + (size_t)(i / KERN_RP_ROWS) * gb;
    const uint8_t *next =
        npass > 1 && i + 2 * KERN_RP_ROWS <= w->rows ? grp + gb : NULL;
    const uint16_t *sc = (const uint16_t *)(const void *)grp;
    const uint8_t *qs = grp + rp_scale_bytes(nb);
    int turn = 0; /* g % npass */
    const __m256i off = _mm256_set1_epi8((char)0x80);
    __m512 acc[KERN_RP_N][8];

    assert(N >= 1 && N <= KERN_RP_N && i % KERN_RP_ROWS == 0);
    KERN_UNROLL
    for (int c = 0; c < N; c++)
        KERN_UNROLL8
        for (int j = 0; j < 8; j++)
            acc[c][j] = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < nb; g0 += KERN_RP_PRE) {
        size_t g1 = nb - g0 < KERN_RP_PRE ? nb : g0 + KERN_RP_PRE;
        /* −128 × each four values' sum, formed for a run of blocks ahead
         * and broadcast lane by lane from memory: formed block by block,
         * gcc moved each lane to its broadcast by two shuffles, and a load
         * right after the store waits on it */
        int32_t neg[KERN_RP_N][KERN_RP_PRE][8] __attribute__((aligned(32)));
        KERN_UNROLL
        for (int c = 0; c < N; c++)
            for (size_t g = g0; g < g1; g++)
                _mm256_store_si256(
                    (__m256i *)(void *)neg[c][g - g0],
                    _mm256_sub_epi32(
                        _mm256_setzero_si256(),
                        _mm256_dpbusd_epi32(_mm256_setzero_si256(), off,
                                            KERN_LOAD(x[c].q + 32 * g))));
        for (size_t g = g0; g < g1; g++) {
            const uint8_t *q = qs + g * KERN_RP_ROWS * KERN_Q8_0_BLOCK;
            /* widened from half: exact */
            __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(
                       (const __m256i *)(const void *)(sc + g * KERN_RP_ROWS))),
                   d[KERN_RP_N];
            if (pass == 0) {
                _mm_prefetch((const char *)(sc + g * KERN_RP_ROWS) + KERN_RP_PF,
                             _MM_HINT_T1);
                for (int l = 0; l < KERN_RP_ROWS * KERN_Q8_0_BLOCK; l += 64)
                    _mm_prefetch((const char *)q + KERN_RP_PF + l, _MM_HINT_T1);
            }
            if (next && turn == pass) {
                _mm_prefetch((const char *)(sc + g * KERN_RP_ROWS) + gb,
                             _MM_HINT_T1);
                for (int l = 0; l < KERN_RP_ROWS * KERN_Q8_0_BLOCK; l += 64)
                    _mm_prefetch((const char *)q + gb + l, _MM_HINT_T1);
            }
            turn = turn + 1 < npass ? turn + 1 : 0;
            KERN_UNROLL
            for (int c = 0; c < N; c++)
                d[c] = _mm512_mul_ps(dw, _mm512_set1_ps(x[c].s[g]));
            KERN_UNROLL8
            for (int j = 0; j < 8; j++) {
                __m512i wv = _mm512_load_si512((const void *)(q + 64 * j));
                KERN_UNROLL
                for (int c = 0; c < N; c++) {
                    int32_t xj;
                    memcpy(&xj, x[c].q + 32 * g + 4 * j, sizeof xj);
                    acc[c][j] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(
                            _mm512_set1_epi32(neg[c][g - g0][j]), wv,
                            _mm512_set1_epi32(xj))),
                        d[c], acc[c][j]);
                }
            }
        }
    }
    KERN_UNROLL
    for (int c = 0; c < N; c++) {
        /* hsum8: (l0 + l4) + (l2 + l6), (l1 + l5) + (l3 + l7), their sum */
        __m512 t[4];
        for (int j = 0; j < 4; j++)
            t[j] = _mm512_add_ps(acc[c][j], acc[c][j + 4]);
        _mm512_storeu_ps(out + stride * (size_t)c + (size_t)i,
                         _mm512_add_ps(_mm512_add_ps(t[0], t[2]),
                                       _mm512_add_ps(t[1], t[3])));
    }
}

/* The tile of rows a.. for activations x + t .. x + t + n, pass t / 3. */
#define KERN_RP_CASE(n)                                                       \
    case n:                                                                   \
        q8_0_rp(w, x + t, n, o, stride, a, t / KERN_RP_N, npass);             \
        break

/* Rows r0..r1 of a repacked Q8_0 matrix: the whole tiles from the copy,
 * the rows before the first and after the last (a pool part's edges, the
 * rows past the last whole run) by q8_0_rows512 from w->q. A row group's
 * bytes stay in L1 from one group of KERN_RP_N activations to the next. */
KERN_AVX512 static void q8_0_rp_rows(const kern_mat *w, const kern_act *x,
                                     int nx, float *out, size_t stride,
                                     int r0, int r1) {
    const int R = KERN_RP_ROWS;
    int full = w->rows / R * R;
    int a0 = (r0 + R - 1) / R * R, b0;
    int npass = (nx + KERN_RP_N - 1) / KERN_RP_N;

    a0 = a0 < r1 ? a0 : r1;
    b0 = a0 < full ? (r1 < full ? r1 : full) / R * R : a0;
    b0 = b0 > a0 ? b0 : a0;
    if (r0 < a0)
        q8_0_rows512(w, x, nx, out, stride, r0, a0);
    for (int a = a0; a < b0; a += R) {
        for (int t = 0; t < nx; t += KERN_RP_N) {
            float *o = out + stride * (size_t)t;
            switch (nx - t < KERN_RP_N ? nx - t : KERN_RP_N) {
                KERN_RP_CASE(1);
                KERN_RP_CASE(2);
            default:
                KERN_RP_CASE(3);
            }
        }
    }
    if (b0 < r1)
        q8_0_rows512(w, x, nx, out, stride, b0, r1);
}

/* F32 rows i..i+R times activations x[0..N), one to a column, in
 * dot_f32_avx2's order: its four eight-lane accumulators are two 16-lane
 * ones here (lanes 0-15 and 16-31 of each 32-value step), the 8-value
 * steps go into the first eight lanes, the sums fold as it folds them
 * and the last values are added one by one. */
KERN_AVX512 static KERN_INLINE void f32_tile(const kern_mat *w,
                                             const kern_act *x, int nt,
                                             float *out, size_t stride, int i,
                                             int R, int N) {
    int n = w->cols, j = 0;
    const float *wr[2];
    __m512 lo[2][KERN_TILE_N], hi[2][KERN_TILE_N];

    assert(nt == N && R <= 2);
    (void)nt;
    KERN_UNROLL
    for (int r = 0; r < R; r++) {
        wr[r] = (const float *)w->q + (size_t)(i + r) * (size_t)n;
        KERN_UNROLL
        for (int c = 0; c < N; c++)
            lo[r][c] = hi[r][c] = _mm512_setzero_ps();
    }
    for (; j + 32 <= n; j += 32) {
        __m512 w0[2], w1[2];
        KERN_UNROLL
        for (int r = 0; r < R; r++) {
            KERN_PF(wr[r] + j);
            KERN_PF(wr[r] + j + 16);
            w0[r] = _mm512_loadu_ps(wr[r] + j);
            w1[r] = _mm512_loadu_ps(wr[r] + j + 16);
        }
        KERN_UNROLL
        for (int c = 0; c < N; c++) {
            __m512 x0 = _mm512_loadu_ps(x[c].f + j),
                   x1 = _mm512_loadu_ps(x[c].f + j + 16);
            KERN_UNROLL
            for (int r = 0; r < R; r++) {
                lo[r][c] = _mm512_fmadd_ps(w0[r], x0, lo[r][c]);
                hi[r][c] = _mm512_fmadd_ps(w1[r], x1, hi[r][c]);
            }
        }
    }
    for (; j + 8 <= n; j += 8)
        KERN_UNROLL
        for (int c = 0; c < N; c++)
            KERN_UNROLL
            for (int r = 0; r < R; r++)
                lo[r][c] = _mm512_mask3_fmadd_ps(
                    _mm512_maskz_loadu_ps(0xff, wr[r] + j),
                    _mm512_maskz_loadu_ps(0xff, x[c].f + j), lo[r][c], 0xff);
    KERN_UNROLL
    for (int c = 0; c < N; c++)
        KERN_UNROLL
        for (int r = 0; r < R; r++) {
            float s = hsum8(
                _mm256_add_ps(_mm256_add_ps(lo256(lo[r][c]), hi256(lo[r][c])),
                              _mm256_add_ps(lo256(hi[r][c]), hi256(hi[r][c]))));
            for (int k = j; k < n; k++)
                s += wr[r][k] * x[c].f[k];
            out[stride * (size_t)c + (size_t)(i + r)] = s;
        }
}

/* A Q4_K or Q5_K block's eight 6-bit scales then eight mins as bytes,
 * unpacked as kscales unpacks them: of the 12 bytes' words u0, u1, u2,
 * (u0 & 0x3f..), (u2 & 0x0f..) | ((u0 >> 2) & 0x30..), (u1 & 0x3f..),
 * ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..), in vector lanes (the
 * scalar form, with its inserts into a register, took a fifth of a Q4_K
 * row's work per block for one activation). The 16-byte load reads the
 * first 4 value bytes too, inside the block. */
KERN_AVX512 static KERN_INLINE __m128i kscale_bytes(const uint8_t *b) {
    __m128i v = _mm_loadu_si128((const __m128i *)(b + 4));
    __m128i lo = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)),
            hi = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));
    lo = _mm_and_si128(_mm_srlv_epi32(lo, _mm_setr_epi32(0, 0, 0, 4)),
                       _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f,
                                      0x0f0f0f0f));
    hi = _mm_and_si128(_mm_srli_epi32(hi, 2),
                       _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(lo, hi);
}

/* A K-quant block's 256 values as four registers of two 32-value groups,
 * register j holding group 2j in its low half and 2j + 1 in its high half
 * (each half a group of kquant_avx2's up_qk45/up_q6k), as unsigned bytes:
 * Q6_K's six bits not less 32, which kq_tile takes off in int16. One
 * variable shift per register gives each half its own nibble or bit. */
KERN_AVX512 static KERN_INLINE void kq_unpack(int type, const uint8_t *b,
                                              __m512i *wz) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m256i z = _mm256_setzero_si256();
    if (type == KERN_Q6_K) {
        const __m512i m30 = _mm512_set1_epi8(0x30);
        /* quant.c's layout: 128 bytes of low nibbles, 64 of high bits */
        KERN_UNROLL
        for (int h = 0; h < 2; h++) {
            __m512i l = _mm512_loadu_si512((const void *)(b + 64 * h));
            __m512i qh = _mm512_broadcast_i64x4(KERN_LOAD(b + 128 + 32 * h));
            wz[2 * h] = _mm512_or_si512(
                _mm512_and_si512(l, m4),
                _mm512_and_si512(
                    _mm512_sllv_epi16(qh, _mm512_inserti64x4(
                                              _mm512_set1_epi16(4),
                                              _mm256_set1_epi16(2), 1)),
                    m30));
            wz[2 * h + 1] = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                _mm512_and_si512(
                    _mm512_srlv_epi16(qh, _mm512_inserti64x4(
                                              _mm512_castsi256_si512(z),
                                              _mm256_set1_epi16(2), 1)),
                    m30));
        }
        return;
    }
    KERN_UNROLL
    for (int c = 0; c < 4; c++) {
        const uint8_t *qs = b + (type == KERN_Q5_K ? 48 : 16);
        __m512i v = _mm512_broadcast_i64x4(KERN_LOAD(qs + 32 * c));
        wz[c] = _mm512_and_si512(
            _mm512_srlv_epi16(v, _mm512_inserti64x4(_mm512_castsi256_si512(z),
                                                    _mm256_set1_epi16(4), 1)),
            m4);
        if (type == KERN_Q5_K) {
            /* bit 2c of each high-bit byte to bit 4 (low half), 2c+1 (high) */
            __m512i qh = _mm512_broadcast_i64x4(KERN_LOAD(b + 16)), bit;
            bit = c < 2 ? _mm512_sllv_epi16(
                              qh, _mm512_inserti64x4(
                                      _mm512_set1_epi16((short)(4 - 2 * c)),
                                      _mm256_set1_epi16((short)(3 - 2 * c)), 1))
                        : _mm512_srlv_epi16(
                              qh, _mm512_inserti64x4(
                                      _mm512_set1_epi16((short)(2 * c - 4)),
                                      _mm256_set1_epi16((short)(2 * c - 3)), 1));
            wz[c] = _mm512_or_si512(
                wz[c], _mm512_and_si512(bit, _mm512_set1_epi8(0x10)));
        }
    }
}

/* The int16 scales of kq_unpack's register j for vpdpwssd (Q4_K/Q5_K:
 * group 2j's scale in the low half, 2j+1's in the high; Q6_K: a scale
 * per 16 values), the mins as int16 (Q4_K/Q5_K) and d, dmin, as kscales
 * reads them. */
KERN_AVX512 static KERN_INLINE void kq_scales(int type, const uint8_t *b,
                                              __m512i *scz, __m128i *m16,
                                              float *d, float *dmin) {
    __m512i s16;
    if (type == KERN_Q6_K) {
        s16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(
            _mm_loadu_si128((const __m128i *)(b + 192))));
        KERN_UNROLL
        for (int j = 0; j < 4; j++)
            scz[j] = _mm512_permutexvar_epi16(
                _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_set_m128i(
                        _mm_set1_epi16((short)(4 * j + 1)),
                        _mm_set1_epi16((short)(4 * j)))),
                    _mm256_set_m128i(_mm_set1_epi16((short)(4 * j + 3)),
                                     _mm_set1_epi16((short)(4 * j + 2))),
                    1),
                s16);
        *m16 = _mm_setzero_si128();
        *d = f16at(b + 208);
        *dmin = 0.0f;
        return;
    }
    {
        __m128i v = kscale_bytes(b);
        s16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(v));
        KERN_UNROLL
        for (int j = 0; j < 4; j++)
            scz[j] = _mm512_permutexvar_epi16(
                _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * j)),
                                   _mm256_set1_epi16((short)(2 * j + 1)), 1),
                s16);
        *m16 = _mm_cvtepu8_epi16(_mm_srli_si128(v, 8));
        *d = f16at(b);
        *dmin = f16at(b + 2);
    }
}

/* Block k's group sums of activations c0..c0+3 (the last one, N - 1,
 * again past it) as int16, one activation to a 128-bit slot. */
KERN_AVX512 static KERN_INLINE __m512i kq_sums(const kern_act *x, int N,
                                               int c0, int k) {
    __m256i h[2];
    KERN_UNROLL
    for (int p = 0; p < 2; p++) {
        int a = c0 + 2 * p, b = a + 1;
        h[p] = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_castsi512_ps(
            pair_si(x[a < N ? a : N - 1].sum + 8 * k,
                    x[b < N ? b : N - 1].sum + 8 * k))));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(h[0]), h[1], 1);
}

/* What the mins of block k take from activations 4g..4g+3 (the last,
 * N - 1, again past it): their group sums as int16 (kq_sums) and -xd,
 * one activation to a 128-bit slot. They depend on the activations
 * alone, so a product forms them once (kq_prepare), not per row pair. */
typedef struct kq_act {
    __m512i s16;
    __m512 xdm;
} kq_act;
#define KERN_KQ_G (KERN_KQ_N / 4) /* kq_acts per block */
#define KERN_KQ_PRE 64 /* blocks kq_prepare holds (16384 values) */

KERN_AVX512 static KERN_INLINE kq_act kq_act_at(const kern_act *x, int N,
                                                int g, int k) {
    const __m512i slot = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                           2, 3, 3, 3, 3);
    float v[4];
    kq_act a;
    a.s16 = kq_sums(x, N, 4 * g, k);
    for (int s = 0; s < 4; s++)
        v[s] = -x[4 * g + s < N ? 4 * g + s : N - 1].s[8 * k];
    a.xdm = _mm512_permutexvar_ps(slot,
                                  _mm512_castps128_ps512(_mm_loadu_ps(v)));
    return a;
}

/* kq_act_at for every block of w's rows and activations x[0..N) into
 * buf (KERN_KQ_PRE * KERN_KQ_G entries), block k's at buf + k * KERN_KQ_G;
 * NULL where the rows have more blocks than that (kq_tile then forms
 * them block by block). */
KERN_AVX512 static const kq_act *kq_prepare(const kern_mat *w,
                                            const kern_act *x, int N,
                                            kq_act *buf) {
    int nb = w->cols / 256;
    if (nb > KERN_KQ_PRE)
        return NULL;
    for (int k = 0; k < nb; k++)
        for (int g = 0; g < (N + 3) / 4; g++)
            buf[k * KERN_KQ_G + g] = kq_act_at(x, N, g, k);
    return buf;
}
#define KERN_KQ_PREP(w, x, n)                                                 \
    kq_act pre_buf[KERN_KQ_PRE * KERN_KQ_G];                                  \
    const kq_act *pre = kq_prepare(w, x, n, pre_buf)

/* The mins of block k of two rows (m16, dmin) times the group sums of
 * activations x[0..N) (a: block k's kq_acts) into accm[row][c / 4], slot
 * c % 4: Q4_K's four float lanes, or (q4k 0, Q5_K) their integer sum in
 * every lane, fused into one float, with -xd * dmin as kquant_avx2 forms
 * it. */
KERN_AVX512 static KERN_INLINE void kq_mins(int N, const kq_act *a,
                                            const __m512i *m16,
                                            const float *dmin,
                                            __m512 (*accm)[KERN_KQ_N / 4],
                                            int q4k) {
    KERN_UNROLL
    for (int g = 0; g < (N + 3) / 4; g++) {
        __m512i s16 = a[g].s16;
        __m512 xdm = a[g].xdm;
        KERN_UNROLL
        for (int r = 0; r < 2; r++) {
            __m512i p = _mm512_madd_epi16(m16[r], s16);
            if (!q4k) {
                p = _mm512_add_epi32(p, _mm512_shuffle_epi32(p, 0x4e));
                p = _mm512_add_epi32(p, _mm512_shuffle_epi32(p, 0xb1));
            }
            accm[r][g] = _mm512_fmadd_ps(
                _mm512_mul_ps(xdm, _mm512_set1_ps(dmin[r])),
                _mm512_cvtepi32_ps(p), accm[r][g]);
        }
    }
}

/* K-quant rows i and i+1 (i again when R is 1) times activations
 * x[0..N) (N <= KERN_KQ_N), one activation to a column: a block is
 * unpacked once for all of them and each activation's 64-value runs are
 * read once for both rows. Per row and activation the int32 lanes are
 * kquant_avx2's sums (each register's two halves added at the end:
 * integers, so exact), then one float FMA per block with xd * d, as
 * there; the two rows' eight lanes share a register (row i low, i+1
 * high). The mins times the activation's group sums (Q4_K: four float
 * lanes; Q5_K: their sum, fused into one float) run four activations to
 * a register, one 128-bit slot each. */
KERN_AVX512 static KERN_INLINE void kq_tile(const kern_mat *w,
                                            const kern_act *x, float *out,
                                            size_t stride, int i, int R,
                                            int N, int type,
                                            const kq_act *pre) {
    int elems, bytes, nb, q4k = type == KERN_Q4_K, q6k = type == KERN_Q6_K;
    const uint8_t *blk[2];
    const __m512i m32 = _mm512_set1_epi8(32);
    __m512 acc[KERN_KQ_N], accm[2][KERN_KQ_N / 4];

    assert(R >= 1 && R <= 2 && type == w->type);
    quant_block(type, &elems, &bytes);
    nb = w->cols / elems;
    blk[0] = block_row(w, i);
    blk[1] = block_row(w, R == 2 ? i + 1 : i);
    KERN_UNROLL8
    for (int c = 0; c < N; c++)
        acc[c] = _mm512_setzero_ps();
    KERN_UNROLL
    for (int g = 0; g < (N + 3) / 4; g++)
        accm[0][g] = accm[1][g] = _mm512_setzero_ps();
    for (int k = 0; k < nb; k++) {
        __m512i wz[2][4], scz[2][4], m16[2];
        __m512 dd;
        float d[2], dmin[2];
        KERN_UNROLL
        for (int r = 0; r < 2; r++) {
            const uint8_t *b = blk[r] + (size_t)k * bytes;
            __m128i m;
            for (int l = 0; l < bytes; l += 64)
                KERN_PF(b + l);
            kq_unpack(type, b, wz[r]);
            kq_scales(type, b, scz[r], &m, &d[r], &dmin[r]);
            m16[r] = _mm512_broadcast_i32x4(m);
        }
        dd = pair_ps(&d[0], &d[1]);
        KERN_UNROLL8
        for (int c = 0; c < N; c++) {
            const int8_t *xq = x[c].q + 256 * (size_t)k;
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, t;
            KERN_UNROLL
            for (int j = 0; j < 4; j++) {
                __m512i xv = _mm512_loadu_si512((const void *)(xq + 64 * j));
                __m512i p0 = _mm512_maddubs_epi16(wz[0][j], xv),
                        p1 = _mm512_maddubs_epi16(wz[1][j], xv);
                if (q6k) {
                    __m512i o = _mm512_maddubs_epi16(m32, xv);
                    p0 = _mm512_sub_epi16(p0, o);
                    p1 = _mm512_sub_epi16(p1, o);
                }
                s0 = _mm512_dpwssd_epi32(s0, p0, scz[0][j]);
                s1 = _mm512_dpwssd_epi32(s1, p1, scz[1][j]);
            }
            t = _mm512_add_epi32(_mm512_shuffle_i64x2(s0, s1, 0x44),
                                 _mm512_shuffle_i64x2(s0, s1, 0xee));
            acc[c] = _mm512_fmadd_ps(
                _mm512_mul_ps(_mm512_set1_ps(x[c].s[8 * k]), dd),
                _mm512_cvtepi32_ps(t), acc[c]);
        }
        if (!q6k) {
            kq_act a[KERN_KQ_G];
            if (!pre)
                KERN_UNROLL
                for (int g = 0; g < (N + 3) / 4; g++)
                    a[g] = kq_act_at(x, N, g, k);
            kq_mins(N, pre ? pre + (size_t)k * KERN_KQ_G : a, m16, dmin,
                    accm, q4k);
        }
    }
    KERN_UNROLL8
    for (int c = 0; c < N; c++)
        KERN_UNROLL
        for (int r = 0; r < R; r++) {
            float m[16];
            __m128 ms;
            _mm512_storeu_ps(m, accm[r][c / 4]);
            ms = _mm_loadu_ps(m + 4 * (c % 4));
            /* kquant_avx2's hsum8 + hsum4 + summs, the unused part zero */
            out[stride * (size_t)c + (size_t)(i + r)] =
                hsum8(r ? hi256(acc[c]) : lo256(acc[c])) +
                hsum4(q4k ? ms : _mm_setzero_ps()) +
                (q4k || q6k ? 0.0f : _mm_cvtss_f32(ms));
        }
}

KERN_TILE_DRIVER(f32_tiles, f32_tile, 2)

/* Asks for `bytes` bytes from p ahead of their use: attention reads one
 * head's slice of each cached position, `stride` values apart. When the
 * caches held whole positions (3 KiB apart for the 110M model), the
 * hardware prefetcher did not follow them and `perf annotate` put three
 * quarters of the scores' and the mix's time on those loads while five
 * sequences decoded together; model.c's caches now keep each head's
 * positions contiguous, and the requests cost little beside the stream. */
#define KERN_ATT_PF 16 /* positions ahead */
KERN_AVX2 static void prefetch_row(const void *p, int bytes) {
    for (int b = 0; b < bytes; b += 64)
        _mm_prefetch((const char *)p + b, _MM_HINT_T0);
}

/* Sixteen cached half values as floats (exact). */
KERN_AVX512 static inline __m512 half16(const uint16_t *h) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h));
}

/* kern_scores_half for sixteen keys from k (hs a multiple of 64): each
 * key's 64 lanes as dot_half_avx2 sums them (four 16-lane registers, the
 * products exact), folded as fold64 folds them, the last four steps of
 * the fold (fold16's halves, quarters, pairs) taken for the sixteen keys
 * at once by shuffles that keep every lane's partners. */
KERN_AVX512 static void scores16_half512(const float *q, const uint16_t *k,
                                         size_t stride, int hs, float *out) {
    __m512 f[16], g[8], h[4], u[2], r;

    for (int p = 0; p < 16; p++) {
        const uint16_t *kt = k + (size_t)p * stride;
        __m512 a[4];
        for (int l = 0; l < 4; l++)
            a[l] = _mm512_setzero_ps();
        for (int j = 0; j < hs; j += 64)
            for (int l = 0; l < 4; l++)
                a[l] = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16 * l),
                                       half16(kt + j + 16 * l), a[l]);
        /* lanes l += l + 32, then l += l + 16 */
        f[p] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]),
                             _mm512_add_ps(a[1], a[3]));
    }
    for (int i = 0; i < 8; i++) /* halves: two keys' eight sums */
        g[i] = _mm512_add_ps(_mm512_shuffle_f32x4(f[2 * i], f[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(f[2 * i], f[2 * i + 1], 0xee));
    for (int i = 0; i < 4; i++) /* quarters: four keys' four sums */
        h[i] = _mm512_add_ps(_mm512_shuffle_f32x4(g[2 * i], g[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(g[2 * i], g[2 * i + 1], 0xdd));
    for (int i = 0; i < 2; i++) /* (0 + 2) and (1 + 3) */
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(h[2 * i], h[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(h[2 * i], h[2 * i + 1], 0xee));
    /* their sum; lane 4a + b then holds key a + 4b */
    r = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88),
                      _mm512_shuffle_ps(u[0], u[1], 0xdd));
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(
                              _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6,
                                                10, 14, 3, 7, 11, 15),
                              r));
}

/* mix_half_scalar for outputs j0..j0+16*nv (nv <= 4 registers of 16):
 * lane l of the 64 is summed in registers over its positions l, l + 64,
 * ... in order (the products are exact, so FMA changes nothing), the
 * lanes folded as fold64 folds them and the positions past the last
 * whole 64 added in double, so every output is the scalar one. */
KERN_AVX512 static void mix_half512(const float *w, const uint16_t *v,
                                    size_t stride, int n, int np, int j0,
                                    int nv, float *out) {
    __m512 a[64][4], r[4];
    int nl = n < np ? n : np;

    for (int l = 0; l < 64; l++) {
        __m512 acc[4];
        for (int c = 0; c < nv; c++)
            acc[c] = _mm512_setzero_ps();
        for (int t = l; t < nl; t += 64) {
            const uint16_t *vt = v + (size_t)t * stride + j0;
            __m512 wt = _mm512_set1_ps(w[t]);
            if (t + KERN_ATT_PF < n)
                prefetch_row(vt + KERN_ATT_PF * stride, 32 * nv);
            for (int c = 0; c < nv; c++)
                acc[c] = _mm512_fmadd_ps(half16(vt + 16 * c), wt, acc[c]);
        }
        for (int c = 0; c < nv; c++)
            a[l][c] = acc[c];
    }
    for (int c = 0; c < nv; c++) {
        __m512d s0, s1;
        for (int l = 0; l < 16; l++) {
            a[l][c] = _mm512_add_ps(a[l][c], a[l + 32][c]);
            a[l + 16][c] = _mm512_add_ps(a[l + 16][c], a[l + 48][c]);
        }
        for (int l = 0; l < 16; l++)
            a[l][c] = _mm512_add_ps(a[l][c], a[l + 16][c]);
        for (int l = 0; l < 8; l++)
            a[l][c] = _mm512_add_ps(a[l + 8][c], a[l][c]);
        for (int l = 0; l < 4; l++)
            a[l][c] = _mm512_add_ps(a[l + 4][c], a[l][c]);
        r[c] = np ? _mm512_add_ps(_mm512_add_ps(a[0][c], a[2][c]),
                                  _mm512_add_ps(a[1][c], a[3][c]))
                  : _mm512_setzero_ps();
        s0 = _mm512_cvtps_pd(lo256(r[c]));
        s1 = _mm512_cvtps_pd(hi256(r[c]));
        for (int t = nl; t < n; t++) {
            __m512 p;
            if (c == 0 && t + KERN_ATT_PF < n)
                prefetch_row(v + (size_t)(t + KERN_ATT_PF) * stride + j0,
                             32 * nv);
            p = _mm512_mul_ps(half16(v + (size_t)t * stride + j0 + 16 * c),
                              _mm512_set1_ps(w[t]));
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(lo256(p)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(hi256(p)));
        }
        _mm256_storeu_ps(out + j0 + 16 * c, _mm512_cvtpd_ps(s0));
        _mm256_storeu_ps(out + j0 + 16 * c + 8, _mm512_cvtpd_ps(s1));
    }
}

/* kq_tile for each type as a constant, so the type's branches fold. */
#define KERN_Q4K_TILE(w, x, n, o, s, i, R)                                    \
    kq_tile(w, x, o, s, i, R, n, KERN_Q4_K, pre)
#define KERN_Q5K_TILE(w, x, n, o, s, i, R)                                    \
    kq_tile(w, x, o, s, i, R, n, KERN_Q5_K, pre)
#define KERN_Q6K_TILE(w, x, n, o, s, i, R)                                    \
    kq_tile(w, x, o, s, i, R, n, KERN_Q6_K, NULL)
KERN_WIDE_DRIVER(q4k_tiles, KERN_Q4K_TILE, 2, 2, KERN_KQ_PREP)
KERN_WIDE_DRIVER(q5k_tiles, KERN_Q5K_TILE, 2, 2, KERN_KQ_PREP)
KERN_WIDE_DRIVER(q6k_tiles, KERN_Q6K_TILE, 2, 2, KERN_NO_PREP)

/* kq_tile's Q4_K and Q6_K products on kern_repack's copy: the quad of
 * rows i..i+3 times activations x[0..N) (N <= KERN_RQ_N(type)), one row
 * to a 128-bit lane. Each lane's four int32 lanes are four of ggml's eight for
 * that row (accumulator h: lanes 4h..4h+3), so an activation's 16 values
 * broadcast to the four lanes meet the four rows' bytes at once, and the
 * unpacking shared by all activations is a few masks and shifts per 256
 * values, a group's scales one byte shuffle (Q4_K's pre-decoded at load,
 * not unpacked from their 6-bit fields per block and row). Per row, block
 * and activation: kquant_avx2's int32 lanes (maddubs pairs times the
 * scale, exact; Q6_K's values unsigned, less 32 times the activation's
 * pairs as kq_tile takes it off), its float FMA with xd * d per lane,
 * Q4_K's four lanes of mins times the group sums with -xd * dmin, and its
 * folds (hsum8, hsum4, then + 0), so the same bits. The first pass
 * streams the copy, asking for it KERN_RP_PF ahead into L2. */
/* Activations of a pass: Q4_K's three sum in 15 of the 32 registers (five
 * in one pass spilled: `model_bench kern` gate five 54-61 → 58-65 ns per
 * row), Q6_K's five, without mins, in 20 (classifier five 78-80 → 72-73:
 * one pass, not 3 + 2). */
#define KERN_RQ_N(type) ((type) == KERN_Q4_K ? 3 : 5)
KERN_AVX512 static KERN_INLINE void kq_rq(const kern_mat *w,
                                          const kern_act *x, int N,
                                          float *out, size_t stride, int i,
                                          int pass, int type) {
    const int q4k = type == KERN_Q4_K, nst = q4k ? 4 : 2;
    size_t nb = (size_t)w->cols / 256, vb = rq_value_bytes(type),
           hb = rq_half_bytes(type), qb = rq_quad_bytes(type, nb);
    const uint8_t *sc =
                      (const uint8_t *)w->rp + (size_t)(i / KERN_RQ_ROWS) * qb,
                  *v = sc + nb * 64, *dh = v + nb * vb;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30),
                  m32 = _mm512_set1_epi8(32),
                  /* each lane's bytes 8..15 (its row's mins) as int16 */
        mins = _mm512_broadcast_i32x4(_mm_setr_epi16(
            (short)0x8008, (short)0x8009, (short)0x800a, (short)0x800b,
            (short)0x800c, (short)0x800d, (short)0x800e, (short)0x800f)),
                  lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                           3, 3, 3, 3);
    __m512 acc[KERN_RQ_N(KERN_Q6_K)][2], accm[KERN_RQ_N(KERN_Q6_K)];

    assert(N >= 1 && N <= KERN_RQ_N(type) && i % KERN_RQ_ROWS == 0 &&
           type == w->type && (q4k || type == KERN_Q6_K));
    KERN_UNROLL
    for (int c = 0; c < N; c++)
        acc[c][0] = acc[c][1] = accm[c] = _mm512_setzero_ps();
    for (size_t k = 0; k < nb; k++) {
        const uint8_t *vk = v + k * vb;
        __m512i s = _mm512_load_si512((const void *)(sc + k * 64)),
                isum[KERN_RQ_N(KERN_Q6_K)][2];
        /* the quad's rows' d (then Q4_K's dmin), widened: exact */
        __m512 dd = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(
                   (const __m128i *)(const void *)(dh + k * hb)))),
               dv = _mm512_permutexvar_ps(lane, dd);
        if (pass == 0) {
            _mm_prefetch((const char *)(sc + k * 64) + KERN_RP_PF, _MM_HINT_T1);
            _mm_prefetch((const char *)(dh + k * hb) + KERN_RP_PF, _MM_HINT_T1);
            for (size_t l = 0; l < vb; l += 64)
                _mm_prefetch((const char *)vk + KERN_RP_PF + l, _MM_HINT_T1);
        }
        KERN_UNROLL
        for (int c = 0; c < N; c++)
            isum[c][0] = isum[c][1] = _mm512_setzero_si512();
        /* Per step and half h (ggml's lanes 4h..4h+3), nw registers of
         * values: wv[j] holds half h of group grp[j] of each row. Q4_K:
         * four steps of two groups; Q6_K: two of four (H, the block's
         * half, the layout's). */
        KERN_UNROLL
        for (int st = 0; st < nst; st++) {
            KERN_UNROLL
            for (int h = 0; h < 2; h++) {
                __m512i wv[4], scj[4];
                int grp[4], nw = q4k ? 2 : 4;
                if (q4k) {
                    __m512i p = _mm512_load_si512(
                        (const void *)(vk + 64 * (2 * st + h)));
                    wv[0] = _mm512_and_si512(p, m4);
                    wv[1] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                    grp[0] = 2 * st;
                    grp[1] = 2 * st + 1;
                } else {
                    const uint8_t *r = vk + 64 * 3 * (2 * st + h);
                    __m512i l0 = _mm512_load_si512((const void *)r),
                            l1 = _mm512_load_si512((const void *)(r + 64)),
                            qh = _mm512_load_si512((const void *)(r + 128));
                    /* up_q6k's four groups of the half, not less 32 */
                    wv[0] = _mm512_or_si512(
                        _mm512_and_si512(l0, m4),
                        _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30));
                    wv[1] = _mm512_or_si512(
                        _mm512_and_si512(l1, m4),
                        _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30));
                    wv[2] = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(l0, 4), m4),
                        _mm512_and_si512(qh, m30));
                    wv[3] = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                        _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30));
                    for (int j = 0; j < 4; j++)
                        grp[j] = 4 * st + j;
                }
                KERN_UNROLL
                for (int j = 0; j < nw; j++)
                    /* Q4_K: byte grp (zero-extended); Q6_K: byte 2grp + h
                     * into both bytes, then its sign down the high one */
                    scj[j] = q4k ? _mm512_shuffle_epi8(
                                       s, _mm512_set1_epi16(
                                              (short)(0x8000 | grp[j])))
                                 : _mm512_srai_epi16(
                                       _mm512_shuffle_epi8(
                                           s, _mm512_set1_epi16((short)(
                                                  0x101 * (2 * grp[j] + h)))),
                                       8);
                KERN_UNROLL
                for (int c = 0; c < N; c++)
                    KERN_UNROLL
                    for (int j = 0; j < nw; j++) {
                        __m512i xv = _mm512_broadcast_i32x4(_mm_loadu_si128(
                            (const __m128i *)(const void *)(
                                x[c].q + 256 * k + 32 * grp[j] + 16 * h)));
                        __m512i p = _mm512_maddubs_epi16(wv[j], xv);
                        if (!q4k)
                            p = _mm512_sub_epi16(p,
                                                 _mm512_maddubs_epi16(m32, xv));
                        isum[c][h] = _mm512_dpwssd_epi32(isum[c][h], p, scj[j]);
                    }
            }
        }
        KERN_UNROLL
        for (int c = 0; c < N; c++) {
            float xd = x[c].s[8 * k];
            __m512 dx = _mm512_mul_ps(dv, _mm512_set1_ps(xd));
            acc[c][0] = _mm512_fmadd_ps(dx, _mm512_cvtepi32_ps(isum[c][0]),
                                        acc[c][0]);
            acc[c][1] = _mm512_fmadd_ps(dx, _mm512_cvtepi32_ps(isum[c][1]),
                                        acc[c][1]);
            if (q4k) {
                /* the group sums: integers, exact as int16 */
                __m512i xs = _mm512_broadcast_i32x4(_mm256_cvtepi32_epi16(
                    _mm256_cvtps_epi32(_mm256_loadu_ps(x[c].sum + 8 * k))));
                __m512 dmv = _mm512_permutexvar_ps(
                    _mm512_add_epi32(lane, _mm512_set1_epi32(4)), dd);
                accm[c] = _mm512_fmadd_ps(
                    _mm512_mul_ps(dmv, _mm512_set1_ps(-xd)),
                    _mm512_cvtepi32_ps(_mm512_madd_epi16(
                        _mm512_shuffle_epi8(s, mins), xs)),
                    accm[c]);
            }
        }
    }
    KERN_UNROLL
    for (int c = 0; c < N; c++) {
        /* per lane: hsum8 (lanes l + l + 4, then 0 + 2 and 1 + 3, their
         * sum), hsum4 ((0 + 2) + (1 + 3); Q6_K's zero), their sum, + 0
         * (summs) */
        __m512 a = _mm512_add_ps(acc[c][0], acc[c][1]), m = accm[c];
        a = _mm512_add_ps(a, _mm512_shuffle_ps(a, a, 0xee));
        a = _mm512_add_ps(a, _mm512_movehdup_ps(a));
        m = _mm512_add_ps(m, _mm512_shuffle_ps(m, m, 0xee));
        m = _mm512_add_ps(m, _mm512_movehdup_ps(m));
        a = _mm512_add_ps(_mm512_add_ps(a, m), _mm512_setzero_ps());
        _mm_storeu_ps(out + stride * (size_t)c + (size_t)i,
                      _mm512_castps512_ps128(_mm512_permutexvar_ps(
                          _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0),
                          a)));
    }
}

/* The quad at rows a.. for activations x + t .. x + t + n, pass
 * t / KERN_RQ_N(TYPE). */
#define KERN_RQ_CASE(n, TYPE)                                                 \
    case n:                                                                   \
        kq_rq(w, x + t, n, out + stride * (size_t)t, stride, a,              \
              t / KERN_RQ_N(TYPE), TYPE);                                     \
        break

/* The cases of passes of up to KERN_RQ_N(T) activations. */
#define KERN_RQ_UPTO3(T)                                                      \
    KERN_RQ_CASE(1, T);                                                       \
    KERN_RQ_CASE(2, T);                                                       \
    default:                                                                  \
        KERN_RQ_CASE(3, T)
#define KERN_RQ_UPTO5(T)                                                      \
    KERN_RQ_CASE(1, T);                                                       \
    KERN_RQ_CASE(2, T);                                                       \
    KERN_RQ_CASE(3, T);                                                       \
    KERN_RQ_CASE(4, T);                                                       \
    default:                                                                  \
        KERN_RQ_CASE(5, T)

/* Rows r0..r1 of a repacked Q4_K or Q6_K matrix: the whole quads of its
 * runs from the copy, every activation pass of a quad (CASES) while its
 * bytes are in L1, the rows outside them (a pool part's edges, the rows
 * past the last whole run) by the kq_tile driver TILES from w->q. */
#define KERN_RQ_DRIVER(NAME, TYPE, TILES, CASES)                              \
    KERN_AVX512 static void NAME(const kern_mat *w, const kern_act *x,       \
                                 int nx, float *out, size_t stride, int r0,  \
                                 int r1) {                                    \
        const int R = KERN_RQ_ROWS;                                           \
        int full = w->rows / KERN_RP_ROWS * KERN_RP_ROWS;                     \
        int a0 = (r0 + R - 1) / R * R, b0;                                    \
                                                                              \
        a0 = a0 < r1 ? a0 : r1;                                               \
        b0 = (r1 < full ? r1 : full) / R * R;                                 \
        b0 = b0 > a0 ? b0 : a0;                                               \
        if (r0 < a0)                                                          \
            TILES(w, x, nx, out, stride, r0, a0);                             \
        for (int a = a0; a < b0; a += R)                                      \
            for (int t = 0; t < nx; t += KERN_RQ_N(TYPE))                     \
                switch (nx - t < KERN_RQ_N(TYPE) ? nx - t : KERN_RQ_N(TYPE)) {\
                    CASES(TYPE);                                              \
                }                                                             \
        if (b0 < r1)                                                          \
            TILES(w, x, nx, out, stride, b0, r1);                             \
    }
KERN_RQ_DRIVER(q4k_rq_rows, KERN_Q4_K, q4k_tiles, KERN_RQ_UPTO3)
KERN_RQ_DRIVER(q6k_rq_rows, KERN_Q6_K, q6k_tiles, KERN_RQ_UPTO5)

KERN_AVX2 static void round_f16_avx2(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(
                                    _mm256_loadu_ps(x + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++)
        x[i] = kern_f16_to_f32(kern_f32_to_f16(x[i]));
}

KERN_AVX2 static void scores_avx2(const float *q, const float *k,
                                  size_t stride, int n, int hs, float div,
                                  float *out) {
    for (int t = 0; t < n; t++)
        out[t] = dot_f32_avx2(q, k + (size_t)t * stride, hs) / div;
}

KERN_AVX2 static void mix_avx2(const float *w, const float *v, size_t stride,
                               int n, int hs, float *out) {
    memset(out, 0, (size_t)hs * sizeof *out);
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * stride;
        __m256 a = _mm256_set1_ps(w[t]);
        int j = 0;
        for (; j + 8 <= hs; j += 8)
            _mm256_storeu_ps(out + j,
                             _mm256_fmadd_ps(a, _mm256_loadu_ps(vt + j),
                                             _mm256_loadu_ps(out + j)));
        for (; j < hs; j++)
            out[j] += w[t] * vt[j];
    }
}
#endif

/* ------------------------------------------------------------ dispatch */

void kern_matvec(const kern_mat *w, const kern_act *x, float *out, int r0,
                 int r1) {
#ifdef KERN_X86
    int level = kern_level();
    if (level >= KERN_AVX512_LEVEL && w->type == KERN_Q8_0) {
        (w->rp ? q8_0_rp_rows : q8_0_rows512)(w, x, 1, out, 0, r0, r1);
        return;
    }
    if (level >= KERN_AVX512_LEVEL && w->type == KERN_F32) {
        /* Tiles of rows for one activation: independent float chains. */
        f32_tiles(w, x, 1, out, 0, r0, r1);
        return;
    }
    if (level >= KERN_AVX512_LEVEL && w->type >= KERN_Q4_K) {
        (w->type == KERN_Q4_K   ? (w->rp ? q4k_rq_rows : q4k_tiles)
         : w->type == KERN_Q5_K ? q5k_tiles
                                : (w->rp ? q6k_rq_rows : q6k_tiles))(
            w, x, 1, out, 0, r0, r1);
        return;
    }
    if (level >= KERN_AVX2_LEVEL) {
        int vnni = kern_vnni(level);
        switch (w->type) {
        case KERN_F32:
        case KERN_F16:
        case KERN_BF16:
            mv_avx2(w, x, out, r0, r1);
            return;
        case KERN_Q8:
            /* The SIMD loops take whole 32-value runs inside a group. */
            if (w->gs % 32)
                break;
            (vnni ? q8_rows_vnni : q8_rows_avx2)(w, x, out, r0, r1);
            return;
        case KERN_Q8_0:
            (vnni ? q8_0_rows_vnni : q8_0_rows_avx2)(w, x, 1, out, 0, r0, r1);
            return;
        case KERN_Q4_K:
        case KERN_Q5_K:
        case KERN_Q6_K:
            (vnni ? kquant_vnni : kquant_avx2)(w, x, 1, out, 0, r0, r1);
            return;
        default:
            (vnni ? blocks_vnni : blocks_avx2)(w, x, 1, out, 0, r0, r1);
            return;
        }
    }
#endif
    mv_scalar(w, x, out, r0, r1);
}

void kern_matvec_n(const kern_mat *w, const kern_act *x, int nx, float *out,
                   size_t stride, int r0, int r1) {
    assert(nx >= 1 && nx <= KERN_MAX_ACTS);
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX512_LEVEL &&
        (w->type == KERN_F32 || (nx > 1 && w->type == KERN_Q8_0) ||
         (nx > 1 && w->type >= KERN_Q4_K))) {
        (w->type == KERN_F32    ? f32_tiles
         : w->type == KERN_Q8_0 ? (w->rp ? q8_0_rp_rows : q8_0_rows512)
         : w->type == KERN_Q4_K ? (w->rp ? q4k_rq_rows : q4k_tiles)
         : w->type == KERN_Q5_K ? q5k_tiles
                                : (w->rp ? q6k_rq_rows : q6k_tiles))(
            w, x, nx, out, stride, r0, r1);
        return;
    }
    if (nx > 1 && kern_level() >= KERN_AVX2_LEVEL && w->type >= KERN_Q8_0 &&
        w->type != KERN_BF16) {
        /* The GGUF block types: each block is read (and unpacked) once for
         * all nx activations. */
        int vnni = kern_vnni(kern_level());
        if (w->type == KERN_Q8_0)
            (vnni ? q8_0_rows_vnni : q8_0_rows_avx2)(w, x, nx, out, stride, r0,
                                                     r1);
        else if (w->type >= KERN_Q4_K)
            (vnni ? kquant_vnni : kquant_avx2)(w, x, nx, out, stride, r0, r1);
        else
            (vnni ? blocks_vnni : blocks_avx2)(w, x, nx, out, stride, r0, r1);
        return;
    }
#endif
    for (int t = 0; t < nx; t++)
        kern_matvec(w, &x[t], out + stride * (size_t)t, r0, r1);
}

int kern_one_pass(const kern_mat *w, int nx) {
    if (nx == 1)
        return 1;
#ifdef KERN_X86
    /* kern_matvec_n's AVX-512 forms: q8_0_rp_rows and the kq_rq drivers
     * run tile by tile, every activation group per tile; the K-quant
     * drivers one group of KERN_KQ_N over all the rows */
    if (nx <= KERN_MAX_ACTS && kern_level() >= KERN_AVX512_LEVEL)
        return w->rp ||
               (w->type >= KERN_Q4_K && nx <= KERN_KQ_N);
#endif
    return 0;
}

void kern_scores(const float *q, const float *k, size_t stride, int n,
                 int hs, float div, float *out) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL) {
        scores_avx2(q, k, stride, n, hs, div, out);
        return;
    }
#endif
    for (int t = 0; t < n; t++)
        out[t] = dot_f32_scalar(q, k + (size_t)t * stride, hs) / div;
}

void kern_mix(const float *w, const float *v, size_t stride, int n, int hs,
              float *out) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL) {
        mix_avx2(w, v, stride, n, hs, out);
        return;
    }
#endif
    memset(out, 0, (size_t)hs * sizeof *out);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < hs; j++)
            out[j] += w[t] * v[(size_t)t * stride + j];
}

/* dot_half_any at the level in effect: kern_dot_half, and (x a cached
 * half key, y the query) a score, the same sums since each product is
 * exact whichever operand is which. */
static float dot_half_level(const void *x, int half, const float *y, int n) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL)
        return dot_half_avx2(x, half, y, n);
#endif
    return dot_half_any(x, half, y, n);
}

void kern_scores_half(const float *q, const uint16_t *k, size_t stride, int n,
                      int hs, float *out) {
    int t = 0;
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX512_LEVEL && hs % 64 == 0)
        for (; t + 16 <= n; t += 16) {
            for (int p = t + 16; p < n && p < t + 32; p++)
                prefetch_row(k + (size_t)p * stride, hs * (int)sizeof *k);
            scores16_half512(q, k + (size_t)t * stride, stride, hs, out + t);
        }
#endif
    for (; t < n; t++)
        out[t] = dot_half_level(k + (size_t)t * stride, 1, q, hs);
}

#ifdef KERN_X86
KERN_AVX2 static void to_f16_avx2(const float *x, uint16_t *h, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                         _MM_FROUND_TO_NEAREST_INT |
                                             _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        h[i] = kern_f32_to_f16(x[i]);
}
#endif

void kern_to_f16(const float *x, uint16_t *h, int n) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL) {
        to_f16_avx2(x, h, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++)
        h[i] = kern_f32_to_f16(x[i]);
}

void kern_round_f16(float *x, int n) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL) {
        round_f16_avx2(x, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++)
        x[i] = kern_f16_to_f32(kern_f32_to_f16(x[i]));
}

/* kern_rope's scalar form. */
static void rope_scalar(float *v, int n, int hs, const float *cs, int neox,
                        int ggml) {
    int half = hs / 2;
    for (int h = 0; h < n; h += hs) {
        for (int i = 0; i < half; i++) {
            int a = neox ? h + i : h + 2 * i, b = neox ? a + half : a + 1;
            float v0 = v[a], v1 = v[b], co = cs[2 * i], si = cs[2 * i + 1];
            v[a] = ggml ? fmaf(v0, co, -(v1 * si)) : v0 * co - v1 * si;
            v[b] = ggml ? fmaf(v0, si, v1 * co) : v0 * si + v1 * co;
        }
    }
}

#ifdef KERN_X86
/* rope_scalar on eight lanes, the same roundings (one fused or two
 * rounded products per value, as the scalar code has them). Consecutive
 * pairs: v and cs share their layout, so each lane takes its pair's v0
 * and v1 (duplicated even and odd lanes) and the swapped cs; the halves
 * (neox): cs de-interleaved into cos and sin. hs % 16 == 0. */
KERN_AVX2 static void rope_avx2(float *v, int n, int hs, const float *cs,
                                int neox, int ggml) {
    const __m256 even = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f,
                                       -0.0f, 0.0f);
    const __m256i lo = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    int half = hs / 2;

    for (int h = 0; h < n; h += hs) {
        for (int i = 0; !neox && i < hs; i += 8) {
            __m256 x = _mm256_loadu_ps(v + h + i), c = _mm256_loadu_ps(cs + i);
            __m256 x0 = _mm256_moveldup_ps(x), x1 = _mm256_movehdup_ps(x);
            /* even lanes -(v1 * si), odd lanes v1 * co */
            __m256 p = _mm256_xor_ps(
                _mm256_mul_ps(x1, _mm256_permute_ps(c, 0xb1)), even);
            _mm256_storeu_ps(v + h + i,
                             ggml ? _mm256_fmadd_ps(x0, c, p)
                                  : _mm256_add_ps(_mm256_mul_ps(x0, c), p));
        }
        for (int i = 0; neox && i < half; i += 8) {
            __m256 c0 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(cs + 2 * i), lo),
                   c1 = _mm256_permutevar8x32_ps(
                       _mm256_loadu_ps(cs + 2 * i + 8), lo);
            __m256 co = _mm256_permute2f128_ps(c0, c1, 0x20),
                   si = _mm256_permute2f128_ps(c0, c1, 0x31);
            __m256 v0 = _mm256_loadu_ps(v + h + i),
                   v1 = _mm256_loadu_ps(v + h + half + i);
            __m256 p = _mm256_mul_ps(v1, si), r = _mm256_mul_ps(v1, co);
            _mm256_storeu_ps(v + h + i,
                             ggml ? _mm256_fmsub_ps(v0, co, p)
                                  : _mm256_sub_ps(_mm256_mul_ps(v0, co), p));
            _mm256_storeu_ps(v + h + half + i,
                             ggml ? _mm256_fmadd_ps(v0, si, r)
                                  : _mm256_add_ps(_mm256_mul_ps(v0, si), r));
        }
    }
}
#endif

void kern_rope(float *v, int n, int hs, const float *cs, int neox, int ggml) {
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL && hs % 16 == 0) {
        rope_avx2(v, n, hs, cs, neox, ggml);
        return;
    }
#endif
    rope_scalar(v, n, hs, cs, neox, ggml);
}

static int argmax_scalar(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

#ifdef KERN_X86
/* The largest value first, then the first index holding it: the scalar
 * loop's chain of dependent compares took about 2 % of a sequence's decode
 * step over 32,000 logits. maxps keeps m where v[i] is NaN, so NaNs never
 * win; == matches either zero's sign, as the scalar's `>` keeps the first
 * of -0 and +0; a NaN at v[0] stays in every lane, matches nothing, and
 * the answer is 0. */
KERN_AVX2 static int argmax_avx2(const float *v, int n) {
    __m256 m = _mm256_set1_ps(v[0]), mv;
    float lane[8], mx = v[0];
    int i = 0;

    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(_mm256_loadu_ps(v + i), m);
    _mm256_storeu_ps(lane, m);
    for (int l = 0; l < 8; l++)
        mx = lane[l] > mx ? lane[l] : mx;
    for (; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    mv = _mm256_set1_ps(mx);
    for (i = 0; i + 8 <= n; i += 8) {
        int hit = _mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(v + i), mv, _CMP_EQ_OQ));
        if (hit)
            return i + __builtin_ctz((unsigned)hit);
    }
    for (; i < n; i++)
        if (v[i] == mx)
            return i;
    return 0;
}
#endif

int kern_argmax(const float *v, int n) {
    assert(n >= 1);
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX2_LEVEL)
        return argmax_avx2(v, n);
#endif
    return argmax_scalar(v, n);
}

void kern_prefetch(const void *p, size_t bytes) {
    for (size_t b = 0; b < bytes; b += 64)
        __builtin_prefetch((const char *)p + b, 0, 2);
}

float kern_dot_half(const float *x, const float *y, int n) {
    return dot_half_level(x, 0, y, n);
}

void kern_mix_half(const float *w, const uint16_t *v, size_t stride, int n,
                   int n_kv, int hs, float *out) {
    assert(n <= n_kv);
#ifdef KERN_X86
    if (kern_level() >= KERN_AVX512_LEVEL && hs % 16 == 0) {
        for (int j0 = 0; j0 < hs; j0 += 64)
            mix_half512(w, v, stride, n, n_kv & ~63, j0,
                        hs - j0 < 64 ? (hs - j0) / 16 : 4, out);
        return;
    }
    if (kern_level() >= KERN_AVX2_LEVEL) {
        mix_half_avx2(w, v, stride, n, n_kv & ~63, hs, out);
        return;
    }
#endif
    mix_half_scalar(w, v, stride, n, n_kv & ~63, 0, hs, out);
}
