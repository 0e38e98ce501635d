/* compress: best rank-d form of P Q^T (see compress.h). With the Gram
 * matrices P^T P = Ep^T Lp Ep and Q^T Q = Eq^T Lq Eq (rows of E are
 * eigenvectors), P Ep^T Lp^-1/2 and Q Eq^T Lq^-1/2 have orthonormal
 * columns and P Q^T = [P Ep^T Lp^-1/2] M [Q Eq^T Lq^-1/2]^T with the small
 * core M = Lp^1/2 Ep Eq^T Lq^1/2. Truncating M's SVD U S W^T gives
 * P' = P Tp, Tp = Ep^T Lp^-1/2 U_d S_d, and Q' = Q Tq, Tq = Eq^T Lq^-1/2 W_d.
 * Everything of size n is one BLAS product; the rest is D x D. */
#include "embed/compress.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/svd.h"
#include "services/base/status.h"

void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *info, size_t jobu_len, size_t jobvt_len);

/* Gram matrix X^T X of the n x D float block, eigen-decomposed: E (rows
 * are eigenvectors) and lam (ascending). */
static int gram_eig(const float *X, size_t n, int D, double *E, double *lam) {
    float *G = malloc((size_t)D * D * sizeof(*G));
    if (!G) return AISLE_ENOMEM;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, D, (int)n, 1.0f, X, D, 0.0f, G, D);
    for (int a = 0; a < D; a++) /* ssyrk fills the upper triangle only */
        for (int b = 0; b < D; b++) E[(size_t)a * D + b] = G[a <= b ? (size_t)a * D + b : (size_t)b * D + a];
    free(G);
    return embed_sym_eig(E, D, lam);
}

/* The inverse square roots, zero for directions with no energy. */
static void inv_sqrt(const double *lam, int D, double *out) {
    double top = lam[D - 1] > 0 ? lam[D - 1] : 1;
    for (int a = 0; a < D; a++) out[a] = lam[a] > 1e-12 * top ? 1 / sqrt(lam[a]) : 0;
}

/* M (column major) = Lp^1/2 Ep Eq^T Lq^1/2. */
static void core_matrix(const double *Ep, const double *lp, const double *Eq, const double *lq,
                        int D, double *C, double *M) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, D, D, D, 1.0, Ep, D, Eq, D, 0.0, C, D);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++)
            M[a + (size_t)b * D] = sqrt(lp[a] > 0 ? lp[a] : 0) * C[(size_t)a * D + b] *
                                   sqrt(lq[b] > 0 ? lq[b] : 0);
}

static int svd_small(double *M, int D, double *S, double *U, double *VT) {
    int lwork = -1, info = 0;
    double q;
    dgesvd_("S", "S", &D, &D, M, &D, S, U, &D, VT, &D, &q, &lwork, &info, 1, 1);
    if (info) return AISLE_EINTERNAL;
    lwork = (int)q;
    double *work = malloc((size_t)lwork * sizeof(*work));
    if (!work) return AISLE_ENOMEM;
    dgesvd_("S", "S", &D, &D, M, &D, S, U, &D, VT, &D, work, &lwork, &info, 1, 1);
    free(work);
    return info ? AISLE_EINTERNAL : AISLE_OK;
}

/* X' (n x d) = X T for the float block X (n x D) and T (D x d, double). */
static int project(float **X, size_t n, int D, const double *T, int d) {
    float *Tf = malloc((size_t)D * d * sizeof(*Tf));
    float *Y = malloc((n * (size_t)d + 1) * sizeof(*Y));
    if (!Tf || !Y) {
        free(Tf);
        free(Y);
        return AISLE_ENOMEM;
    }
    for (size_t e = 0; e < (size_t)D * d; e++) Tf[e] = (float)T[e];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, d, D, 1.0f, *X, D, Tf, d, 0.0f,
                Y, d);
    free(Tf);
    free(*X);
    *X = Y;
    return AISLE_OK;
}

int embed_model_compress(embed_model *m, uint32_t dim) {
    int D = (int)m->dim, d = dim < m->dim ? (int)dim : D;
    size_t DD = (size_t)D * D, n = m->n_items;
    if (D == 0 || d == 0) return AISLE_OK;
    double *buf = malloc(9 * DD * sizeof(double));
    double *lam = malloc(4 * (size_t)D * sizeof(double));
    int rc = AISLE_ENOMEM;
    if (!buf || !lam) goto done;
    double *Ep = buf, *Eq = buf + DD, *C = buf + 2 * DD, *M = buf + 3 * DD, *U = buf + 4 * DD;
    double *VT = buf + 5 * DD, *Tp = buf + 6 * DD, *Tq = buf + 7 * DD;
    double *lp = lam, *lq = lam + D, *S = lam + 2 * D, *inv = lam + 3 * D;
    if ((rc = gram_eig(m->P, n, D, Ep, lp)) != AISLE_OK) goto done;
    if ((rc = gram_eig(m->Q, n, D, Eq, lq)) != AISLE_OK) goto done;
    core_matrix(Ep, lp, Eq, lq, D, C, M);
    if ((rc = svd_small(M, D, S, U, VT)) != AISLE_OK) goto done;
    /* Tp[t][c] = sum_a Ep[a][t] lp_a^-1/2 U[a][c] S_c; Tq likewise with W. */
    inv_sqrt(lp, D, inv);
    for (int t = 0; t < D; t++)
        for (int c = 0; c < d; c++) {
            double sp = 0;
            for (int a = 0; a < D; a++) sp += Ep[(size_t)a * D + t] * inv[a] * U[a + (size_t)c * D];
            Tp[(size_t)t * d + c] = sp * S[c];
        }
    inv_sqrt(lq, D, inv);
    for (int t = 0; t < D; t++)
        for (int c = 0; c < d; c++) {
            double sq = 0;
            for (int b = 0; b < D; b++) sq += Eq[(size_t)b * D + t] * inv[b] * VT[c + (size_t)b * D];
            Tq[(size_t)t * d + c] = sq;
        }
    if ((rc = project(&m->P, n, D, Tp, d)) != AISLE_OK) goto done;
    if ((rc = project(&m->Q, n, D, Tq, d)) != AISLE_OK) goto done;
    m->dim = (uint32_t)d;
done:
    free(buf);
    free(lam);
    return rc;
}
