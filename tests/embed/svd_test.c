/* The truncated SVD against a dense reference: the singular values of a
 * small sparse matrix from a Gaussian start and from a warm start (its own
 * perturbed vectors, as the final training starts from a validation
 * carve's), and on rank-deficient data, where Cholesky QR cannot be used
 * and the LQ fallback must take over. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "embed/svd.h"
#include "services/base/status.h"
#include "tests/test.h"

#define ROWS 120
#define COLS 80

/* A CSR matrix with its transpose, built from a dense one. */
typedef struct {
    uint64_t off[ROWS + 1], toff[COLS + 1];
    uint32_t idx[ROWS * COLS], tidx[ROWS * COLS];
    double val[ROWS * COLS], tval[ROWS * COLS];
    embed_sparse A, At;
} svd_case;

static void case_build(svd_case *c, const double *dense) {
    uint64_t n = 0;
    for (uint32_t r = 0; r < ROWS; r++) {
        c->off[r] = n;
        for (uint32_t j = 0; j < COLS; j++)
            if (dense[r * COLS + j] != 0) {
                c->idx[n] = j;
                c->val[n++] = dense[r * COLS + j];
            }
    }
    c->off[ROWS] = n;
    n = 0;
    for (uint32_t j = 0; j < COLS; j++) {
        c->toff[j] = n;
        for (uint32_t r = 0; r < ROWS; r++)
            if (dense[r * COLS + j] != 0) {
                c->tidx[n] = r;
                c->tval[n++] = dense[r * COLS + j];
            }
    }
    c->toff[COLS] = n;
    c->A = (embed_sparse){ROWS, COLS, c->off, c->idx, c->val};
    c->At = (embed_sparse){COLS, ROWS, c->toff, c->tidx, c->tval};
}

/* Singular values of the dense matrix, descending, from A^T A. */
static int reference_sigma(const double *dense, double *sigma) {
    double *G = calloc(COLS * COLS, sizeof(double));
    double lam[COLS];
    if (!G) return AISLE_ENOMEM;
    for (uint32_t a = 0; a < COLS; a++)
        for (uint32_t b = 0; b < COLS; b++)
            for (uint32_t r = 0; r < ROWS; r++)
                G[a * COLS + b] += dense[r * COLS + a] * dense[r * COLS + b];
    int rc = embed_sym_eig(G, COLS, lam);
    for (uint32_t c = 0; c < COLS; c++) sigma[c] = lam[COLS - 1 - c] > 0 ? sqrt(lam[COLS - 1 - c]) : 0;
    free(G);
    return rc;
}

/* About 30 % dense, entries in (0, 1], column j scaled by 0.9^j so that
 * the spectrum decays as a real graph's does; with dup, every column a
 * copy of one of the first five (rank 5). */
static void random_dense(double *dense, int dup) {
    uint64_t s = 7;
    for (uint32_t e = 0; e < ROWS * COLS; e++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0;
        dense[e] = u < 0.3 ? u / 0.3 * pow(0.9, (double)(e % COLS)) : 0;
    }
    if (dup)
        for (uint32_t r = 0; r < ROWS; r++)
            for (uint32_t j = 5; j < COLS; j++) dense[r * COLS + j] = dense[r * COLS + j % 5];
}

static double max_rel_err(const double *got, const double *want, uint32_t k) {
    double worst = 0;
    for (uint32_t c = 0; c < k; c++) {
        double e = fabs(got[c] - want[c]) / want[0];
        worst = e > worst ? e : worst;
    }
    return worst;
}

static svd_case sc;
static double dense[ROWS * COLS];

static void test_cold_and_warm(void) {
    enum { K = 10 };
    double want[COLS], sigma[K], V[COLS * K], start[COLS * K];
    random_dense(dense, 0);
    case_build(&sc, dense);
    TEST_REQUIRE(reference_sigma(dense, want) == AISLE_OK);
    TEST_REQUIRE(embed_svd_topk(&sc.A, &sc.At, K, 20, 4, 1, NULL, sigma, V, NULL) == AISLE_OK);
    TEST_CHECK(max_rel_err(sigma, want, K) < 1e-6);
    /* A warm start near the answer needs one iteration. */
    for (uint32_t e = 0; e < COLS * K; e++) start[e] = V[e] + 0.05 * sin((double)e);
    embed_svd_start warm = {start, K};
    TEST_REQUIRE(embed_svd_topk(&sc.A, &sc.At, K, 20, 1, 2, &warm, sigma, V, NULL) == AISLE_OK);
    TEST_CHECK(max_rel_err(sigma, want, K) < 1e-6);
    /* The vectors are orthonormal. */
    for (uint32_t a = 0; a < K; a++)
        for (uint32_t b = 0; b < K; b++) {
            double d = 0;
            for (uint32_t i = 0; i < COLS; i++) d += V[i * K + a] * V[i * K + b];
            TEST_CHECK(fabs(d - (a == b)) < 1e-9);
        }
}

static void test_rank_deficient(void) {
    enum { K = 8 };
    double want[COLS], sigma[K], V[COLS * K];
    random_dense(dense, 1);
    case_build(&sc, dense);
    TEST_REQUIRE(reference_sigma(dense, want) == AISLE_OK);
    TEST_REQUIRE(embed_svd_topk(&sc.A, &sc.At, K, 4, 2, 1, NULL, sigma, V, NULL) == AISLE_OK);
    TEST_CHECK(max_rel_err(sigma, want, 5) < 1e-6);
    for (uint32_t c = 5; c < K; c++) TEST_CHECK(sigma[c] < 1e-6 * sigma[0]);
}

int main(void) {
    TEST_RUN(test_cold_and_warm);
    TEST_RUN(test_rank_deficient);
    return test_summary();
}
