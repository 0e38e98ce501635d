/* Truncated SVD of a sparse matrix by randomized subspace iteration
 * (Halko, Martinsson & Tropp 2011): a block of k + oversample columns
 * (Gaussian, or a warm start from a related matrix's singular vectors) is
 * pushed through A^T A a few times, re-orthonormalised after each (Cholesky
 * QR twice; LAPACK LQ where that is too ill-conditioned), then the small
 * projected problem is solved exactly (LAPACK dsyevd). Dense blocks are row major doubles. */
#ifndef AISLE_EMBED_SVD_H
#define AISLE_EMBED_SVD_H

#include <stdint.h>

#include "embed/progress.h"

/* A CSR matrix whose arrays are borrowed from the caller. */
typedef struct embed_sparse {
    uint32_t rows, cols;
    const uint64_t *off; /* rows + 1 */
    const uint32_t *idx; /* column of each entry, < cols */
    const double *val;
} embed_sparse;

/* Y (A->rows x l, row major) = A X (A->cols x l), in parallel over rows. */
void embed_sparse_mul(const embed_sparse *A, const double *X, uint32_t l, double *Y);

/* Eigen-decomposition of the symmetric l x l matrix G in place: values
 * ascending into lam, eigenvector c in G[c*l .. c*l+l). AISLE_OK,
 * AISLE_ENOMEM or AISLE_EINTERNAL. */
int embed_sym_eig(double *G, int l, double *lam);

/* A warm start: the first k columns of the starting block are V's (cols
 * x k, row major, borrowed), e.g. the spectrum of a validation carve of
 * the same data, so fewer iterations reach the same accuracy. */
typedef struct embed_svd_start {
    const double *V;
    uint32_t k;
} embed_svd_start;

/* Top-k singular values (sigma, descending, k entries) and right singular
 * vectors (V: A->cols x k, row major) of A, given A and its transpose At,
 * after iters + 1 power steps from warm (NULL: a Gaussian block). Needs k + oversample <= min(rows, cols) (else AISLE_EINVAL). Returns
 * AISLE_OK, AISLE_ENOMEM, or AISLE_EINTERNAL when LAPACK fails. The caller
 * owns sigma (k entries) and V. */
int embed_svd_topk(const embed_sparse *A, const embed_sparse *At, uint32_t k,
                   uint32_t oversample, uint32_t iters, uint64_t seed,
                   const embed_svd_start *warm, double *sigma, double *V,
                   embed_progress *prog);

#endif
