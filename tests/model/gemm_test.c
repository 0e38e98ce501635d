/* gemm_test.c — the prompt's product forms (model/gemm.h, model/amx.h)
 * against scalar references written in the orders those headers define,
 * exactly, over odd row counts, column tails, token counts 1-64 and row
 * ranges that start and end inside a tile. Runs without shared/; the AMX
 * cases pass as skipped on a CPU or kernel without AMX-INT8. */
#include "tests/test.h"

#include "model/amx.h"
#include "model/gemm.h"
#include "model/kern.h"
#include "model/quant.h"

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

/* amx.h's order for row `row` of a Q8_0 matrix and activation a. */
static float ref_q8_0(const uint8_t *w, int cols, int row, const kern_act *a) {
    int nb = cols / 32;
    const uint8_t *r = w + (size_t)row * (size_t)nb * KERN_Q8_0_BYTES;
    float acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = r + (size_t)b * KERN_Q8_0_BYTES;
        uint16_t h;
        int32_t isum = 0;
        memcpy(&h, blk, 2);
        for (int k = 0; k < 32; k++)
            isum += (int8_t)blk[2 + k] * a->q[b * 32 + k];
        acc = fmaf((float)isum, kern_f16_to_f32(h) * a->s[b], acc);
    }
    return acc;
}

/* gemm.h's F32 order. */
static float ref_f32(const float *w, const float *x, int n) {
    float lane[16] = {0};
    for (int k = 0; k < n; k++)
        lane[k % 16] = fmaf(w[k], x[k], lane[k % 16]);
    for (int h = 8; h >= 1; h /= 2)
        for (int j = 0; j < h; j++)
            lane[j] += lane[j + h];
    return lane[0];
}

/* The product of w (rows x cols of type `type`, at q) with nx activations
 * over rows [r0, r1) through gemm_prepare/gemm_rows, compared with ref
 * (one of the two above) on every written value; the rest of out must be
 * untouched. */
static void check_case(int type, int rows, int cols, int nx, int r0, int r1) {
    size_t n = (size_t)rows * (size_t)cols;
    float *f = malloc(n * sizeof *f);
    void *q = f;
    kern_act *x = acts_new(nx, cols);
    size_t stride = (size_t)rows + 3;
    float *out = malloc(stride * (size_t)nx * sizeof *out);
    void *buf = aligned_alloc(64, gemm_buf_bytes(cols, nx));
    kern_mat w;
    int code, bad = 0;

    for (size_t i = 0; i < n; i++)
        f[i] = frand();
    if (type == KERN_Q8_0) {
        q = malloc(n / 32 * KERN_Q8_0_BYTES);
        TEST_CHECK(quant_encode(KERN_Q8_0, f, n, q) == 0);
    }
    w = (kern_mat){.type = type, .rows = rows, .cols = cols,
                   .gs = type == KERN_Q8_0 ? 32 : 0, .q = q};
    code = kern_needs_act(&w);
    for (int t = 0; t < nx; t++)
        if (code)
            kern_act_quantize(&x[t], code);
    for (size_t i = 0; i < stride * (size_t)nx; i++)
        out[i] = -12345.0f;
    TEST_REQUIRE(gemm_handles(&w));
    gemm_prepare(x, nx, code, buf);
    gemm_rows(&w, x, nx, buf, out, stride, r0, r1);
    for (int t = 0; t < nx; t++)
        for (int i = 0; i < (int)stride; i++) {
            float got = out[stride * (size_t)t + (size_t)i], want = -12345.0f;
            if (i >= r0 && i < r1)
                want = type == KERN_Q8_0
                           ? ref_q8_0(q, cols, i, &x[t])
                           : ref_f32(f + (size_t)i * (size_t)cols, x[t].f,
                                     cols);
            if (memcmp(&got, &want, sizeof got) && bad++ < 5)
                fprintf(stderr, "type %d %dx%d nx %d rows %d-%d: [%d][%d] "
                        "%.9g, want %.9g\n", type, rows, cols, nx, r0, r1, t,
                        i, got, want);
        }
    TEST_CHECK(bad == 0);
    if (q != f)
        free(q);
    free(f);
    free(out);
    free(buf);
    acts_free(x, nx);
}

static void test_q8_0_amx(void) {
    static const int shape[][2] = {{16, 32}, {19, 64}, {37, 96}, {50, 800},
                                   {64, 2048}, {17, 224}};
    if (kern_get_level() < KERN_AMX_LEVEL) {
        fprintf(stderr, "no AMX-INT8 here: Q8_0 cases skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof shape / sizeof *shape; s++)
        for (int nx = 1; nx <= GEMM_MAX_TOKENS; nx += nx < 4 ? 1 : 7) {
            int rows = shape[s][0], cols = shape[s][1];
            check_case(KERN_Q8_0, rows, cols, nx, 0, rows);
            check_case(KERN_Q8_0, rows, cols, nx, 3, rows - 2);
            check_case(KERN_Q8_0, rows, cols, nx, rows - 5, rows);
        }
}

static void test_f32(void) {
    static const int shape[][2] = {{1, 16}, {5, 7}, {9, 33}, {23, 100},
                                   {40, 768}, {18, 17}};
    if (kern_get_level() < KERN_AVX512_LEVEL) {
        fprintf(stderr, "no AVX-512 here: F32 cases skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof shape / sizeof *shape; s++)
        for (int nx = 1; nx <= GEMM_MAX_TOKENS; nx += nx < 17 ? 1 : 9) {
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
    kern_mat q4k = {.type = KERN_Q4_K, .rows = 32, .cols = 256, .gs = 256};
    int top = kern_set_level(KERN_AMX_LEVEL);

    TEST_CHECK(!gemm_handles(&q4k));
    TEST_CHECK(gemm_handles(&q8) == (top >= KERN_AMX_LEVEL));
    kern_set_level(KERN_AVX512_LEVEL);
    TEST_CHECK(!gemm_handles(&q8));
    TEST_CHECK(gemm_handles(&f32) == (top >= KERN_AVX512_LEVEL));
    kern_set_level(KERN_VNNI_LEVEL);
    TEST_CHECK(!gemm_handles(&f32));
    kern_set_level(KERN_AMX_LEVEL);
}

int main(void) {
    TEST_RUN(test_q8_0_amx);
    TEST_RUN(test_f32);
    TEST_RUN(test_levels);
    return test_summary();
}
