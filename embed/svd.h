/* Truncated SVD of a sparse matrix by randomized subspace iteration
 * (Halko, Martinsson & Tropp 2011): a Gaussian block of k + oversample
 * columns is pushed through A^T A a few times with re-orthonormalisation
 * (LAPACK LQ) after every product, then the small projected problem is
 * solved exactly (LAPACK dsyevd). Dense blocks are row major doubles. */
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

/* Top-k singular values (sigma, descending, k entries) and right singular
 * vectors (V: A->cols x k, row major) of A, given A and its transpose At.
 * Needs k + oversample <= min(rows, cols) (else AISLE_EINVAL). Returns
 * AISLE_OK, AISLE_ENOMEM, or AISLE_EINTERNAL when LAPACK fails. The caller
 * owns sigma (k entries) and V. */
int embed_svd_topk(const embed_sparse *A, const embed_sparse *At, uint32_t k,
                   uint32_t oversample, uint32_t iters, uint64_t seed, double *sigma,
                   double *V, embed_progress *prog);

#endif
