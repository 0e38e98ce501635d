/* tune: hyperparameter search on the user's own data.
 *
 * `embed train --tune` must not carry constants learned on one data set,
 * so it carves a validation split (a share of each user's interactions)
 * from the data it is given, takes the spectrum of the carve once, and
 * walks the method's few parameters one at a time (coordinate search over
 * short candidate lists, starting from the defaults), keeping a change
 * only when it raises Recall@20 + NDCG@20 on a deterministic sample of the
 * validation users. Each axis is a line search: from the current value it
 * steps down while that improves, and up only when the first step down did
 * not. Every model of the search comes from the same spectrum
 * (embed_trainer), and the points are scored by embed_probe, which for
 * most of them needs no matrix product (probe.h).
 *
 * The budget is a measure of work, not time, so the choice does not depend
 * on how loaded the machine is: the (user, item) pairs scored, summed over
 * the points, each of which scores the sample's users against every item.
 * A small catalogue thus gets more points than a large one in the same
 * budget. An optional wall-clock cap can stop it sooner: no point starts
 * that would end past it (judged by the last point's time). The chosen point's figures are
 * those of the sample. The carve's spectrum is handed back so that the
 * caller's final training on all the data can start its SVD from it. */
#ifndef AISLE_EMBED_TUNE_H
#define AISLE_EMBED_TUNE_H

#include <stdint.h>

#include "embed/data.h"
#include "embed/eval.h"
#include "embed/train.h"

typedef struct embed_tune_opts {
    double work;       /* (user, item) pairs scored at most, over all the
                          points, the start included (0: no limit) */
    double budget_s;   /* wall-clock cap of the search (0: none; the carve's
                          SVD before it and the final training come on top) */
    double holdout;    /* share of each user's items carved out */
    uint64_t seed;     /* of the carve */
    uint32_t sample;   /* validation users per search step (0: all) */
    int quiet;
} embed_tune_opts;

typedef struct embed_tune_result {
    uint32_t evals;            /* points evaluated */
    int out_of_time;           /* the wall-clock cap ended the search */
    double seconds;            /* search time */
    embed_eval_result start;   /* the defaults, on the search sample */
    embed_eval_result best;    /* the chosen point, on the search sample */
    double *spectrum;          /* the carve's right singular vectors,
                                  n_items x spectrum_k (owned; NULL if none) */
    uint32_t spectrum_k;
} embed_tune_result;

/* Searches from *p (the method's defaults, or what the caller set) and
 * leaves the best point found in *p. all is every interaction; it is
 * carved here and left unchanged. *res is filled here and released by
 * embed_tune_result_free (also after a failure). AISLE_OK, AISLE_ENOMEM
 * or AISLE_EINTERNAL (LAPACK). */
int embed_tune(const embed_data *all, embed_train_params *p, const embed_tune_opts *opts,
               embed_tune_result *res);
void embed_tune_result_free(embed_tune_result *res);

/* The rank a search of p's method should start from on all: the rank is
 * searched downwards only (a prefix of the spectrum), so a search that
 * starts at the default's rank can never find a higher one. Sharpened on
 * a matrix whose smaller side has at least EMBED_TUNE_WIDE_SIDE rows
 * starts at EMBED_TUNE_WIDE_RANK (on Gowalla's two carves the nested
 * search then beat the default by +0.0019 / +0.0019 and +0.0031 / +0.0021
 * R@20 / N@20, where from 256 it fell below it); otherwise p->dim, since
 * on smaller data the longer walk down only spends the search's budget
 * (MovieLens lost 0.005 / 0.010 from 512). For a caller that did not set
 * the rank itself. */
#define EMBED_TUNE_WIDE_RANK 512u
#define EMBED_TUNE_WIDE_SIDE 8192u
uint32_t embed_tune_rank(const embed_data *all, const embed_train_params *p);

#endif
