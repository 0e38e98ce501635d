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

/* The users embed_eval_run scores with this stride, in its order, into
 * users (room for test->n_users); returns their count. *skipped: test
 * users without a train profile. */
uint32_t embed_eval_users(const embed_data *train, const embed_data *test, uint32_t stride,
                          uint32_t *users, uint32_t *skipped);

/* Another way to score a batch, for the tuner's cached points
 * (embed/probe.h): score fills n rows of n_items scores for the profiles
 * (CSR off/item/weight) of the users at positions first .. first + n - 1
 * of embed_eval_users' list, and returns an AISLE_* code. */
typedef struct {
    int (*score)(void *ctx, uint32_t first, uint32_t n, const uint64_t *off,
                 const uint32_t *item, const float *weight, float *scores);
    void *ctx;
    uint32_t n_items;
} embed_eval_scorer;

/* embed_eval_run with the scores of sc in place of a model's. */
int embed_eval_run_scorer(const embed_eval_scorer *sc, const embed_data *train,
                          const embed_data *test, const int *ks, int nk, uint32_t stride,
                          embed_eval_result *res, embed_progress *prog);

/* Parses "10,20,50" into ks and their count *nk: AISLE_OK or AISLE_EINVAL. */
int embed_eval_parse_ks(const char *s, int *ks, int *nk);

/* Prints the K / Recall / NDCG table. */
void embed_eval_print(const embed_eval_result *res, FILE *out);

#endif
