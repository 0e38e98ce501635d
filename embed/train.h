/* train: closed-form graph filters, each split into the servable form.
 *
 * Every method scores a profile r (a row over items) as r F for an
 * item-item filter F of the normalised graph. With the binary interaction
 * matrix R, item degrees d_i and user degrees d_u, R~ = D_U^-norm_user R
 * D_I^-norm_item, its top-`dim` right singular vectors V and values S
 * (t = S^2 / S_1^2 in [0, 1]) and the normalised co-occurrences
 *
 *   C(i,j) = d_i^-el  sum_u R_ui R_uj d_u^-lin_user  d_j^-er,
 *
 * F is written as   scale * C  +  sum of low-rank blocks D^a V G V^T D^b,
 * which are the neighbour lists N and the columns of P and Q of
 * embed_model (score(j) = r P Q[j]^T + sum_i r_i N_i(j)). The methods:
 *
 * sharpened (EMBED_METHOD_SHARPENED), today's default before ChebyCF-style
 *   filters: GF-CF's linear term C (el = lin_item, er = lin_item + beta),
 *   plus alpha * d_i^-lp_left V V^T d_j^lp_right (GF-CF's ideal low-pass),
 *   minus a share `sharpen` of C's own rank-dim part D^s V S^2 V^T D^s
 *   (s = norm_item - lin_item; exact when lin_user = 2 norm_user), which
 *   keeps the low frequencies from being counted twice; `curve` gives a
 *   share back in proportion to t, so the removed share is sharpen -
 *   curve * t (less at the top of the spectrum for curve > 0). Dimension
 *   2*dim.
 *
 * cheby (EMBED_METHOD_CHEBY): ChebyCF's filter D^-degnorm [h(L) + alpha V
 *   V^T] D^degnorm with h the order-`order` Chebyshev fit of a plateau of
 *   flatness `flat` (embed/filter.h). h's linear part h1 * t is served
 *   exactly by the neighbour lists (scale = h1 / S_1^2, el = norm_item +
 *   degnorm, er = norm_item - degnorm, lin_user = 2 norm_user); its higher
 *   orders and the ideal pass go to the top-dim spectrum: G = alpha +
 *   h(t) - h(0) - (1 + sharpen) h1 t. sharpen = 0 is ChebyCF; a positive
 *   share removes some of the neighbour term's low frequencies as above.
 *   The self loop h(0) I only scores items the user already has, which
 *   are never recommended, so it is dropped. Dimension dim.
 *
 * bspm (EMBED_METHOD_BSPM): BSPM-EM, blurring-sharpening with early
 *   merge: F = (L + alpha * D^-b V V^T D^b) p(L), L = R~^T R~ (b =
 *   norm_item; the published method has a = b = 1/2), p one RK4 step of length sharpen_time
 *   (filter.h). L p(L) = L + [L p(L) - L]: the first is the neighbour
 *   term, the second goes to the spectrum (G = t p(t) - t). The early-merged
 *   ideal pass is low rank whatever p does, and is computed exactly: P =
 *   alpha D^-b V, Q = p(L) D^b V by sparse products. Dimension 2*dim.
 *
 * Any method may add the popularity bias b (pop > 0; embed_model's bias):
 *   b_j = pop * s * log(1 + d_j) / log(1 + d_max), s the mean heaviest
 *   neighbour weight times the mean interaction weight. It does not grow
 *   with the profile as the other terms do, so it weighs most on light
 *   users' pages.
 *
 * What is dropped in the cheby and bspm forms is the part of the higher
 * polynomial orders beyond the top `dim` eigenvalues, where t^2 and up are
 * small; the figures of `embed eval` are those of the served form. */
#ifndef AISLE_EMBED_TRAIN_H
#define AISLE_EMBED_TRAIN_H

#include <stdint.h>

#include "embed/data.h"
#include "embed/model.h"
#include "embed/progress.h"
#include "embed/svd.h"

typedef enum {
    EMBED_METHOD_SHARPENED,
    EMBED_METHOD_CHEBY,
    EMBED_METHOD_BSPM,
} embed_method;

typedef struct embed_train_params {
    embed_method method;
    uint32_t dim;        /* rank of the spectral part (0: none) */
    double alpha;        /* weight of the ideal low-pass */
    double sharpen;      /* share of the neighbour term's low ranks removed */
    double curve;        /* sharpened: share given back in proportion to t */
    double norm_user;    /* exponents of the matrix whose SVD is taken */
    double norm_item;
    double lp_left;      /* sharpened: low-pass degree scaling, query side */
    double lp_right;     /* sharpened: low-pass degree scaling, item side */
    double lin_user;     /* sharpened: exponents of the co-occurrence term */
    double lin_item;
    double beta;         /* sharpened: popularity de-biasing of the item side */
    double pop;          /* weight of the additive popularity bias b (0: none) */
    double degnorm;      /* cheby: degree normalisation power */
    uint32_t order;      /* cheby: Chebyshev order */
    double flat;         /* cheby: plateau flatness */
    double sharpen_time; /* bspm: length of the sharpening step */
    uint32_t neighbors;  /* neighbour list length (0: no linear term) */
    uint32_t svd_iters;  /* subspace iterations */
    uint32_t svd_oversample;
    uint64_t seed;
} embed_train_params;

/* "sharpened", "cheby", "bspm" <-> the enum; AISLE_EINVAL for other names. */
int embed_method_parse(const char *name, embed_method *out);
const char *embed_method_name(embed_method m);

/* The defaults of method: for cheby and bspm their published Gowalla
 * settings, for sharpened the values chosen on the Gowalla validation
 * split. */
void embed_train_defaults(embed_train_params *p, embed_method method);

/* Model dimension for p. */
uint32_t embed_train_model_dim(const embed_train_params *p);

/* sharpened's low-rank part, as the two blocks fill_sharpened writes:
 * block b scores (sum_i r_i d_i^user_exp[b] V_i g_b) . V_j seen_j
 * d_j^item_exp[b] over the top-dim spectrum, with g_0 = alpha and g_1 =
 * S^2 (curve t - sharpen) per component (seen_j = 0 for items nobody
 * has). Shared with embed/probe.c, which scores points from it. */
typedef struct {
    double user_exp[2], item_exp[2];
} embed_sharp_blocks;
void embed_sharpened_blocks(const embed_train_params *p, embed_sharp_blocks *b);

/* Staged training, for searching parameters on one spectrum:
 * embed_trainer_new builds the graph and takes the SVD at p->dim (lowered
 * to what the data supports, in place); embed_trainer_model then fills a
 * model for any p of the same normalisation with p->dim <= that rank. The
 * neighbour lists are cached: they are recomputed only when the
 * parameters that choose them change, and rescaled otherwise. d is
 * borrowed and must outlive the trainer; so is warm (NULL: none), the
 * singular vectors of related data to start the SVD from, with which it
 * runs EMBED_WARM_ITERS iterations instead of p->svd_iters. */
#define EMBED_WARM_ITERS 2
typedef struct embed_trainer embed_trainer;
int embed_trainer_new(const embed_data *d, embed_train_params *p, const embed_svd_start *warm,
                      int quiet, embed_trainer **out);
/* *m is allocated here and owned by the caller (empty on failure). */
int embed_trainer_model(embed_trainer *t, const embed_train_params *p, embed_model *m);
/* Only p's neighbour lists (and its bias, when p->pop is set), in a model of dimension 0 (*m allocated here
 * and owned by the caller, empty on failure): the sparse half of a point,
 * for scorers that compute the low-rank half themselves (embed/probe.h). */
int embed_trainer_neighbors(embed_trainer *t, const embed_train_params *p, embed_model *m);
/* From now on (before any model), each neighbour list holds the same
 * entries in no particular order: a scorer only sums them, and sorting
 * every list was a seventh of a Gowalla --tune's CPU. The tuner's
 * trainer, whose models are never published, asks for it. */
void embed_trainer_unordered_lists(embed_trainer *t);
/* Keeps p's neighbour lists, if the trainer holds them, through the next
 * recounts: the search's best point, which it returns to. */
void embed_trainer_pin(embed_trainer *t, const embed_train_params *p);
/* What the trainer's spectrum is, borrowed (valid until the trainer is
 * freed or its spectrum taken): k values sigma, descending, the vectors V
 * (n_items x k, row major) and the item degrees. */
typedef struct {
    uint32_t k;
    const double *sigma, *V;
    const uint32_t *deg;
} embed_trainer_view;
embed_trainer_view embed_trainer_spectrum(const embed_trainer *t);
/* Moves the trainer's spectrum out: *V (n_items x *k, row major) is then
 * owned by the caller (free()), and the trainer can make no more models. */
void embed_trainer_take_spectrum(embed_trainer *t, double **V, uint32_t *k);
void embed_trainer_free(embed_trainer *t);

/* Trains *m (allocated here, owned by the caller; zeroed on failure). On
 * data too small for the requested rank, p->dim and p->svd_oversample are
 * lowered in place so that p describes the model actually trained.
 * Returns AISLE_OK, AISLE_ENOMEM, or AISLE_EINTERNAL when LAPACK fails. */
int embed_train(const embed_data *d, embed_train_params *p, embed_model *m, int quiet);
/* The same from a warm start (see embed_trainer_new; NULL: none). */
int embed_train_warm(const embed_data *d, embed_train_params *p, const embed_svd_start *warm,
                     embed_model *m, int quiet);

#endif
