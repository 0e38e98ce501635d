/* compress: a lower serving dimension for any trained model.
 *
 * The server's cost per call grows with the vector dimension (FAISS
 * searches Q, and u = sum w P[i] is built per call), while the methods'
 * low-rank parts are sums of blocks (2 x 256 or 2 x 448 columns) whose
 * useful rank is lower. embed_model_compress replaces P and Q by the best
 * rank-`dim` approximation of the item-item matrix P Q^T in the Frobenius
 * norm (orthonormal bases of both sides by Cholesky of their Gram
 * matrices, then the SVD of the small core), with columns in descending
 * order of singular value, so that its first k columns are also the best
 * rank-k form for every k < dim. The neighbour lists and bias are kept. The
 * scoring formula is unchanged: the server only sees a smaller dim. */
#ifndef AISLE_EMBED_COMPRESS_H
#define AISLE_EMBED_COMPRESS_H

#include <stdint.h>

#include "embed/model.h"

/* In place; dim >= m->dim leaves the model as it is (apart from the
 * reordering into singular directions when dim == m->dim). AISLE_OK,
 * AISLE_ENOMEM, or AISLE_EINTERNAL when LAPACK fails. */
int embed_model_compress(embed_model *m, uint32_t dim);

#endif
