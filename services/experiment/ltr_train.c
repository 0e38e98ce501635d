/* train: the learning-to-rank dataset, LambdaMART training with XGBoost's
 * C API, and NDCG evaluation (see train.h). */
#include "services/experiment/ltr_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "services/base/status.h"
#include "services/experiment/report.h"

#define LTR_DAY_MS 86400000LL

typedef struct ltr_page {
    int64_t ts;
    size_t first, n; /* rows [first, first + n) of features and scores */
    size_t item0;    /* its first item among all items added to the report */
    int ok;          /* every item had n_features features */
} ltr_page;

struct ltr_data {
    exp_report *attrib; /* the attribution of outcomes to items */
    ltr_page *pages;
    size_t n_pages, cap_pages;
    float *feat, *score; /* rows x n_features, rows */
    size_t rows, cap_rows, items;
    uint32_t n_features;
};

int ltr_data_new(int64_t window_ms, ltr_data **out) {
    ltr_data *d = calloc(1, sizeof(*d));
    exp_report_config cfg = {.window_ms = window_ms};
    if (!d || exp_report_new(&cfg, &d->attrib) != AISLE_OK) {
        free(d);
        return AISLE_ENOMEM;
    }
    *out = d;
    return AISLE_OK;
}

void ltr_data_free(ltr_data *d) {
    if (!d) return;
    exp_report_free(d->attrib);
    free(d->pages);
    free(d->feat);
    free(d->score);
    free(d);
}

static int ltr_rows(ltr_data *d, size_t more) {
    if (d->rows + more <= d->cap_rows) return AISLE_OK;
    size_t cap = d->cap_rows ? d->cap_rows : 1024;
    while (cap < d->rows + more) cap *= 2;
    float *f = realloc(d->feat, cap * d->n_features * sizeof(*f));
    if (f) d->feat = f;
    float *s = f ? realloc(d->score, cap * sizeof(*s)) : NULL;
    if (s) d->score = s;
    if (!f || !s) return AISLE_ENOMEM;
    d->cap_rows = cap;
    return AISLE_OK;
}

int ltr_data_add_exposure(ltr_data *d, const Aisle__V1__Exposure *e) {
    if (e->n_items && !d->n_features) d->n_features = (uint32_t)e->items[0]->n_features;
    ltr_page p = {e->ts_ms, d->rows, e->n_items, d->items, d->n_features > 0};
    for (size_t i = 0; i < e->n_items; i++) p.ok &= e->items[i]->n_features == d->n_features;
    if (d->n_pages == d->cap_pages) {
        size_t cap = d->cap_pages ? d->cap_pages * 2 : 256;
        ltr_page *q = realloc(d->pages, cap * sizeof(*q));
        if (!q) return AISLE_ENOMEM;
        d->pages = q;
        d->cap_pages = cap;
    }
    if (p.ok) {
        if (ltr_rows(d, e->n_items) != AISLE_OK) return AISLE_ENOMEM;
        for (size_t i = 0; i < e->n_items; i++) {
            memcpy(d->feat + (d->rows + i) * d->n_features, e->items[i]->features,
                   d->n_features * sizeof(float));
            d->score[d->rows + i] = e->items[i]->score;
        }
        d->rows += e->n_items;
    }
    d->pages[d->n_pages++] = p;
    d->items += e->n_items;
    return exp_report_add_exposure(d->attrib, e);
}

int ltr_data_add_signal(ltr_data *d, const Aisle__V1__Signal *s) {
    return exp_report_add_signal(d->attrib, s);
}

static int ltr_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

double ltr_ndcg(const float *score, const float *label, size_t n, int k) {
    /* Ties in score keep the page's order (the logged position). */
    double dcg = 0, ideal = 0;
    char *used = calloc(n ? n : 1, 1);
    float *sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!used || !sorted) {
        free(used);
        free(sorted);
        return 0;
    }
    for (int r = 0; r < k && (size_t)r < n; r++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!used[i] && (best == n || score[i] > score[best])) best = i;
        used[best] = 1;
        dcg += (pow(2, label[best]) - 1) / log2(r + 2.0);
    }
    memcpy(sorted, label, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), ltr_desc);
    for (int r = 0; r < k && (size_t)r < n; r++) ideal += (pow(2, sorted[r]) - 1) / log2(r + 2.0);
    free(used);
    free(sorted);
    return ideal > 0 ? dcg / ideal : 0;
}

/* One side of the split: rows, labels and group sizes for XGBoost. */
typedef struct ltr_split {
    float *x, *y, *score;
    unsigned *groups;
    size_t rows, pages, cap_rows;
} ltr_split;

static int ltr_split_add(ltr_split *s, const ltr_data *d, const ltr_page *p, const int8_t *grades) {
    if (s->rows + p->n > s->cap_rows) {
        size_t cap = s->cap_rows ? s->cap_rows : 1024;
        while (cap < s->rows + p->n) cap *= 2;
        float *x = realloc(s->x, cap * d->n_features * sizeof(float));
        if (x) s->x = x;
        float *y = x ? realloc(s->y, cap * sizeof(float)) : NULL;
        if (y) s->y = y;
        float *sc = y ? realloc(s->score, cap * sizeof(float)) : NULL;
        if (sc) s->score = sc;
        unsigned *g = sc ? realloc(s->groups, cap * sizeof(unsigned)) : NULL;
        if (g) s->groups = g;
        if (!g) return AISLE_ENOMEM;
        s->cap_rows = cap;
    }
    memcpy(s->x + s->rows * d->n_features, d->feat + p->first * d->n_features,
           p->n * d->n_features * sizeof(float));
    for (size_t i = 0; i < p->n; i++) {
        s->y[s->rows + i] = (float)(grades[p->item0 + i] + 1);
        s->score[s->rows + i] = d->score[p->first + i];
    }
    s->groups[s->pages++] = (unsigned)p->n;
    s->rows += p->n;
    return AISLE_OK;
}

static void ltr_split_free(ltr_split *s) {
    free(s->x);
    free(s->y);
    free(s->score);
    free(s->groups);
}

/* Mean NDCG@10 over the split's pages with an outcome, of score. */
static double ltr_mean_ndcg(const ltr_split *s, const float *score) {
    double sum = 0;
    size_t n = 0, at = 0;
    for (size_t g = 0; g < s->pages; at += s->groups[g++]) {
        int any = 0;
        for (size_t i = 0; i < s->groups[g]; i++) any |= s->y[at + i] > 0;
        if (!any) continue;
        sum += ltr_ndcg(score + at, s->y + at, s->groups[g], 10);
        n++;
    }
    return n ? sum / n : 0;
}

static int ltr_xgb(int rc, char *err, size_t errlen) {
    return rc == 0 ? AISLE_OK : ltr_xgb_fail(AISLE_EINTERNAL, err, errlen, "xgboost");
}

/* Trains on tr; returns the booster in *out. */
static int ltr_boost(const ltr_split *tr, uint32_t nf, const ltr_train_config *cfg,
                     BoosterHandle *out, char *err, size_t errlen) {
    DMatrixHandle m = NULL;
    BoosterHandle b = NULL;
    char v[32];
    int rc = ltr_xgb(XGDMatrixCreateFromMat(tr->x, tr->rows, nf, NAN, &m), err, errlen);
    if (rc == AISLE_OK)
        rc = ltr_xgb(XGDMatrixSetFloatInfo(m, "label", tr->y, tr->rows), err, errlen);
    if (rc == AISLE_OK)
        rc = ltr_xgb(XGDMatrixSetUIntInfo(m, "group", tr->groups, tr->pages), err, errlen);
    if (rc == AISLE_OK) rc = ltr_xgb(XGBoosterCreate(&m, 1, &b), err, errlen);
    const char *params[][2] = {{"objective", "rank:ndcg"}, {"eval_metric", "ndcg@10"},
                               {"tree_method", "hist"},    {"nthread", "2"},
                               {"verbosity", "0"},         {"seed", "1"}};
    for (size_t i = 0; rc == AISLE_OK && i < sizeof(params) / sizeof(params[0]); i++)
        rc = ltr_xgb(XGBoosterSetParam(b, params[i][0], params[i][1]), err, errlen);
    snprintf(v, sizeof(v), "%d", cfg->max_depth);
    if (rc == AISLE_OK) rc = ltr_xgb(XGBoosterSetParam(b, "max_depth", v), err, errlen);
    snprintf(v, sizeof(v), "%g", cfg->eta);
    if (rc == AISLE_OK) rc = ltr_xgb(XGBoosterSetParam(b, "eta", v), err, errlen);
    for (int i = 0; rc == AISLE_OK && i < cfg->rounds; i++)
        rc = ltr_xgb(XGBoosterUpdateOneIter(b, i, m), err, errlen);
    if (m) XGDMatrixFree(m);
    if (rc != AISLE_OK) {
        if (b) XGBoosterFree(b);
        return rc;
    }
    *out = b;
    return AISLE_OK;
}

/* Splits d's pages into training days and the last day (or the last
 * holdout_ms when it is positive). */
static int ltr_split_days(const ltr_data *d, const int8_t *grades, int64_t holdout_ms,
                          ltr_split *tr, ltr_split *te, size_t *skipped) {
    int64_t last = INT64_MIN;
    for (size_t i = 0; i < d->n_pages; i++)
        if (d->pages[i].ok && d->pages[i].ts > last) last = d->pages[i].ts;
    int64_t cut = holdout_ms > 0 && last > INT64_MIN + holdout_ms ? last - holdout_ms
                  : last >= 0                                    ? last / LTR_DAY_MS * LTR_DAY_MS
                                                                 : last;
    *skipped = 0;
    for (size_t i = 0; i < d->n_pages; i++) {
        const ltr_page *p = &d->pages[i];
        if (!p->ok) {
            (*skipped)++;
            continue;
        }
        if (p->n && ltr_split_add(p->ts >= cut ? te : tr, d, p, grades) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    return AISLE_OK;
}

int ltr_train(ltr_data *d, const ltr_train_config *cfg_in, ltr_model **out, ltr_train_result *res,
              char *err, size_t errlen) {
    ltr_train_config cfg = cfg_in ? *cfg_in : (ltr_train_config){0};
    if (cfg.rounds <= 0) cfg.rounds = 200;
    if (cfg.max_depth <= 0) cfg.max_depth = 6;
    if (cfg.eta <= 0) cfg.eta = 0.1;
    memset(res, 0, sizeof(*res));
    res->n_features = d->n_features;
    int8_t *grades = NULL;
    size_t n;
    ltr_split tr = {0}, te = {0};
    BoosterHandle b = NULL;
    float *pred = NULL;
    ltr_model *m = NULL;
    int rc = exp_report_outcomes(d->attrib, INT64_MAX, &grades, &n);
    if (rc == AISLE_OK) rc = ltr_split_days(d, grades, cfg.holdout_ms, &tr, &te, &res->skipped);
    if (rc == AISLE_OK && (!d->n_features || ltr_mean_ndcg(&tr, tr.y) == 0 ||
                           ltr_mean_ndcg(&te, te.y) == 0))
        rc = status_fail(AISLE_EINVAL, err, errlen,
                         "too little data: %zu training and %zu held-out pages with features "
                         "and outcomes needed on both sides", tr.pages, te.pages);
    if (rc == AISLE_OK) rc = ltr_boost(&tr, d->n_features, &cfg, &b, err, errlen);
    if (rc == AISLE_OK) rc = ltr_model_from_booster(b, d->n_features, &m, err, errlen);
    pred = rc == AISLE_OK ? malloc((te.rows ? te.rows : 1) * sizeof(*pred)) : NULL;
    if (rc == AISLE_OK && !pred) rc = AISLE_ENOMEM;
    if (rc == AISLE_OK) rc = ltr_model_score(m, te.x, te.rows, pred, err, errlen);
    if (rc != AISLE_OK) goto fail;
    res->train_pages = tr.pages, res->train_rows = tr.rows;
    res->test_pages = te.pages, res->test_rows = te.rows;
    res->ndcg_model = ltr_mean_ndcg(&te, pred);
    res->ndcg_current = ltr_mean_ndcg(&te, te.score);
    if (out) *out = m;
    else ltr_model_release(m);
    m = NULL;
fail:
    ltr_model_release(m);
    free(pred);
    free(grades);
    ltr_split_free(&tr);
    ltr_split_free(&te);
    return rc;
}
