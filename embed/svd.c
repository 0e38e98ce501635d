/* See svd.h. The block lives row major (one row per matrix row), which
 * makes the sparse products stream whole rows; LAPACK, being column major,
 * sees the same buffer as the transposed block, so an LQ factorisation of
 * that view orthonormalises the columns of ours. */
#include "embed/svd.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK through OpenBLAS; the trailing size_t are gfortran's hidden
 * lengths of the character arguments. */
void dgelqf_(const int *m, const int *n, double *a, const int *lda, double *tau,
             double *work, const int *lwork, int *info);
void dorglq_(const int *m, const int *n, const int *k, double *a, const int *lda,
             const double *tau, double *work, const int *lwork, int *info);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork,
             int *info, size_t jobz_len, size_t uplo_len);

/* Y (A->rows x l) = A X (A->cols x l). */
static void svd_spmm(const embed_sparse *A, const double *X, uint32_t l, double *Y) {
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
    int m = (int)l, nn = (int)n, lwork = -1, info = 0;
    double q;
    dgelqf_(&m, &nn, X, &m, tau, &q, &lwork, &info);
    if (info) return -1;
    lwork = (int)q;
    double q2;
    int lw2 = -1;
    dorglq_(&m, &nn, &m, X, &m, tau, &q2, &lw2, &info);
    if (info) return -1;
    if ((int)q2 > lwork) lwork = (int)q2;
    double *work = malloc((size_t)lwork * sizeof(double));
    if (!work) return -1;
    dgelqf_(&m, &nn, X, &m, tau, work, &lwork, &info);
    if (!info) dorglq_(&m, &nn, &m, X, &m, tau, work, &lwork, &info);
    free(work);
    return info ? -1 : 0;
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

int embed_svd_topk(const embed_sparse *A, const embed_sparse *At, uint32_t k,
                   uint32_t oversample, uint32_t iters, uint64_t seed, double *sigma,
                   double *V, embed_progress *prog) {
    uint32_t l = k + oversample;
    uint32_t n = A->cols, m = A->rows;
    int rc = -1;
    double *X = malloc((size_t)n * l * sizeof(double));
    double *Y = malloc((size_t)m * l * sizeof(double));
    double *tau = malloc((size_t)l * sizeof(double));
    double *G = malloc((size_t)l * l * sizeof(double));
    double *lam = malloc((size_t)l * sizeof(double));
    double *W = malloc((size_t)l * k * sizeof(double));
    double *dwork = NULL;
    int *iwork = NULL;
    if (!X || !Y || !tau || !G || !lam || !W || k == 0 || l > n || l > m) goto done;

    uint64_t state = seed;
    for (size_t e = 0; e < (size_t)n * l; e++) X[e] = svd_gauss(&state);
    embed_progress_start(prog, "svd", "products", 2 * (uint64_t)iters + 2, prog ? prog->quiet : 1);
    svd_spmm(A, X, l, Y);
    if (svd_orth(Y, m, l, tau)) goto done;
    for (uint32_t it = 0; it < iters; it++) {
        svd_spmm(At, Y, l, X);
        if (svd_orth(X, n, l, tau)) goto done;
        svd_spmm(A, X, l, Y);
        if (svd_orth(Y, m, l, tau)) goto done;
        embed_progress_set(prog, 2 * (uint64_t)it + 2);
    }
    /* B^T = A^T Y spans the top right singular space; its Gram matrix has
     * the squared singular values as eigenvalues. */
    svd_spmm(At, Y, l, X);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)l, (int)n, 1.0, X,
                (int)l, X, (int)l, 0.0, G, (int)l);
    int nl = (int)l, lwork = -1, liwork = -1, info = 0, iq;
    double wq;
    dsyevd_("V", "U", &nl, G, &nl, lam, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info) goto done;
    lwork = (int)wq;
    liwork = iq;
    dwork = malloc((size_t)lwork * sizeof(double));
    iwork = malloc((size_t)liwork * sizeof(int));
    if (!dwork || !iwork) goto done;
    dsyevd_("V", "U", &nl, G, &nl, lam, dwork, &lwork, iwork, &liwork, &info, 1, 1);
    if (info) goto done;
    /* G is symmetric, so column-major eigenvectors read row major are the
     * rows of W^T: eigenvector c is G[c*l .. c*l+l), ascending by value. */
    for (uint32_t r = 0; r < k; r++) {
        uint32_t c = l - 1 - r;
        double s = lam[c] > 0 ? sqrt(lam[c]) : 0;
        sigma[r] = s;
        for (uint32_t t = 0; t < l; t++) W[(size_t)t * k + r] = s > 0 ? G[(size_t)c * l + t] / s : 0;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)l, 1.0, X,
                (int)l, W, (int)k, 0.0, V, (int)k);
    embed_progress_set(prog, 2 * (uint64_t)iters + 2);
    embed_progress_end(prog);
    rc = 0;
done:
    free(X);
    free(Y);
    free(tau);
    free(G);
    free(lam);
    free(W);
    free(dwork);
    free(iwork);
    return rc;
}
