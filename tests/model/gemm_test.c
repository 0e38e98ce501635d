/* gemm_test.c — the prompt's product forms (model/gemm.h, model/amx.h)
 * against scalar references written in the orders those headers define,
 * exactly, over odd row counts, column tails, token counts 1-64 (F32:
 * 16-64, from its GEMM_F32_MIN_TOKENS) and row
 * ranges that start and end inside a tile, for F32 and every block type
 * the AMX form takes. Runs without shared/; the AMX
 * cases pass as skipped on a CPU or kernel without AMX-INT8. */
#include "tests/test.h"

#include "model/amx.h"
#include "model/gemm.h"
#include "model/kern.h"
#include "model/quant.h"
#include "tests/model/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

/* nx activations of n values (random floats, some runs of zeros so a
 * block's scale is 0) with room for every quantization; owned by the
 * caller, freed by acts_free. */
static kern_act *acts_new(int nx, int n) {
    kern_act *x = calloc((size_t)nx, sizeof *x);
    for (int t = 0; t < nx; t++) {
        float *f = malloc((size_t)n * sizeof *f);
        for (int i = 0; i < n; i++)
            f[i] = (i / 32 + t) % 7 == 3 ? 0.0f : frand() * (1 + t % 3);
        x[t] = (kern_act){f, n, malloc((size_t)n), malloc((size_t)n * 4),
                          malloc((size_t)n * 4), 0};
    }
    return x;
}

static void acts_free(kern_act *x, int nx) {
    for (int t = 0; t < nx; t++) {
        free((void *)x[t].f);
        free(x[t].q);
        free(x[t].s);
        free(x[t].sum);
    }
    free(x);
}

/* amx.h's order for row `row` of a block-quantized matrix (rb bytes per
 * row) and activation a. */
static float ref_amx(int type, const uint8_t *w, size_t rb, int cols, int row,
                     const kern_act *a) {
    int has_b = type == KERN_Q4_K;
    float acc = 0.0f;
    for (int g = 0; g < cols / 32; g++) {
        int8_t q[32];
        float sa[2], b;
        int32_t isum = 0, qsum = 0;
        quant_unpack32(type, w + (size_t)row * rb, g, q, sa, &b);
        for (int k = 0; k < 32; k++) {
            isum += q[k] * a->q[g * 32 + k];
            qsum += a->q[g * 32 + k];
        }
        acc = fmaf((float)isum, sa[0] * a->s[g], acc);
        if (has_b)
            acc = fmaf(b, a->s[g] * (float)qsum, acc);
    }
    return acc;
}

/* gemm.h's F32 order. */
static float ref_f32(const float *w, const float *x, int n) {
    float acc = 0.0f;
    for (int k = 0; k < n; k++)
        acc = fmaf(w[k], x[k], acc);
    return acc;
}

/* The product of w (rows x cols of type `type`, at q) with nx activations
 * over rows [r0, r1) through gemm_prepare/gemm_rows, compared with ref
 * (one of the two above) on every written value; the rest of out must be
 * untouched. */
static void check_case(int type, int rows, int cols, int nx, int r0, int r1) {
    size_t n = (size_t)rows * (size_t)cols;
    float *f = malloc(n * sizeof *f);
    void *q = f;
    size_t rb = 0;
    kern_act *x = acts_new(nx, cols);
    size_t stride = (size_t)rows + 3;
    float *out = malloc(stride * (size_t)nx * sizeof *out);
    void *buf = aligned_alloc(64, gemm_buf_bytes(cols, nx));
    kern_mat w;
    void *rp = NULL;
    int code, bad = 0;

    for (size_t i = 0; i < n; i++)
        f[i] = frand();
    if (type != KERN_F32) {
        int elems, bytes;
        quant_block(type, &elems, &bytes);
        q = tu_random_blocks(type, n, frand);
        rb = (size_t)(cols / elems) * (size_t)bytes;
    }
    w = (kern_mat){.type = type, .rows = rows, .cols = cols,
                   .gs = type == KERN_F32 ? 0 : type >= KERN_Q4_K ? 256 : 32,
                   .q = q};
    if (type == KERN_Q8_0 && kern_repack_bytes(&w)) {
        rp = aligned_alloc(64, (kern_repack_bytes(&w) + 63) / 64 * 64);
        kern_repack(&w, rp);
    }
    code = kern_needs_act(&w);
    for (int t = 0; t < nx; t++)
        if (code)
            kern_act_quantize(&x[t], code);
    for (size_t i = 0; i < stride * (size_t)nx; i++)
        out[i] = -12345.0f;
    TEST_REQUIRE(gemm_handles(&w, nx));
    /* in two ranges, as two threads would */
    gemm_prepare(x, nx, 0, nx / 2, code, buf);
    gemm_prepare(x, nx, nx / 2, nx, code, buf);
    gemm_rows(&w, nx, buf, out, stride, r0, r1);
    for (int t = 0; t < nx; t++)
        for (int i = 0; i < (int)stride; i++) {
            float got = out[stride * (size_t)t + (size_t)i], want = -12345.0f;
            if (i >= r0 && i < r1)
                want = type != KERN_F32
                           ? ref_amx(type, q, rb, cols, i, &x[t])
                           : ref_f32(f + (size_t)i * (size_t)cols, x[t].f,
                                     cols);
            if (memcmp(&got, &want, sizeof got) && bad++ < 5)
                fprintf(stderr, "type %d %dx%d nx %d rows %d-%d: [%d][%d] "
                        "%.9g, want %.9g\n", type, rows, cols, nx, r0, r1, t,
                        i, got, want);
        }
    TEST_CHECK(bad == 0);
    /* The same products as kern_matvec's up to rounding: of sums whose
     * terms are up to ~2 here and cancel, and for Q4_K of its large
     * integer mins. */
    for (int t = 0; t < nx; t++) {
        float *dec = malloc((size_t)rows * sizeof *dec);
        float tol = type == KERN_Q4_K ? 2e-3f : 1e-4f;
        kern_matvec(&w, &x[t], dec, 0, rows);
        for (int i = r0; i < r1; i++) {
            float got = out[stride * (size_t)t + (size_t)i];
            if (!(fabsf(got - dec[i]) <= tol * (1.0f + fabsf(dec[i]))) &&
                bad++ < 5)
                fprintf(stderr, "type %d: [%d][%d] %.9g, kern_matvec %.9g\n",
                        type, t, i, got, dec[i]);
        }
        free(dec);
    }
    TEST_CHECK(bad == 0);
    if (q != f)
        free(q);
    free(rp);
    free(f);
    free(out);
    free(buf);
    acts_free(x, nx);
}

/* Q8_0 and Q4_K on shapes with odd group counts, more groups than one
 * unpacked chunk, and a K-quant's 256. */
static void test_amx(void) {
    static const int types[] = {KERN_Q8_0, KERN_Q4_K};
    static const int shape[][2] = {{16, 256}, {19, 512}, {37, 768},
                                   {50, 2304}, {17, 256}};
    if (kern_get_level() < KERN_AMX_LEVEL) {
        fprintf(stderr, "no AMX-INT8 here: AMX cases skipped\n");
        return;
    }
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        for (size_t s = 0; s < sizeof shape / sizeof *shape; s++)
            for (int nx = 1; nx <= GEMM_MAX_TOKENS; nx += nx < 3 ? 1 : 13) {
                int rows = shape[s][0], cols = shape[s][1];
                check_case(types[k], rows, cols, nx, 0, rows);
                check_case(types[k], rows, cols, nx, 3, rows - 2);
                check_case(types[k], rows, cols, nx, rows - 5, rows);
            }
    for (int nx = 1; nx <= 16; nx++) /* every width of a tile of tokens */
        check_case(KERN_Q8_0, 40, 96, nx, 0, 40);
}

/* Q8_0 without AMX: amx.h's order by AVX-512 VNNI on the repacked copy,
 * with whole runs, rows before and after them, and ranges inside a run. */
static void test_q8_vnni(void) {
    static const int shape[][2] = {{16, 256}, {19, 512}, {37, 768},
                                   {50, 2304}, {32, 64}};
    if (kern_set_level(KERN_AVX512_LEVEL) < KERN_AVX512_LEVEL) {
        fprintf(stderr, "no AVX-512 here: Q8_0 VNNI cases skipped\n");
        kern_set_level(KERN_AMX_LEVEL);
        return;
    }
    for (size_t s = 0; s < sizeof shape / sizeof *shape; s++)
        for (int nx = GEMM_Q8_MIN_TOKENS; nx <= GEMM_MAX_TOKENS;
             nx += nx < 25 ? 1 : 13) {
            int rows = shape[s][0], cols = shape[s][1];
            check_case(KERN_Q8_0, rows, cols, nx, 0, rows);
            check_case(KERN_Q8_0, rows, cols, nx, 3, rows - 2);
            check_case(KERN_Q8_0, rows, cols, nx, rows - 5, rows);
        }
    kern_set_level(KERN_AMX_LEVEL);
}

static void test_f32(void) {
    static const int shape[][2] = {{1, 16}, {5, 7}, {9, 33}, {23, 100},
                                   {40, 768}, {18, 17}, {13, 6}};
    if (kern_get_level() < KERN_AVX512_LEVEL) {
        fprintf(stderr, "no AVX-512 here: F32 cases skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof shape / sizeof *shape; s++)
        for (int nx = GEMM_F32_MIN_TOKENS; nx <= GEMM_MAX_TOKENS;
             nx += nx < 33 ? 1 : 9) {
            int rows = shape[s][0], cols = shape[s][1];
            check_case(KERN_F32, rows, cols, nx, 0, rows);
            if (rows > 3)
                check_case(KERN_F32, rows, cols, nx, 1, rows - 2);
        }
}

/* Below the levels they need, the forms step aside for kern_matvec_n. */
static void test_levels(void) {
    kern_mat q8 = {.type = KERN_Q8_0, .rows = 32, .cols = 64, .gs = 32};
    kern_mat f32 = {.type = KERN_F32, .rows = 32, .cols = 64};
    kern_mat q6k = {.type = KERN_Q6_K, .rows = 32, .cols = 256, .gs = 256};
    kern_mat q50 = {.type = KERN_Q5_0, .rows = 32, .cols = 256, .gs = 32};
    int top = kern_set_level(KERN_AMX_LEVEL);

    TEST_CHECK(!gemm_handles(&q6k, 16) && !gemm_handles(&q50, 16));
    TEST_CHECK(gemm_handles(&q8, 1) == (top >= KERN_AMX_LEVEL));
    kern_set_level(KERN_AVX512_LEVEL);
    TEST_CHECK(!gemm_handles(&q8, 16));
    TEST_CHECK(gemm_handles(&f32, GEMM_F32_MIN_TOKENS) ==
               (top >= KERN_AVX512_LEVEL));
    /* fewer tokens than a vector's worth: kern.h's form (the classifier) */
    TEST_CHECK(!gemm_handles(&f32, GEMM_F32_MIN_TOKENS - 1));
    kern_set_level(KERN_VNNI_LEVEL);
    TEST_CHECK(!gemm_handles(&f32, GEMM_F32_MIN_TOKENS));
    kern_set_level(KERN_AMX_LEVEL);
}

int main(void) {
    TEST_RUN(test_amx);
    TEST_RUN(test_q8_vnni);
    TEST_RUN(test_f32);
    TEST_RUN(test_levels);
    return test_summary();
}
