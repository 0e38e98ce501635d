/* kern_test.c — every kernel level against plain scalar arithmetic on
 * random matrices of each weight type, half-precision conversions, and the
 * thread pool. Runs without shared/. */
#include "tests/test.h"

#include "model/kern.h"
#include "model/quant.h"
#include "tests/model/util.h"
#include "services/base/status.h"
#include "model/tpool.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x853c49e6748fea9bull;

static float frand(void) { /* [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

typedef struct mat_case {
    int type, rows, cols, gs;
} mat_case;

/* Builds a matrix of the case's type from random floats; *dense gets the
 * dequantized values the kernels should be multiplying. */
static void build(const mat_case *c, void **q, float **s, float **dense) {
    size_t n = (size_t)c->rows * c->cols;
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = frand();
    *s = NULL;
    if (c->type == KERN_F32) {
        *q = f;
    } else if (c->type == KERN_F16) {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++)
            h[i] = kern_f32_to_f16(f[i]);
        *q = h;
        free(f);
    } else if (c->type == KERN_Q8) {
        *q = malloc(n);
        *s = malloc(n / (size_t)c->gs * sizeof **s);
        kern_quantize(f, (int)n, c->gs, *q, *s);
        free(f);
    } else if (c->type == KERN_BF16) {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &f[i], 4);
            h[i] = (uint16_t)(u >> 16);
        }
        *q = h;
        free(f);
    } else if (c->type != KERN_Q8_0) {
        *q = tu_random_blocks(c->type, n, frand);
        free(f);
    } else {
        uint8_t *b = malloc(n / 32 * KERN_Q8_0_BYTES);
        for (size_t k = 0; k < n / 32; k++) {
            float d;
            uint16_t h;
            kern_quantize(f + k * 32, 32, 32, (int8_t *)(b + k * 34 + 2), &d);
            h = kern_f32_to_f16(d);
            memcpy(b + k * 34, &h, 2);
        }
        *q = b;
        free(f);
    }
    *dense = malloc(n * sizeof **dense);
    {
        kern_mat w = {.type = c->type, .rows = c->rows, .cols = c->cols,
                      .gs = c->gs, .q = *q, .s = *s};
        for (int r = 0; r < c->rows; r++)
            kern_mat_row(&w, r, *dense + (size_t)r * c->cols);
    }
}

/* Value j of the activation a product multiplies (after
 * kern_act_quantize with code): the int8 value times its scale, the half
 * copy, or the float itself. */
static double act_value(const kern_act *a, int code, int j) {
    if (code == KERN_ACT_F16 || code == KERN_ACT_BF16 || !code)
        return a->f[j];
    return (double)a->q[j] * a->s[j / kern_act_group(code)];
}

/* kern_repack's copy of w (the caller frees it), or NULL where none is
 * made (not Q8_0, Q4_K or Q6_K, too few rows, no AVX-512); w itself is
 * left as it is. */
static void *repacked(const kern_mat *w) {
    size_t bytes = kern_repack_bytes(w);
    kern_mat copy = *w;
    void *rp = bytes ? aligned_alloc(64, bytes) : NULL;

    if (rp) {
        kern_repack(&copy, rp);
        /* what a decoding product streams: the copy and the rows past it */
        TEST_CHECK(kern_mat_read_bytes(&copy) ==
                   bytes + (size_t)(w->rows % KERN_RP_ROWS) *
                               (kern_mat_bytes(w) / (size_t)w->rows));
    }
    TEST_CHECK(kern_mat_read_bytes(w) == kern_mat_bytes(w));
    return rp;
}

static void test_matvec_all_levels(void) {
    static const mat_case cases[] = {
        {KERN_F32, 37, 64, 0},   {KERN_F32, 5, 77, 0},   {KERN_F16, 33, 96, 0},
        {KERN_F16, 3, 13, 0},    {KERN_Q8, 29, 64, 64},  {KERN_Q8, 31, 192, 64},
        {KERN_Q8, 17, 96, 32},   {KERN_Q8, 9, 384, 128}, {KERN_Q8, 11, 172, 4},
        {KERN_Q8, 7, 320, 32},   {KERN_Q8_0, 23, 64, 32}, {KERN_Q8_0, 19, 96, 32},
        {KERN_Q8_0, 40, 512, 32}, {KERN_Q8_0, 64, 256, 32},
        {KERN_BF16, 9, 77, 0},   {KERN_BF16, 7, 160, 0}, {KERN_Q4_0, 13, 96, 32},
        {KERN_Q4_1, 11, 64, 32}, {KERN_Q5_0, 7, 160, 32}, {KERN_Q5_1, 9, 96, 32},
        {KERN_Q4_K, 10, 512, 256}, {KERN_Q5_K, 6, 256, 256}, {KERN_Q5_K, 9, 512, 256},
        {KERN_Q6_K, 12, 512, 256},
        /* Q4_K and Q6_K runs of KERN_RP_ROWS and the rows past them */
        {KERN_Q4_K, 37, 512, 256}, {KERN_Q4_K, 16, 256, 256},
        {KERN_Q6_K, 35, 512, 256}, {KERN_Q6_K, 16, 256, 256},
    };
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const mat_case *c = &cases[ci];
        void *q;
        float *s, *dense, x[512], out[64], want[64], scalar[64], avx2[64];
        int8_t xq[512];
        float xs[512], xsum[512];
        kern_act act = {x, c->cols, xq, xs, xsum, 0};
        kern_mat w = {.type = c->type, .rows = c->rows, .cols = c->cols,
                      .gs = c->gs};
        kern_mat probe = w;
        int agsz = kern_needs_act(&probe);

        void *rp;

        build(c, &q, &s, &dense);
        w.q = q;
        w.s = s;
        rp = repacked(&w);
        for (int j = 0; j < c->cols; j++)
            x[j] = frand() * 3;
        if (agsz) {
            kern_act_quantize(&act, agsz);
        }
        /* Exact reference: for int8 types, products of the quantized
         * activation (what the kernels multiply); fp types use x. */
        for (int r = 0; r < c->rows; r++) {
            double acc = 0;
            for (int j = 0; j < c->cols; j++) {
                double xv = act_value(&act, agsz, j);
                acc += (double)dense[(size_t)r * c->cols + j] * xv;
            }
            want[r] = (float)acc;
        }
        /* Q4_0 a second time in llama.cpp's repacked order (x8), Q8_0,
         * Q4_K and Q6_K from their repacked copies (used at the AVX-512
         * level only). */
        for (int v = 0; v < (top + 1) * (c->type == KERN_Q4_0 || rp ? 2 : 1);
             v++) {
            int level = v % (top + 1);
            w.x8 = c->type == KERN_Q4_0 && v > top;
            w.rp = v > top ? rp : NULL;
            kern_set_level(level);
            memset(out, 0, sizeof out);
            /* Two disjoint row ranges, as pool parts do. */
            kern_matvec(&w, &act, out, 0, c->rows / 2);
            kern_matvec(&w, &act, out, c->rows / 2, c->rows);
            for (int r = 0; r < c->rows; r++) {
                double tol = 1e-4 * c->cols + 1e-3 * fabs(want[r]);
                /* Q8_0 scales are rounded to half precision on write. */
                if (c->type == KERN_Q8_0)
                    tol += 2e-3 * c->cols;
                TEST_CHECK(fabs(out[r] - want[r]) <= tol);
                /* GGUF types sum in ggml's order at every level, to the
                 * bit (llama.cpp's logits depend on it). */
                if (level == KERN_SCALAR_LEVEL)
                    scalar[r] = out[r];
                /* F32 keeps the AVX2 kernel's order in the AVX-512 one. */
                else if (c->type == KERN_F32 && level == KERN_AVX2_LEVEL)
                    avx2[r] = out[r];
                else if (c->type == KERN_F32)
                    TEST_CHECK(out[r] == avx2[r]);
                else if (c->type == KERN_F16 || c->type == KERN_BF16 ||
                         c->type == KERN_Q8_0 ||
                         c->type >= KERN_Q4_0)
                    TEST_CHECK(out[r] == scalar[r]);
            }
        }
        kern_set_level(KERN_AVX512_LEVEL);
        free(rp);
        free(q);
        free(s);
        free(dense);
    }
}

static void test_attention_levels(void) {
    enum { N = 9, HS = 13, STRIDE = 40 };
    float q[HS], k[N * STRIDE], v[N * STRIDE], w[N], got[N], mix[HS];
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (int i = 0; i < HS; i++)
        q[i] = frand();
    for (int i = 0; i < N * STRIDE; i++) {
        k[i] = frand();
        v[i] = frand();
    }
    for (int t = 0; t < N; t++)
        w[t] = frand();
    for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
        kern_set_level(level);
        kern_scores(q, k, STRIDE, N, HS, 2.0f, got);
        for (int t = 0; t < N; t++) {
            double want = 0;
            for (int i = 0; i < HS; i++)
                want += (double)q[i] * k[t * STRIDE + i];
            TEST_CHECK(fabs(got[t] - want / 2) < 1e-5);
        }
        memset(mix, 0x7f, sizeof mix); /* overwritten, not accumulated */
        kern_mix(w, v, STRIDE, N, HS, mix);
        for (int i = 0; i < HS; i++) {
            double want = 0;
            for (int t = 0; t < N; t++)
                want += (double)w[t] * v[t * STRIDE + i];
            TEST_CHECK(fabs(mix[i] - want) < 1e-5);
        }
    }
    kern_set_level(KERN_AVX512_LEVEL);
}

/* kern_scores_half at every level equals kern_dot_half key by key at the
 * scalar level, to the bit, for head sizes with and without 64-value
 * steps and key counts around the 16-key blocks. */
static void test_scores_half_levels(void) {
    enum { N = 37, STRIDE = 136 };
    static const int sizes[] = {32, 64, 128, 80};
    static float q[STRIDE], k[N * STRIDE], want[N], got[N];
    static uint16_t kh[N * STRIDE]; /* k as the F16 cache holds it */
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (int i = 0; i < STRIDE; i++)
        q[i] = frand();
    for (int i = 0; i < N * STRIDE; i++)
        k[i] = frand() * 4;
    kern_set_level(KERN_SCALAR_LEVEL);
    kern_round_f16(q, STRIDE);
    kern_round_f16(k, N * STRIDE);
    kern_to_f16(k, kh, N * STRIDE);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int hs = sizes[si];
        for (int n = 1; n <= N; n += 6) {
            kern_set_level(KERN_SCALAR_LEVEL);
            for (int t = 0; t < n; t++)
                want[t] = kern_dot_half(q, k + (size_t)t * STRIDE, hs);
            for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
                kern_set_level(level);
                kern_scores_half(q, kh, STRIDE, n, hs, got);
                TEST_CHECK(memcmp(got, want, (size_t)n * sizeof *got) == 0);
            }
        }
    }
    kern_set_level(KERN_AVX512_LEVEL);
}

/* kern_mix_half at every level equals the scalar level to the bit, for
 * head sizes in and out of 16-value registers and caches below, at and
 * past 64 positions. */
static void test_mix_half_levels(void) {
    enum { N = 150, STRIDE = 136 };
    static const int sizes[] = {32, 64, 128, 80, 13};
    static float w[N], v[N * STRIDE], want[STRIDE], got[STRIDE];
    static uint16_t v16[N * STRIDE];
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (int i = 0; i < N; i++)
        w[i] = frand();
    for (int i = 0; i < N * STRIDE; i++)
        v[i] = frand() * 4;
    kern_set_level(KERN_SCALAR_LEVEL);
    kern_round_f16(w, N);
    kern_to_f16(v, v16, N * STRIDE);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int hs = sizes[si];
        for (int n = 1; n <= N; n += 29) {
            int n_kv = (n + 31) & ~31;
            kern_set_level(KERN_SCALAR_LEVEL);
            kern_mix_half(w, v16, STRIDE, n, n_kv, hs, want);
            for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
                kern_set_level(level);
                kern_mix_half(w, v16, STRIDE, n, n_kv, hs, got);
                TEST_CHECK(memcmp(got, want, (size_t)hs * sizeof *got) == 0);
            }
        }
    }
    kern_set_level(KERN_AVX512_LEVEL);
}

/* kern_act_quantize gives the same int8 values, scales and sums at every
 * level: random values, exact ties, a zero block, and blocks with a NaN
 * or an infinity in them. */
static void test_act_levels(void) {
    enum { N = 1024 };
    static const int codes[] = {KERN_ACT_Q8_0, KERN_ACT_Q8_K};
    static float x[N], s[2][N], sum[2][N];
    static int8_t q[2][N];
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (int i = 0; i < N; i++)
        x[i] = frand() * (float)(1 + i % 7);
    for (int i = 0; i < 32; i++)
        x[32 + i] = (float)(i - 16) + 0.5f; /* ties at 127/16.5 steps */
    memset(x + 64, 0, 32 * sizeof *x);
    x[300] = NAN;
    x[600] = INFINITY;
    for (size_t ci = 0; ci < 2; ci++)
        for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
            int k = level != KERN_SCALAR_LEVEL;
            kern_act a = {x, N, q[k], s[k], sum[k], 0};
            kern_set_level(level);
            kern_act_quantize(&a, codes[ci]);
            TEST_CHECK(memcmp(q[0], q[1], sizeof q[0]) == 0 || !k);
            TEST_CHECK(memcmp(s[0], s[1], N / 32 * sizeof(float)) == 0 || !k);
            TEST_CHECK(memcmp(sum[0], sum[1], N / 32 * sizeof(float)) == 0 ||
                       !k);
        }
    kern_set_level(KERN_AVX512_LEVEL);
}

static void test_half_conversions(void) {
    int bad = 0;
    /* Every half survives a round trip through float (NaNs stay NaN). */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kern_f16_to_f32((uint16_t)h);
        uint16_t back = kern_f32_to_f16(f);
        if (f != f ? ((back & 0x7c00) != 0x7c00 || !(back & 0x3ff))
                   : back != h)
            bad++;
    }
    TEST_CHECK(bad == 0);
    TEST_CHECK(kern_f16_to_f32(0x3c00) == 1.0f);
    TEST_CHECK(kern_f16_to_f32(0xc000) == -2.0f);
    TEST_CHECK(kern_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    TEST_CHECK(kern_f32_to_f16(65520.0f) == 0x7c00); /* rounds to inf */
    TEST_CHECK(kern_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00); /* tie */
    TEST_CHECK(kern_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02);
    TEST_CHECK(kern_f32_to_f16(ldexpf(1.0f, -26)) == 0);
    TEST_CHECK(kern_f32_to_f16(-ldexpf(1.0f, -25) * 1.5f) == 0x8001);
}

/* kern_round_f16 at every level equals the scalar round trip, on values
 * of every size (subnormal halves, ties, overflow to infinity). */
static void test_round_f16_levels(void) {
    enum { N = 4099 };
    static float x[N], want[N], got[N];
    static uint16_t h[N], hwant[N];
    int top = kern_set_level(KERN_AVX512_LEVEL), bad = 0;

    for (int i = 0; i < N; i++)
        x[i] = ldexpf(frand(), (i % 48) - 30);
    x[0] = 65520.0f;
    x[1] = 1.0f + ldexpf(1.0f, -11);
    x[2] = -ldexpf(1.0f, -25) * 1.5f;
    x[3] = -0.0f;
    for (int i = 0; i < N; i++) {
        hwant[i] = kern_f32_to_f16(x[i]);
        want[i] = kern_f16_to_f32(hwant[i]);
    }
    for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
        kern_set_level(level);
        memcpy(got, x, sizeof got);
        kern_round_f16(got, N);
        bad += memcmp(got, want, sizeof got) != 0;
        kern_to_f16(x, h, N); /* the F16 cache's entries */
        bad += memcmp(h, hwant, sizeof h) != 0;
    }
    kern_set_level(KERN_AVX512_LEVEL);
    TEST_CHECK(bad == 0);
}

/* kern_argmax at every level gives the scalar loop's index: the first of
 * ties, zeros of both signs equal, NaNs never chosen unless at v[0], and
 * every length around the vector width. */
static void test_argmax_levels(void) {
    enum { N = 300 };
    static float v[N];
    int top = kern_set_level(KERN_AVX512_LEVEL), bad = 0;

    for (int n = 1; n <= N; n += n < 20 ? 1 : 37)
        for (int k = 0; k < 6; k++) {
            int want;
            for (int i = 0; i < n; i++)
                v[i] = (float)((i * 7919 + k * 104729) % 11) - 10.0f;
            if (k == 1)
                v[n / 2] = NAN;
            if (k == 2)
                v[0] = NAN;
            if (k == 3)
                for (int i = 0; i < n; i++)
                    v[i] = i % 2 ? 0.0f : -0.0f;
            if (k == 4)
                v[n - 1] = INFINITY;
            want = 0;
            for (int i = 1; i < n; i++)
                if (v[i] > v[want])
                    want = i;
            for (int level = KERN_SCALAR_LEVEL; level <= top; level++) {
                kern_set_level(level);
                bad += kern_argmax(v, n) != want;
            }
        }
    kern_set_level(KERN_AVX512_LEVEL);
    TEST_CHECK(bad == 0);
}

/* kern_rope at every level equals the scalar level bit for bit, for both
 * layouts, with and without fused products, on whole heads of sizes the
 * vector form takes (64, 128) and one it leaves to the scalar (40). */
static void test_rope_levels(void) {
    static const int sizes[] = {64, 128, 40};
    float x[768], cs[128], want[768], got[768];
    int top = kern_set_level(KERN_AVX512_LEVEL), bad = 0;

    for (int i = 0; i < 768; i++)
        x[i] = frand() * 3.0f;
    for (int i = 0; i < 128; i += 2) {
        cs[i] = cosf(0.37f * (float)i + 0.1f);
        cs[i + 1] = sinf(0.37f * (float)i + 0.1f);
    }
    for (int z = 0; z < 3; z++)
        for (int mode = 0; mode < 4; mode++) {
            int hs = sizes[z], n = 640 / hs * hs;
            kern_set_level(KERN_SCALAR_LEVEL);
            memcpy(want, x, sizeof want);
            kern_rope(want, n, hs, cs, mode & 1, mode >> 1);
            for (int level = KERN_AVX2_LEVEL; level <= top; level++) {
                kern_set_level(level);
                memcpy(got, x, sizeof got);
                kern_rope(got, n, hs, cs, mode & 1, mode >> 1);
                bad += memcmp(got, want, sizeof got) != 0;
            }
        }
    kern_set_level(KERN_AVX512_LEVEL);
    TEST_CHECK(bad == 0);
}

static void test_quantize_edges(void) {
    float x[64] = {0}, s[2];
    int8_t q[64];
    kern_quantize(x, 64, 32, q, s); /* all zero: scale 0, values 0 */
    TEST_CHECK(s[0] == 0 && q[5] == 0);
    x[3] = NAN;
    x[40] = -8;
    x[41] = 4;
    kern_quantize(x, 64, 32, q, s);
    TEST_CHECK(q[3] == 0 && q[40] == -127 && q[41] == 64);
}

/* ggml's activation types: Q8_0 with a half scale and ties to even, Q8_K
 * around the signed value of largest magnitude. */
static void test_act_codes(void) {
    float x[256] = {0}, s[256], sum[256];
    int8_t q[256];
    kern_act a = {x, 256, q, s, sum, 0};

    x[0] = 127.0f; /* scale 1: x * 127/amax is x */
    x[1] = 2.5f;
    x[2] = -3.5f;
    x[40] = 0.1f; /* a group of its own: scale 0.1/127 as a half */
    kern_act_quantize(&a, KERN_ACT_Q8_0);
    TEST_CHECK(q[0] == 127 && q[1] == 2 && q[2] == -4); /* ties to even */
    TEST_CHECK(s[0] == 1.0f && sum[0] == 125.0f);
    TEST_CHECK(s[1] == kern_f16_to_f32(kern_f32_to_f16(0.1f / 127.0f)));
    TEST_CHECK(q[40] == 127);

    x[200] = -254.0f; /* the block's largest, negative: scale 2 */
    a.gs = 0;
    kern_act_quantize(&a, KERN_ACT_Q8_K);
    TEST_CHECK(q[200] == -127 && s[0] == 2.0f && s[7] == 2.0f);
    TEST_CHECK(q[0] == 64 && q[1] == 1 && q[2] == -2); /* 63.5 -> 64 */
    x[200] = 254.0f; /* positive: the scale's sign flips with q's */
    a.gs = 0;
    kern_act_quantize(&a, KERN_ACT_Q8_K);
    TEST_CHECK(q[200] == -127 && s[0] == -2.0f && q[0] == -64);

    a.gs = 0;
    x[3] = 1.0f + ldexpf(1.0f, -12); /* rounds to 1 in half precision */
    kern_act_quantize(&a, KERN_ACT_F16);
    TEST_CHECK(a.f == s && s[3] == 1.0f && s[0] == 127.0f);
}

/* llama.cpp's float arithmetic against plain C forms of the same maths. */
static void test_ggml_math(void) {
    float a[200], b[200], w[200], v[200 * 3], mix[3], want[3], g[40], u[40];
    uint16_t v16[200 * 3], b16[200];
    double d = 0;

    for (float t = -100.0f; t < 88.0f; t += 0.37f) {
        float e = kern_expf_ggml(t), r = expf(t);
        TEST_CHECK(fabsf(e - r) <= 3e-7f * r + 1e-37f);
    }
    TEST_CHECK(kern_expf_ggml(-INFINITY) == 0.0f);
    TEST_CHECK(kern_expf_ggml(100.0f) == INFINITY);
    for (int i = 0; i < 200; i++) {
        a[i] = kern_f16_to_f32(kern_f32_to_f16(frand()));
        b[i] = kern_f16_to_f32(kern_f32_to_f16(frand()));
        if (i < 40)
            d += (double)(a[i] * b[i]);
    }
    /* Under 64 values it is a plain sum in double. */
    TEST_CHECK(kern_dot_half(a, b, 40) == (float)d);
    d = 0;
    for (int i = 0; i < 200; i++)
        d += (double)a[i] * b[i];
    TEST_CHECK(fabs(kern_dot_half(a, b, 200) - d) < 1e-4);

    for (int i = 0; i < 37; i++)
        w[i] = v[i] = frand() * 4;
    kern_softmax(v, 37);
    kern_softmax_ggml(w, 37, 1.0f);
    for (int i = 0; i < 37; i++)
        TEST_CHECK(fabsf(w[i] - v[i]) < 1e-6f);

    for (int i = 0; i < 200 * 3; i++)
        v[i] = kern_f16_to_f32(kern_f32_to_f16(frand()));
    kern_to_f16(v, v16, 200 * 3);
    kern_to_f16(b, b16, 200);
    for (int n = 1; n <= 200; n += 67) {
        kern_mix(w, v, 3, n < 37 ? n : 37, 3, want);
        kern_mix_half(w, v16, 3, n < 37 ? n : 37, (n + 31) & ~31, 3, mix);
        for (int j = 0; j < 3; j++)
            TEST_CHECK(fabsf(mix[j] - want[j]) < 1e-5f);
    }
    for (int i = 0; i < 40; i++) {
        g[i] = frand() * 8;
        u[i] = frand();
        want[0] = g[i] / (1.0f + expf(-g[i])) * u[i];
        kern_swiglu_ggml(g + i, u + i, 1);
        TEST_CHECK(fabsf(g[i] - want[0]) < 1e-6f);
    }
    kern_swiglu_ggml(g, u, 40); /* runs of 16, then the rest */
    TEST_CHECK(isfinite(g[0]) && isfinite(g[39]));
    /* The SIMD exp gives the scalar one's bits, also past its range; the
     * SIMD sums give the scalar ones'. */
    for (int level = KERN_SCALAR_LEVEL; level <= KERN_VNNI_LEVEL; level++) {
        float gl[40], sl[37], ml[19], dl = 0;
        static float m0[19], d0;
        kern_set_level(level);
        for (int i = 0; i < 40; i++) {
            gl[i] = (float)(i - 20) * 7.3f;
            if (i < 37)
                sl[i] = (float)(i % 9) * 31.0f - 120.0f;
        }
        kern_swiglu_ggml(gl, u, 40);
        kern_softmax_ggml(sl, 37, 0.7f);
        /* 130 positions of 19 values (a cache of 160: lanes and a tail). */
        kern_mix_half(a, b16, 1, 130, 160, 19, ml);
        for (int n = 1; n <= 200; n += 33)
            dl += kern_dot_half(a, b, n);
        if (level == KERN_SCALAR_LEVEL) {
            memcpy(g, gl, sizeof gl);
            memcpy(w, sl, sizeof sl);
            memcpy(m0, ml, sizeof ml);
            d0 = dl;
        }
        TEST_CHECK(memcmp(g, gl, sizeof gl) == 0);
        TEST_CHECK(memcmp(w, sl, sizeof sl) == 0);
        TEST_CHECK(memcmp(m0, ml, sizeof ml) == 0 && d0 == dl);
    }
}

/* --------------------------------------------------------------- tpool */

typedef struct sum_job {
    atomic_int hits[64];
    atomic_long total;
} sum_job;

static void sum_part(void *arg, int part, int nparts) {
    sum_job *j = arg;
    long lo = 100000L * part / nparts, hi = 100000L * (part + 1) / nparts, s = 0;
    for (long i = lo; i < hi; i++)
        s += i;
    atomic_fetch_add(&j->hits[part], 1);
    atomic_fetch_add(&j->total, s);
}

static tpool *shared_pool;

static void *hammer(void *arg) {
    int *ok = arg;
    for (int k = 0; k < 300; k++) {
        sum_job j = {0};
        tpool_run(shared_pool, sum_part, &j);
        if (atomic_load(&j.total) != 100000L * 99999 / 2)
            *ok = 0;
    }
    return NULL;
}

static void test_tpool(void) {
    for (int n = 1; n <= 3; n++) {
        tpool *p;
        TEST_REQUIRE(tpool_new(n, &p) == 0);
        TEST_CHECK(tpool_size(p) == n);
        for (int k = 0; k < 200; k++) {
            sum_job j = {0};
            tpool_run(p, sum_part, &j);
            TEST_CHECK(atomic_load(&j.total) == 100000L * 99999 / 2);
        }
        tpool_free(p);
    }
    {
        sum_job j = {0};
        tpool_run(NULL, sum_part, &j); /* NULL pool: caller alone */
        TEST_CHECK(atomic_load(&j.hits[0]) == 1);
    }
    /* Several callers share one pool; jobs take turns. */
    {
        pthread_t th[3];
        int ok[3] = {1, 1, 1};
        TEST_REQUIRE(tpool_new(2, &shared_pool) == 0);
        for (int i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, hammer, &ok[i]);
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            TEST_CHECK(ok[i]);
        }
        tpool_free(shared_pool);
    }
    TEST_CHECK(tpool_new(0, &shared_pool) < 0);
}

/* quant_encode then quant_dequant stays within each format's step. */
static void test_encode_round_trip(void) {
    static const struct {
        int type;
        float tol;
    } cases[] = {{KERN_Q8_0, 0.005f}, {KERN_Q4_K, 0.1f}, {KERN_Q6_K, 0.03f}};
    float x[512], y[512];
    uint8_t blocks[512 / 32 * 34];

    for (int i = 0; i < 512; i++)
        x[i] = frand();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float worst = 0.0f;
        TEST_REQUIRE(quant_encode(cases[c].type, x, 512, blocks) == 0);
        quant_dequant(cases[c].type, blocks, 512, y);
        for (int i = 0; i < 512; i++)
            worst = fmaxf(worst, fabsf(x[i] - y[i]));
        TEST_CHECK(worst < cases[c].tol);
        if (worst >= cases[c].tol)
            fprintf(stderr, "%s round trip error %g\n",
                    kern_type_name(cases[c].type), worst);
    }
    TEST_CHECK(quant_encode(KERN_Q5_0, x, 512, blocks) == AISLE_EINVAL);
    TEST_CHECK(quant_encode(KERN_Q4_K, x, 100, blocks) == AISLE_EINVAL);
}

/* kern_matvec_n with several activations equals kern_matvec with each,
 * to the bit: a batch (tiles of rows x activations at the AVX-512 level,
 * of every width up to KERN_MAX_ACTS, with row counts that leave partial
 * tiles) never changes a sequence's numbers. */
static void test_matvec_n(void) {
    static const mat_case cases[] = {
        {KERN_Q8_0, 9, 96, 32},  {KERN_Q4_0, 7, 64, 32},  {KERN_Q5_1, 5, 96, 32},
        {KERN_Q4_K, 6, 512, 256}, {KERN_Q5_K, 4, 256, 256}, {KERN_Q5_K, 7, 512, 256},
        {KERN_Q6_K, 5, 256, 256}, {KERN_F32, 5, 64, 0},  {KERN_F32, 7, 77, 0},
        {KERN_Q8_0, 11, 256, 32}, {KERN_Q4_K, 7, 256, 256},
        {KERN_Q8_0, 16, 64, 32},  {KERN_Q6_K, 16, 256, 256},
        {KERN_Q8_0, 15, 512, 32},
        /* whole runs of kern_repack's KERN_RP_ROWS rows, and rows past them */
        {KERN_Q8_0, 48, 96, 32},  {KERN_Q8_0, 40, 256, 32},
        {KERN_Q4_K, 48, 256, 256}, {KERN_Q4_K, 35, 512, 256},
        {KERN_Q6_K, 48, 256, 256}, {KERN_Q6_K, 37, 512, 256},
    };
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const mat_case *c = &cases[ci];
        enum { NX = KERN_MAX_ACTS, ROWS = 48 };
        void *q;
        float *s, *dense, x[NX][512], xs[NX][512], xsum[NX][512];
        float one[ROWS], many[NX * ROWS];
        int8_t xq[NX][512];
        kern_act act[NX];
        kern_mat w = {.type = c->type, .rows = c->rows, .cols = c->cols,
                      .gs = c->gs}, wr;
        void *rp;

        build(c, &q, &s, &dense);
        w.q = q;
        w.s = s;
        rp = repacked(&w);
        wr = w;
        wr.rp = rp;
        for (int t = 0; t < NX; t++) {
            for (int j = 0; j < c->cols; j++)
                x[t][j] = frand();
            act[t] = (kern_act){x[t], c->cols, xq[t], xs[t], xsum[t], 0};
            if (kern_needs_act(&w))
                kern_act_quantize(&act[t], kern_needs_act(&w));
        }
        /* A Q8_0, Q4_K or Q6_K matrix a second time with the batch (and
         * a single product, nx 1) from its repacked copy. */
        for (int v = 0; v < (top + 1) * (rp ? 2 : 1); v++) {
            int level = v % (top + 1);
            kern_set_level(level);
            for (int nx = 1; nx <= NX; nx++) {
                /* Rows from 1, as a pool part that does not start a tile. */
                kern_matvec_n(v > top ? &wr : &w, act, nx, many, ROWS, 1,
                              c->rows);
                for (int t = 0; t < nx; t++) {
                    kern_matvec(&w, &act[t], one, 0, c->rows);
                    for (int r = 1; r < c->rows; r++)
                        TEST_CHECK(one[r] == many[ROWS * t + r]);
                }
            }
        }
        kern_set_level(KERN_AVX512_LEVEL);
        free(rp);
        free(q);
        free(s);
        free(dense);
    }
}

/* K-quant rows longer than the activation terms a batched product
 * forms up front (64 blocks, kern.c's KERN_KQ_PRE): the tiles then form
 * them block by block, with the same bits as the scalar level, for one
 * activation and for a batch. */
static void test_kquant_long_rows(void) {
    enum { ROWS = 5, COLS = 66 * 256, NX = 5 };
    static const int types[] = {KERN_Q4_K, KERN_Q5_K};
    int top = kern_set_level(KERN_AVX512_LEVEL);

    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        mat_case c = {types[ti], ROWS, COLS, 256};
        void *q;
        float *s, *dense, *x = malloc(NX * COLS * sizeof *x),
                          *xs = malloc(NX * COLS * sizeof *xs),
                          *xsum = malloc(NX * COLS * sizeof *xsum);
        int8_t *xq = malloc(NX * COLS);
        float want[NX * ROWS], got[NX * ROWS];
        kern_act act[NX];
        kern_mat w = {.type = c.type, .rows = ROWS, .cols = COLS, .gs = 256};

        build(&c, &q, &s, &dense);
        w.q = q;
        for (int t = 0; t < NX; t++) {
            for (int j = 0; j < COLS; j++)
                x[t * COLS + j] = frand();
            act[t] = (kern_act){x + t * COLS, COLS, xq + t * COLS,
                                xs + t * COLS, xsum + t * COLS, 0};
            kern_act_quantize(&act[t], kern_needs_act(&w));
        }
        kern_set_level(KERN_SCALAR_LEVEL);
        kern_matvec_n(&w, act, NX, want, ROWS, 0, ROWS);
        kern_set_level(top);
        kern_matvec_n(&w, act, NX, got, ROWS, 0, ROWS);
        for (int k = 0; k < NX * ROWS; k++)
            TEST_CHECK(got[k] == want[k]);
        kern_matvec(&w, &act[0], got, 0, ROWS);
        for (int r = 0; r < ROWS; r++)
            TEST_CHECK(got[r] == want[r]);
        free(q);
        free(s);
        free(dense);
        free(x);
        free(xs);
        free(xsum);
        free(xq);
    }
}

int main(void) {
    TEST_RUN(test_encode_round_trip);
    TEST_RUN(test_matvec_all_levels);
    TEST_RUN(test_attention_levels);
    TEST_RUN(test_half_conversions);
    TEST_RUN(test_quantize_edges);
    TEST_RUN(test_act_codes);
    TEST_RUN(test_ggml_math);
    TEST_RUN(test_tpool);
    TEST_RUN(test_round_f16_levels);
    TEST_RUN(test_argmax_levels);
    TEST_RUN(test_rope_levels);
    TEST_RUN(test_scores_half_levels);
    TEST_RUN(test_mix_half_levels);
    TEST_RUN(test_act_levels);
    /* Last: it draws many random values, and the encoders' error bounds
     * above were set on the sequence they see. */
    TEST_RUN(test_matvec_n);
    TEST_RUN(test_kquant_long_rows);
    return test_summary();
}
