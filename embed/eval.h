/* eval: offline evaluation with the LightGCN protocol.
 *
 * For every user with test items and a non-empty train profile, all items
 * except the user's train items are ranked by embed_score_batch(); Recall@K
 * is hits / |test items| and NDCG@K uses binary relevance with the ideal DCG
 * over min(K, |test items|). Both are averaged over the evaluated users.
 * Test items the model does not know count in |test| but can never hit. */
#ifndef AISLE_EMBED_EVAL_H
#define AISLE_EMBED_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "embed/data.h"
#include "embed/model.h"
#include "embed/progress.h"

#define EMBED_EVAL_MAXK 8

typedef struct embed_eval_result {
    int nk;
    int k[EMBED_EVAL_MAXK];
    double recall[EMBED_EVAL_MAXK];
    double ndcg[EMBED_EVAL_MAXK];
    uint32_t n_users;   /* users evaluated */
    uint32_t n_skipped; /* test users without a train profile */
} embed_eval_result;

/* Metrics of one ranked list (best first, n_ranked >= max K or the whole
 * candidate set) against a sorted set of n_test relevant rows; adds each
 * K's recall and NDCG into recall[]/ndcg[]. */
void embed_eval_user(const uint32_t *ranked, uint32_t n_ranked, const uint32_t *test,
                     uint32_t n_test, const int *ks, int nk, double *recall, double *ndcg);

/* Profiles come from train (weights as stored), relevant items from test;
 * both index users by the same rows. ks: nk values in 1..10000, nk <=
 * EMBED_EVAL_MAXK. stride 1 evaluates every user; stride s every s-th
 * eligible one (a deterministic sample, for quick comparisons while
 * tuning). Returns AISLE_OK, AISLE_EINVAL on bad arguments, AISLE_ENOMEM. */
int embed_eval_run(const embed_model *m, const embed_data *train, const embed_data *test,
                   const int *ks, int nk, uint32_t stride, embed_eval_result *res,
                   embed_progress *prog);

/* Parses "10,20,50" into ks and their count *nk: AISLE_OK or AISLE_EINVAL. */
int embed_eval_parse_ks(const char *s, int *ks, int *nk);

/* Prints the K / Recall / NDCG table. */
void embed_eval_print(const embed_eval_result *res, FILE *out);

#endif
