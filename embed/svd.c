/* svd: randomized truncated SVD (see svd.h). The block lives row major
 * (one row per matrix row), which makes the sparse products stream whole
 * rows; LAPACK, being column major,
 * sees the same buffer as the transposed block, so an LQ factorisation of
 * that view orthonormalises the columns of ours. */
#include "embed/svd.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

/* LAPACK through OpenBLAS; the trailing size_t are gfortran's hidden
 * lengths of the character arguments. */
void dgelqf_(const int *m, const int *n, double *a, const int *lda, double *tau,
             double *work, const int *lwork, int *info);
void dorglq_(const int *m, const int *n, const int *k, double *a, const int *lda,
             const double *tau, double *work, const int *lwork, int *info);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
             size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork,
             int *info, size_t jobz_len, size_t uplo_len);

void embed_sparse_mul(const embed_sparse *A, const double *X, uint32_t l, double *Y) {
#pragma omp parallel for schedule(dynamic, 64)
    for (uint32_t r = 0; r < A->rows; r++) {
        double *y = Y + (size_t)r * l;
        memset(y, 0, l * sizeof(double));
        for (uint64_t e = A->off[r]; e < A->off[r + 1]; e++) {
            const double *x = X + (size_t)A->idx[e] * l;
            double v = A->val[e];
            for (uint32_t c = 0; c < l; c++) y[c] += v * x[c];
        }
    }
}

/* Orthonormalises the l columns of the n x l row-major block X in place. */
static int svd_orth(double *X, uint32_t n, uint32_t l, double *tau) {
    int m = (int)l, nn = (int)n, lwork = -1, lw2 = -1, info = 0;
    double q, q2;
    dgelqf_(&m, &nn, X, &m, tau, &q, &lwork, &info);
    if (!info) dorglq_(&m, &nn, &m, X, &m, tau, &q2, &lw2, &info);
    if (info) return AISLE_EINTERNAL;
    lwork = (int)(q2 > q ? q2 : q);
    double *work = malloc((size_t)lwork * sizeof(double));
    if (!work) return AISLE_ENOMEM;
    dgelqf_(&m, &nn, X, &m, tau, work, &lwork, &info);
    if (!info) dorglq_(&m, &nn, &m, X, &m, tau, work, &lwork, &info);
    free(work);
    return info ? AISLE_EINTERNAL : AISLE_OK;
}

/* One Cholesky QR step: X <- X R^-1 with X^T X = R^T R. dsyrk fills the
 * row-major upper triangle, which LAPACK reads as the column-major lower
 * one; its factor L is then R = L^T in the row-major upper triangle. 0 when
 * X^T X is too close to singular for it (then R is unusable). */
static int svd_cholqr_step(double *X, uint32_t n, uint32_t l, double *G) {
    int m = (int)l, info = 0;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, m, (int)n, 1.0, X, m, 0.0, G, m);
    dpotrf_("L", &m, G, &m, &info, 1);
    if (info) return 0;
    double top = 0, low = INFINITY;
    for (uint32_t c = 0; c < l; c++) {
        double d = G[(size_t)c * l + c];
        top = d > top ? d : top;
        low = d < low ? d : low;
    }
    if (!(low > 1e-6 * top)) return 0;
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, m, 1.0,
                G, m, X, m);
    return 1;
}

/* Orthonormalises X (n x l) by Cholesky QR twice (CholQR2: the second
 * step repairs what the first lost to rounding), all of it BLAS-3 and
 * several times faster than Householder LQ on these tall blocks; LQ when
 * the block is too ill-conditioned for Cholesky (rank-deficient data). */
static int svd_orthonormalise(double *X, uint32_t n, uint32_t l, double *G, double *tau) {
    if (svd_cholqr_step(X, n, l, G) && svd_cholqr_step(X, n, l, G)) return AISLE_OK;
    return svd_orth(X, n, l, tau);
}

static uint64_t svd_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double svd_gauss(uint64_t *s) {
    double u1 = ((double)(svd_rand(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(svd_rand(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The starting block X (cols x l): the caller's warm start in its first
 * columns, Gaussian columns after them. */
static void svd_start(const embed_svd_start *w, uint32_t n, uint32_t l, uint64_t seed,
                      double *X) {
    uint64_t state = seed;
    uint32_t k0 = w && w->V ? (w->k < l ? w->k : l) : 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < l; c++)
            X[(size_t)i * l + c] = c < k0 ? w->V[(size_t)i * w->k + c] : svd_gauss(&state);
}

/* Subspace iteration on A^T A: steps times X <- orth(A^T (A X)), leaving X
 * orthonormal (cols x l) and Y = A X (rows x l). Only the item-side block is
 * orthonormalised: one power step squares the spread of the singular
 * values, which double precision holds without loss for the ranks kept
 * here, and the small problem below works from Y's Gram matrix, so Y
 * needs no basis of its own (half the LQ work of orthonormalising both). */
static int svd_range(const embed_sparse *A, const embed_sparse *At, uint32_t l, uint32_t steps,
                     double *X, double *Y, double *G, double *tau, embed_progress *prog) {
    int rc;
    for (uint32_t it = 0; it < steps; it++) {
        embed_sparse_mul(A, X, l, Y);
        embed_sparse_mul(At, Y, l, X);
        if ((rc = svd_orthonormalise(X, A->cols, l, G, tau)) != AISLE_OK) return rc;
        embed_progress_set(prog, 2 * (uint64_t)it + 2);
    }
    embed_sparse_mul(A, X, l, Y);
    return AISLE_OK;
}

int embed_sym_eig(double *G, int l, double *lam) {
    int lwork = -1, liwork = -1, info = 0, iq;
    double wq;
    dsyevd_("V", "U", &l, G, &l, lam, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info) return AISLE_EINTERNAL;
    lwork = (int)wq;
    liwork = iq;
    double *dwork = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    int rc = AISLE_ENOMEM;
    if (dwork && iwork) {
        dsyevd_("V", "U", &l, G, &l, lam, dwork, &lwork, iwork, &liwork, &info, 1, 1);
        rc = info ? AISLE_EINTERNAL : AISLE_OK;
    }
    free(dwork);
    free(iwork);
    return rc;
}

int embed_svd_topk(const embed_sparse *A, const embed_sparse *At, uint32_t k,
                   uint32_t oversample, uint32_t iters, uint64_t seed,
                   const embed_svd_start *warm, double *sigma, double *V,
                   embed_progress *prog) {
    uint32_t l = k + oversample, n = A->cols, steps = iters + 1;
    if (k == 0 || l > n || l > A->rows) return AISLE_EINVAL;
    double *X = malloc((size_t)n * l * sizeof(double));
    double *Y = malloc((size_t)A->rows * l * sizeof(double));
    double *tau = malloc((size_t)l * sizeof(double));
    double *G = malloc((size_t)l * l * sizeof(double));
    double *lam = malloc((size_t)l * sizeof(double));
    double *W = malloc((size_t)l * k * sizeof(double));
    int rc = AISLE_ENOMEM;
    if (!X || !Y || !tau || !G || !lam || !W) goto done;
    embed_progress_start(prog, "svd", "products", 2 * (uint64_t)steps + 1, prog ? prog->quiet : 1);
    svd_start(warm, n, l, seed, X);
    if ((rc = svd_range(A, At, l, steps, X, Y, G, tau, prog)) != AISLE_OK) goto done;
    /* Rayleigh-Ritz in span X: (A X)^T (A X) = X^T A^T A X has the squared
     * singular values as eigenvalues, and X times its eigenvectors are the
     * right singular vectors. */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)l, (int)A->rows, 1.0, Y,
                (int)l, Y, (int)l, 0.0, G, (int)l);
    if ((rc = embed_sym_eig(G, (int)l, lam)) != AISLE_OK) goto done;
    /* G is symmetric, so column-major eigenvectors read row major are the
     * rows of W^T: eigenvector c is G[c*l .. c*l+l), ascending by value. */
    for (uint32_t r = 0; r < k; r++) {
        uint32_t c = l - 1 - r;
        sigma[r] = lam[c] > 0 ? sqrt(lam[c]) : 0;
        for (uint32_t t = 0; t < l; t++) W[(size_t)t * k + r] = G[(size_t)c * l + t];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)l, 1.0, X,
                (int)l, W, (int)k, 0.0, V, (int)k);
    embed_progress_set(prog, 2 * (uint64_t)steps + 1);
    embed_progress_end(prog);
done:
    free(X);
    free(Y);
    free(tau);
    free(G);
    free(lam);
    free(W);
    return rc;
}
