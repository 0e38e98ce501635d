/* probe: scores the tuner's points on a fixed sample of validation users,
 * most of them without a matrix product.
 *
 * sharpened's low-rank score of item j for a profile r is (train.h,
 * embed_sharp_blocks)
 *
 *   alpha e0_j (x . V_j) + e1_j (curve (y S^2 t) . V_j - sharpen (y S^2) . V_j)
 *
 * with x = sum_i r_i d_i^user_exp[0] V_i, y the same with user_exp[1], and
 * e_b = seen_j d_j^item_exp[b]. The three products over the sample (A =
 * X V^T, B = (Y S^2) V^T, C = (Y S^2 t) V^T) depend only on the rank and
 * the two user-side exponents, the point's "spectral key"; alpha, sharpen,
 * curve, beta and lin_user leave it as it is. So the products are taken
 * once for the search's current best point (its base), and every point
 * with the same key costs an elementwise combination, its neighbour sums
 * and the top-K cut: the full-width product of every point (3,318 users x
 * 40,981 items x 512 on Gowalla) is what made a search point expensive.
 * A point with another lin_item keeps A and takes its second block by one
 * product of half the width per batch; points of another rank and the
 * other methods are scored by their model, as before. The figures are
 * the same up to float rounding whichever way a point is scored.
 *
 * The cache is 3 x sample x items floats (1.6 GB for Gowalla's default
 * sample); above EMBED_PROBE_MAX_BYTES it is not built and every point is
 * scored by its model. */
#ifndef AISLE_EMBED_PROBE_H
#define AISLE_EMBED_PROBE_H

#include <stdint.h>

#include "embed/data.h"
#include "embed/eval.h"
#include "embed/train.h"

#define EMBED_PROBE_MAX_BYTES (2048.0 * 1024 * 1024)

typedef struct embed_probe embed_probe;

/* A probe over trainer t (trained on train), scoring the validation users
 * of valid every stride-th (embed_eval_users' sample). Everything is
 * borrowed and must outlive the probe; *out is owned by the caller
 * (embed_probe_free). AISLE_OK or AISLE_ENOMEM. */
int embed_probe_new(embed_trainer *t, const embed_data *train, const embed_data *valid,
                    uint32_t stride, embed_probe **out);

/* The search's current best point: the next point sharing its spectral
 * key builds the cache for that key (the previous one is dropped). */
void embed_probe_set_base(embed_probe *pr, const embed_train_params *p);

/* Recall and NDCG at 20, 10 and 50 of point p on the sample, into *res.
 * AISLE_OK, AISLE_ENOMEM or AISLE_EINVAL. */
int embed_probe_eval(embed_probe *pr, const embed_train_params *p, embed_eval_result *res);

void embed_probe_free(embed_probe *pr);

#endif
