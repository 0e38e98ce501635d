/* Tests for retrieval/ivf and retrieval/vec: exact answers against a brute
 * force over odd dimensions, the quantized kernels' sums against a plain
 * sum on every kernel, the quantized scan's re-scored top against the
 * half rows' own, a filtered search, removal and replacement keeping the
 * slot map right, probes confined to the nearest lists (a query's own
 * nprobe beside the index's), the hit sort
 * giving qsort's order. */
#include "retrieval/ivf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/vec.h"
#include "services/base/status.h"
#include "tests/test.h"

static uint64_t rng = 7;
static float uniform(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(rng >> 40) / (float)(1 << 24) - 0.5f;
}

static float plain_dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return (float)s;
}

/* Every length around the kernel's 8- and 16-wide steps. */
static void test_dot_matches_plain_sum(void) {
    float a[80], b[80];
    for (int j = 0; j < 80; j++) a[j] = uniform(), b[j] = uniform();
    for (int d = 1; d <= 80; d++) {
        float want = plain_dot(a, b, d), got = vec_dot(a, b, d);
        TEST_CHECK(got - want < 1e-4f && want - got < 1e-4f);
    }
}

/* Rows scored four at a time give the same bits as one at a time, at
 * every length (a search hit's score and the ranker's own product of the
 * same pair must agree exactly). */
static void test_dots_match_dot_bit_for_bit(void) {
    enum { ROWS = 11, MAXD = 70 };
    static float rows[ROWS * MAXD];
    float q[MAXD], out[ROWS];
    for (int j = 0; j < ROWS * MAXD; j++) rows[j] = uniform();
    for (int j = 0; j < MAXD; j++) q[j] = uniform();
    for (int d = 1; d <= MAXD; d++) {
        const float *at[ROWS];
        float at_out[ROWS];
        vec_dots(q, rows, ROWS, d, out);
        /* By pointer, in another order: rows scattered over a table. */
        for (int i = 0; i < ROWS; i++) at[i] = rows + (size_t)((i * 7) % ROWS) * (size_t)d;
        vec_dots_at(q, at, ROWS, d, at_out);
        for (int i = 0; i < ROWS; i++) {
            TEST_CHECK(out[i] == vec_dot(q, rows + i * d, d));
            TEST_CHECK(at_out[i] == vec_dot(q, at[i], d));
        }
    }
}

/* Half rows, four at a time or one, score the same bits as the float
 * product of the widened rows, at every length. */
static void test_half_dots_match_dot_bit_for_bit(void) {
    enum { ROWS = 11, MAXD = 70 };
    static uint16_t rows[ROWS * MAXD];
    static float wide[ROWS * MAXD];
    float q[MAXD], out[ROWS], one;
    for (int j = 0; j < MAXD; j++) q[j] = uniform();
    for (int d = 1; d <= MAXD; d++) {
        for (int j = 0; j < ROWS * d; j++) wide[j] = vec_from_half(rows[j] = vec_to_half(uniform()));
        vec_dots_half(q, rows, ROWS, d, out);
        for (int i = 0; i < ROWS; i++) {
            vec_dots_half(q, rows + i * d, 1, d, &one);
            TEST_CHECK(out[i] == one && out[i] == vec_dot(q, wide + i * d, d));
        }
    }
}

/* Every finite half survives the trip through a float; floats round to
 * the nearest half (ties to even); half rows score within the halves'
 * precision of the float product. */
static void test_half_floats(void) {
    enum { D = 37 };
    uint16_t rows[3 * D];
    float q[D], v[3 * D], out[3];
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7c00) != 0x7c00) TEST_CHECK(vec_to_half(vec_from_half((uint16_t)h)) == h);
    TEST_CHECK(vec_to_half(1.0f) == 0x3c00 && vec_to_half(-2.0f) == 0xc000);
    TEST_CHECK(vec_to_half(1.0f + 1.0f / 2048) == 0x3c00);     /* a tie: to even */
    TEST_CHECK(vec_to_half(1.0f + 3.0f / 2048) == 0x3c02);     /* a tie: to even, up */
    TEST_CHECK(vec_to_half(1e9f) == 0x7bff && vec_to_half(1e-9f) == 0);
    for (int j = 0; j < D; j++) q[j] = uniform();
    for (int j = 0; j < 3 * D; j++) rows[j] = vec_to_half(v[j] = uniform());
    vec_dots_half(q, rows, 3, D, out);
    for (int i = 0; i < 3; i++) {
        float want = plain_dot(q, v + i * D, D);
        TEST_CHECK(fabsf(out[i] - want) < 2e-3f);
    }
}

/* q·row over a row of d halves as the column kernels define it: one fused
 * multiply-add after another from 0. */
static float cols_want(const float *q, const uint16_t *row, int d) {
    float s = 0;
    for (int j = 0; j < d; j++) s = fmaf(q[j], vec_from_half(row[j]), s);
    return s;
}

/* Every column kernel gives the fused chain's bits, at lengths around its
 * block and four-block steps, and writes nothing past the n rows. */
static void test_half_cols_kernels_match_fma_chain(void) {
    enum { MAXN = 70, MAXD = 40, NB = (MAXN + VEC_COLS - 1) / VEC_COLS };
    static const size_t ns[] = {1, 15, 16, 17, 48, 63, 64, 65, 70};
    static uint16_t rows[MAXN * MAXD], blocks[NB * VEC_COLS * MAXD];
    float q[MAXD], out[MAXN + 1];
    int ok = 1;
    for (int j = 0; j < MAXD; j++) q[j] = uniform();
    for (int isa = VEC_ISA_BASE; isa <= (int)vec_best_isa(); isa++)
        for (int d = 1; d <= MAXD; d++)
            for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
                size_t n = ns[t];
                for (size_t i = 0; i < n * (size_t)d; i++) rows[i] = vec_to_half(uniform());
                for (size_t i = 0; i < n; i++)
                    for (int j = 0; j < d; j++)
                        blocks[(i / VEC_COLS) * (size_t)d * VEC_COLS + (size_t)j * VEC_COLS +
                               i % VEC_COLS] = rows[i * (size_t)d + (size_t)j];
                out[n] = -1;
                vec_dots_half_cols_isa((vec_isa)isa, q, blocks, n, d, out);
                for (size_t i = 0; i < n; i++)
                    ok &= out[i] == cols_want(q, rows + i * (size_t)d, d);
                ok &= out[n] == -1;
            }
    TEST_CHECK(ok);
}

/* Short rows in lists are kept by column: after adds, removals from the
 * middle and the first block, and a row moved to the other list, a search
 * of every list finds each kept row with its chain score. */
static void test_cols_lists_keep_rows(void) {
    enum { D = 24, N = 70 };
    static float v[N][D], cent[2 * D];
    float q[D], sc[N];
    size_t slots[N];
    int kept[N], ok = 1, n, want = 0;
    ivf *x;
    for (int j = 0; j < D; j++) {
        q[j] = uniform();
        cent[j] = 1;
        cent[D + j] = -1;
    }
    TEST_REQUIRE(ivf_new(D, 2, cent, 2, &x) == AISLE_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) v[i][j] = uniform() + (i % 3 ? 0.6f : -0.6f);
        TEST_REQUIRE(ivf_add(x, (size_t)i, v[i]) == AISLE_OK);
        kept[i] = 1;
    }
    for (int i = 0; i < N; i += 7) ivf_remove(x, (size_t)i), kept[i] = 0;
    ivf_remove(x, 1), kept[1] = 0;
    for (int j = 0; j < D; j++) v[5][j] = -v[5][j];
    TEST_REQUIRE(ivf_add(x, 5, v[5]) == AISLE_OK);
    n = ivf_search(x, q, N, slots, sc);
    for (int i = 0; i < N; i++) want += kept[i];
    ok &= n == want;
    for (int r = 0; r < n; r++) {
        uint16_t h[D];
        for (int j = 0; j < D; j++) h[j] = vec_to_half(v[slots[r]][j]);
        ok &= kept[slots[r]] && sc[r] == cols_want(q, h, D);
    }
    TEST_CHECK(ok);
    ivf_free(x);
}

/* Every kernel's sums are the plain integer sums, at every length around
 * the 16- and 64-code steps and over every byte value (the kernels take
 * any codes, not only vec_q8's). */
static void test_q8_kernels_match_plain_sum(void) {
    enum { ROWS = 9, MAXD = 200 };
    static uint8_t rows[ROWS * MAXD];
    int8_t q[MAXD];
    int32_t out[ROWS];
    int ok = 1;
    for (int j = 0; j < ROWS * MAXD; j++) rows[j] = (uint8_t)(j % 7 == 0 ? 255 * (j % 2) : (int)((uniform() + 0.5f) * 256));
    for (int j = 0; j < MAXD; j++) q[j] = (int8_t)(j % 5 == 0 ? (j % 2 ? -128 : 127) : (int)(uniform() * 254));
    for (int isa = VEC_ISA_BASE; isa <= (int)vec_best_isa(); isa++)
        for (int d = 1; d <= MAXD; d++) {
            vec_dots_q8_isa((vec_isa)isa, q, rows, ROWS, d, out);
            for (int i = 0; i < ROWS; i++) {
                int32_t want = 0;
                for (int j = 0; j < d; j++) want += q[j] * (rows[i * d + j] - 128);
                ok &= out[i] == want;
            }
        }
    TEST_CHECK(ok);
    printf("q8 kernels checked: base to %d\n", (int)vec_best_isa());
}

/* Codes are within half a step of the value; the largest magnitude maps
 * to ±127; a zero or non-finite vector has scale 0 and zero codes. */
static void test_q8_quantizer(void) {
    enum { D = 45 };
    float v[D], scale;
    int8_t c[D];
    int big = 0;
    for (int j = 0; j < D; j++) v[j] = uniform();
    scale = vec_q8(v, D, c);
    TEST_REQUIRE(scale > 0);
    for (int j = 0; j < D; j++) {
        TEST_CHECK(fabsf(v[j] - scale * c[j]) <= scale * 0.5001f);
        big += c[j] == 127 || c[j] == -127;
    }
    TEST_CHECK(big >= 1);
    memset(v, 0, sizeof(v));
    TEST_CHECK(vec_q8(v, D, c) == 0 && c[0] == 0 && c[D - 1] == 0);
    v[3] = NAN;
    TEST_CHECK(vec_q8(v, D, c) == 0 && c[3] == 0);
}

/* With lists of long rows, the quantized scan's candidates re-scored
 * from the half rows give the half rows' own top (every list probed, so
 * that top is a brute force over the half rows): the scores returned are
 * the half scores to the bit, and the rows are the half top's but for
 * near ties (at most 1 %), none below its k-th score by more than 1 % of
 * the scores' spread. A seventh of the rows is removed first, so the
 * codes must move with the rows that fill the holes. */
static void test_q8_search_matches_half_top(void) {
    enum { N = 6000, D = 128, NL = 12, K = 60, Q = 40 };
    static float v[N][D], half[N];
    static uint16_t h[D];
    vec_hit all[N];
    float q[D], sc[K], spread = 0;
    size_t slots[K];
    int missed = 0;
    ivf *x;
    /* Clustered rows: a centre each list, plus noise. */
    static float cent[NL][D];
    for (int l = 0; l < NL; l++)
        for (int j = 0; j < D; j++) cent[l][j] = uniform();
    TEST_REQUIRE(ivf_new(D, NL, &cent[0][0], NL, &x) == AISLE_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) v[i][j] = cent[i % NL][j] + 0.6f * uniform();
        TEST_REQUIRE(ivf_add(x, (size_t)i, v[i]) == AISLE_OK);
    }
    for (int i = 3; i < N; i += 7) ivf_remove(x, (size_t)i);
    for (int t = 0; t < Q; t++) {
        for (int j = 0; j < D; j++) q[j] = uniform();
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < D; j++) h[j] = vec_to_half(v[i][j]);
            vec_dots_half(q, h, 1, D, &half[i]);
            all[i] = (vec_hit){i % 7 == 3 ? -INFINITY : half[i], (uint32_t)i};
        }
        vec_hits_sort(all, N);
        spread = all[0].score - all[N - N / 7 - 1].score;
        TEST_REQUIRE(ivf_search(x, q, K, slots, sc) == K);
        for (int r = 0; r < K; r++) {
            int in = 0;
            TEST_CHECK(sc[r] == half[slots[r]]);
            TEST_CHECK(sc[r] >= all[K - 1].score - 0.01f * spread);
            for (int i = 0; i < K; i++) in |= all[i].id == slots[r];
            missed += !in;
        }
    }
    printf("q8 search: %d of %d top-%d rows not the half top's\n", missed, K * Q, K);
    TEST_CHECK(missed * 100 <= K * Q); /* at most 1 % */
    ivf_free(x);
}

/* One list is exact: the k best by brute force, best first. */
static void test_exact_search_is_brute_force(void) {
    enum { N = 700, D = 13, K = 25 };
    static float v[N][D];
    float q[D], sc[K];
    size_t slots[K];
    ivf *x;
    TEST_REQUIRE(ivf_new(D, 1, NULL, 1, &x) == AISLE_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) v[i][j] = uniform();
        TEST_REQUIRE(ivf_add(x, (size_t)i * 3, v[i]) == AISLE_OK);
    }
    for (int j = 0; j < D; j++) q[j] = uniform();
    TEST_REQUIRE(ivf_search(x, q, K, slots, sc) == K);
    for (int r = 0; r < K; r++) {
        int better = 0;
        TEST_CHECK(slots[r] % 3 == 0);
        for (int i = 0; i < N; i++) better += plain_dot(q, v[i], D) > sc[r] + 1e-5f;
        TEST_CHECK(better <= r); /* nothing outside the answer beats its r-th */
        if (r) TEST_CHECK(sc[r] <= sc[r - 1]);
    }
    TEST_CHECK(ivf_search(x, q, 0, slots, sc) == 0);
    ivf_free(x);
}

static int keep_odd(void *arg, size_t slot) {
    ++*(int *)arg;
    return slot % 2 == 1;
}

/* A filtered search gives the k best of the kept slots (those the whole
 * search would give, filtered, when asked deep enough), and asks keep
 * about fewer rows than the index holds. */
static void test_filtered_search_keeps_the_best_kept(void) {
    enum { N = 3000, D = 8, K = 40 };
    static float v[N][D];
    float q[D], sc[K], all_sc[N];
    size_t slots[K], all[N];
    int asked = 0, m = 0;
    ivf *x;
    TEST_REQUIRE(ivf_new(D, 1, NULL, 1, &x) == AISLE_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) v[i][j] = uniform();
        TEST_REQUIRE(ivf_add(x, (size_t)i, v[i]) == AISLE_OK);
    }
    for (int j = 0; j < D; j++) q[j] = uniform();
    ivf_query one = {.q = q, .k = K, .slots = slots, .scores = sc, .keep = keep_odd,
                     .keep_arg = &asked};
    TEST_REQUIRE(ivf_search_batch(x, &one, 1) == AISLE_OK && one.n == K);
    TEST_REQUIRE(ivf_search(x, q, N, all, all_sc) == N);
    for (int i = 0; i < N && m < K; i++)
        if (all[i] % 2 == 1) {
            TEST_CHECK(slots[m] == all[i] && sc[m] == all_sc[i]);
            m++;
        }
    TEST_CHECK(m == K && asked > 0 && asked < N);
    ivf_free(x);
}

/* Removal moves the last row into the hole; replacing moves lists. */
static void test_remove_and_replace(void) {
    float cent[2 * 2] = {1, 0, 0, 1}, a[2] = {1, 0.1f}, b[2] = {0.1f, 1}, sc[4];
    size_t slots[4];
    ivf *x;
    TEST_REQUIRE(ivf_new(2, 2, cent, 1, &x) == AISLE_OK);
    for (size_t s = 0; s < 3; s++) TEST_REQUIRE(ivf_add(x, s, a) == AISLE_OK);
    TEST_REQUIRE(ivf_add(x, 9, b) == AISLE_OK);
    ivf_remove(x, 0);
    ivf_remove(x, 0); /* absent: nothing */
    ivf_remove(x, 100000);
    TEST_CHECK(ivf_count(x) == 3);
    /* One probe: a query near a sees only a's list. */
    TEST_REQUIRE(ivf_search(x, a, 4, slots, sc) == 2);
    TEST_CHECK((slots[0] == 1 && slots[1] == 2) || (slots[0] == 2 && slots[1] == 1));
    TEST_REQUIRE(ivf_add(x, 2, b) == AISLE_OK); /* moves to b's list */
    TEST_CHECK(ivf_count(x) == 3);
    TEST_REQUIRE(ivf_search(x, a, 4, slots, sc) == 1);
    TEST_CHECK(slots[0] == 1);
    TEST_REQUIRE(ivf_search(x, b, 4, slots, sc) == 2);
    TEST_CHECK(ivf_add(x, (size_t)UINT32_MAX, a) == AISLE_EINVAL);
    ivf_free(x);
}

/* A query's own nprobe overrides the index's, in a batch beside a query
 * at the index's: the index probes one list, the wide query both. */
static void test_query_nprobe(void) {
    float cent[2 * 2] = {1, 0, 0, 1}, a[2] = {1, 0.1f}, b[2] = {0.1f, 1}, sc[2][4];
    size_t slots[2][4];
    ivf *x;
    TEST_REQUIRE(ivf_new(2, 2, cent, 1, &x) == AISLE_OK);
    TEST_REQUIRE(ivf_add(x, 0, a) == AISLE_OK);
    TEST_REQUIRE(ivf_add(x, 1, b) == AISLE_OK);
    ivf_query qs[2] = {{.q = a, .k = 4, .slots = slots[0], .scores = sc[0]},
                       {.q = a, .k = 4, .slots = slots[1], .scores = sc[1], .nprobe = 99}};
    TEST_REQUIRE(ivf_search_batch(x, qs, 2) == AISLE_OK);
    TEST_CHECK(qs[0].n == 1 && slots[0][0] == 0);
    TEST_CHECK(qs[1].n == 2 && slots[1][0] == 0 && slots[1][1] == 1);
    ivf_free(x);
}

/* vec_hits_sort, and a heap's pops, give qsort's order at every length around its
 * insertion and radix cut-offs and on long runs of equal scores (ties by id,
 * -0 with 0), sorted, reversed and shuffled input alike, negative scores too. */
static void test_hits_sort_is_qsort(void) {
    enum { MAXN = 700 };
    static vec_hit a[MAXN], b[MAXN], c[MAXN];
    int ok = 1;
    for (int n = 0; n < MAXN && ok; n += n < 40 || (n > 56 && n < 72) ? 1 : 97)
        for (int shape = 0; shape < 6 && ok; shape++) {
            for (int i = 0; i < n; i++) {
                float s = shape == 0   ? uniform()
                          : shape == 1 ? (float)(i % 5)
                          : shape == 2 ? (float)i
                          : shape == 3 ? (float)(n - i)
                          : shape == 4 ? -1000.0f * (float)(i % 7) + uniform()
                                       : (i % 3 == 0 ? -0.0f : (float)(i % 3) - 1.0f);
                a[i] = (vec_hit){s, (uint32_t)((i * 7919u) % (unsigned)MAXN)};
            }
            memcpy(b, a, sizeof(a[0]) * (size_t)n);
            memcpy(c, a, sizeof(a[0]) * (size_t)n);
            qsort(a, (size_t)n, sizeof(a[0]), vec_hit_desc);
            vec_hits_sort(b, (size_t)n);
            ok = memcmp(a, b, sizeof(a[0]) * (size_t)n) == 0;
            /* The heap pops in the same order. */
            vec_hits_heap(c, (size_t)n);
            for (size_t i = 0, m = (size_t)n; ok && i < (size_t)n; i++) {
                vec_hit x = vec_hits_pop(c, &m);
                ok = x.id == a[i].id && x.score == a[i].score;
            }
        }
    TEST_CHECK(ok);
}

int main(void) {
    TEST_RUN(test_dot_matches_plain_sum);
    TEST_RUN(test_dots_match_dot_bit_for_bit);
    TEST_RUN(test_half_dots_match_dot_bit_for_bit);
    TEST_RUN(test_half_floats);
    TEST_RUN(test_half_cols_kernels_match_fma_chain);
    TEST_RUN(test_cols_lists_keep_rows);
    TEST_RUN(test_q8_kernels_match_plain_sum);
    TEST_RUN(test_q8_quantizer);
    TEST_RUN(test_q8_search_matches_half_top);
    TEST_RUN(test_exact_search_is_brute_force);
    TEST_RUN(test_filtered_search_keeps_the_best_kept);
    TEST_RUN(test_remove_and_replace);
    TEST_RUN(test_query_nprobe);
    TEST_RUN(test_hits_sort_is_qsort);
    return test_summary();
}
