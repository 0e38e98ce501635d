/* tune: hyperparameter search on the user's own data.
 *
 * `embed train --tune` must not carry constants learned on one data set,
 * so it carves a validation split (a share of each user's interactions)
 * from the data it is given, takes the spectrum of the carve once, and
 * walks the method's few parameters one at a time (coordinate search over
 * short candidate lists, starting from the defaults), keeping a change
 * only when it raises NDCG@20 on a deterministic sample of the validation
 * users. Every model of the search comes from the same spectrum
 * (embed_trainer), so a step costs one low-rank fill, a neighbour rescale
 * or recount, and one sampled evaluation. The search stops before a step
 * that would end past the time budget (judged by the last step's time); the best point is then evaluated on every validation
 * user, and the caller trains the final model on all the data with it. */
#ifndef AISLE_EMBED_TUNE_H
#define AISLE_EMBED_TUNE_H

#include <stdint.h>

#include "embed/data.h"
#include "embed/eval.h"
#include "embed/train.h"

typedef struct embed_tune_opts {
    double budget_s;   /* wall-clock budget of the search (the final full
                          validation and the caller's training come on top) */
    double holdout;    /* share of each user's items carved out */
    uint64_t seed;     /* of the carve */
    uint32_t sample;   /* validation users per search step (0: all) */
    int quiet;
} embed_tune_opts;

typedef struct embed_tune_result {
    uint32_t evals;            /* points evaluated */
    double seconds;            /* search time */
    embed_eval_result valid;   /* the chosen point on every validation user */
    embed_eval_result start;   /* the defaults, on the search sample */
    embed_eval_result best;    /* the chosen point, on the search sample */
} embed_tune_result;

/* Searches from *p (the method's defaults, or what the caller set) and
 * leaves the best point found in *p. all is every interaction; it is
 * carved here and left unchanged. AISLE_OK, AISLE_ENOMEM or
 * AISLE_EINTERNAL (LAPACK). */
int embed_tune(const embed_data *all, embed_train_params *p, const embed_tune_opts *opts,
               embed_tune_result *res);

#endif
