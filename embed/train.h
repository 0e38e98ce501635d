/* Training: a closed-form graph filter split into the servable form.
 *
 * With the binary interaction matrix R, item degrees d_i and user degrees
 * d_u, the item-item filter is
 *
 *   F(i,j) = [ L(i,j) + alpha * d_i^-lp_left (V V^T)(i,j) d_j^lp_right
 *              - sharpen * (L_k)(i,j) ] * d_j^-beta
 *   L(i,j) = d_i^-lin_item  sum_u R_ui R_uj d_u^-lin_user  d_j^-lin_item
 *
 * where V, S hold the top-`dim` right singular vectors and values of
 * R~ = D_U^-norm_user R D_I^-norm_item (GF-CF's ideal low-pass filter),
 * L is the normalised co-occurrence (GF-CF's linear filter) and L_k its
 * rank-`dim` part: with lin_user = 2 norm_user, L = D^s R~^T R~ D^s for
 * s = norm_item - lin_item, so L_k = D^s V S^2 V^T D^s. Subtracting a share
 * of L_k keeps the neighbour term from counting the low-frequency signal
 * twice (it is already in the low-pass term), which sharpens the ranking.
 * The two low-rank terms become P and Q of embed_model, side by side (so
 * the model dimension is 2*dim when sharpen != 0); L becomes the neighbour
 * lists, kept to the `neighbors` largest entries per item; beta de-biases
 * (beta > 0) or favours (beta < 0) popular items. */
#ifndef AISLE_EMBED_TRAIN_H
#define AISLE_EMBED_TRAIN_H

#include <stdint.h>

#include "embed/data.h"
#include "embed/model.h"
#include "embed/progress.h"

typedef struct embed_train_params {
    uint32_t dim;       /* rank of the low-pass term (0: none) */
    double alpha;       /* weight of the low-pass term */
    double sharpen;     /* share of the co-occurrences' low-rank part removed */
    double norm_user;   /* exponents of the matrix whose SVD is taken */
    double norm_item;
    double lp_left;     /* low-pass degree scaling, query side */
    double lp_right;    /* low-pass degree scaling, item side */
    double lin_user;    /* exponents of the co-occurrence term */
    double lin_item;
    double beta;        /* popularity de-biasing of the item side */
    uint32_t neighbors; /* neighbour list length (0: no linear term) */
    uint32_t svd_iters; /* subspace iterations */
    uint32_t svd_oversample;
    uint64_t seed;
} embed_train_params;

/* The defaults are the method chosen on the Gowalla validation split. */
void embed_train_defaults(embed_train_params *p);

/* Item degrees (interacting users) of d, n_items entries; caller frees. */
uint32_t *embed_train_degrees(const embed_data *d);

/* Top p->dim singular values and right singular vectors (n_items x dim,
 * row major) of the normalised matrix; caller frees *sigma and *V. */
int embed_train_spectrum(const embed_data *d, const embed_train_params *p, double **sigma,
                         double **V, embed_progress *prog);

/* Model dimension for p: dim, or 2*dim when sharpening. */
uint32_t embed_train_model_dim(const embed_train_params *p);

/* Fills m->P and m->Q from the spectrum (m allocated with
 * embed_train_model_dim(p)). */
void embed_train_lowpass(const embed_train_params *p, const uint32_t *deg,
                         const double *sigma, const double *V, embed_model *m);

/* Fills the neighbour lists of m (replacing any) from d. */
int embed_train_neighbors(const embed_data *d, const embed_train_params *p,
                          const uint32_t *deg, embed_model *m, embed_progress *prog);

/* All of the above: *m is allocated here and owned by the caller. On data
 * too small for the requested rank, p->dim and p->svd_oversample are
 * lowered in place so that p describes the model actually trained. */
int embed_train(const embed_data *d, embed_train_params *p, embed_model *m, int quiet);

#endif
