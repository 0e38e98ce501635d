/* train: learning to rank from what shoppers did with served pages.
 *
 * Each exposure is one query group (a served page); each item a row with
 * the features the ranker logged (ExposureItem.features) and a graded
 * label from the strongest outcome attributed to it by the rule of the
 * experiment report: 0 nothing, 1 click, 2 add-to-cart, 3 purchase. The
 * last calendar day (UTC) of exposures, or the configured last stretch, is
 * held out; XGBoost's LambdaMART
 * (objective rank:ndcg) trains on the rest, and both the model and the
 * current ranker (the logged scores) are scored by NDCG@10 on the held-out
 * pages that have at least one outcome. */
#ifndef AISLE_LTR_TRAIN_H
#define AISLE_LTR_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/events.pb-c.h"
#include "aisle/v1/experiments.pb-c.h"
#include "ranker/ltr/model.h"

typedef struct ltr_data ltr_data;

typedef struct ltr_train_config {
    int rounds;        /* boosting rounds; 0: 200 */
    int max_depth;     /* 0: 6 */
    double eta;        /* 0: 0.1 */
    int64_t window_ms; /* attribution window; 0: 24 h */
    /* Hold out the pages of the last holdout_ms of the data instead of its
     * last calendar day (a simulation that runs for minutes); 0: the day. */
    int64_t holdout_ms;
} ltr_train_config;

typedef struct ltr_train_result {
    uint32_t n_features;
    size_t train_pages, train_rows, test_pages, test_rows;
    size_t skipped; /* exposures whose items lacked features or disagreed in count */
    double ndcg_model, ndcg_current; /* NDCG@10 on the held-out day */
} ltr_train_result;

int ltr_data_new(int64_t window_ms, ltr_data **out);
void ltr_data_free(ltr_data *d);
int ltr_data_add_exposure(ltr_data *d, const Aisle__V1__Exposure *e);
int ltr_data_add_signal(ltr_data *d, const Aisle__V1__Signal *s);

/* Trains, evaluates and, when out is not NULL, hands back the model.
 * AISLE_EINVAL when there is too little data (no features, or no held-out
 * or training page with an outcome). */
int ltr_train(ltr_data *d, const ltr_train_config *cfg, ltr_model **out, ltr_train_result *res,
              char *err, size_t errlen);
/* NDCG@k of ordering n items by score (descending), with graded labels
 * (gain 2^label - 1); 0 when no label is positive. */
double ltr_ndcg(const float *score, const float *label, size_t n, int k);

#endif
