/* probe: the tuner's scorer (see probe.h). The cache holds, for each
 * sampled user in embed_eval_users' order, three rows of n_items floats;
 * a cached point adds their combination to the neighbour sums the
 * reference formula computes for a model of dimension 0. */
#include "embed/probe.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

#define PROBE_BATCH 256
#define PROBE_TERMS 3 /* A, B, C of probe.h */

struct embed_probe {
    embed_trainer *t; /* borrowed, like the data */
    const embed_data *train, *valid;
    uint32_t stride, n_users, n_items;
    uint32_t *users;          /* the sample, in evaluation order */
    embed_train_params base;  /* the search's best point (has_base) */
    embed_train_params key;   /* what prod was computed for (cached) */
    int has_base, cached;
    float *prod[PROBE_TERMS]; /* n_users x n_items each, row major */
    float *coef[PROBE_TERMS]; /* the current point's item factors */
    embed_model lists;        /* the current point's neighbour lists */
    /* A half-cached point (another lin_item): A from the cache, its
     * second block by a product per batch of rows against vs. */
    int half;
    embed_train_params point;
    float *vs;                /* n_items x dim: e1_j V_j */
    float *rows[PROBE_TERMS]; /* one batch's user rows */
};

static const int probe_ks[] = {20, 10, 50};

/* d^x with an empty item as degree 1, as the trainer does. */
static double probe_pow(uint32_t d, double x) { return pow(d ? (double)d : 1.0, x); }

int embed_probe_new(embed_trainer *t, const embed_data *train, const embed_data *valid,
                    uint32_t stride, embed_probe **out) {
    embed_probe *pr = calloc(1, sizeof(*pr));
    uint32_t skipped;
    *out = NULL;
    if (!pr) return AISLE_ENOMEM;
    pr->t = t;
    pr->train = train;
    pr->valid = valid;
    pr->stride = stride;
    pr->n_items = train->n_items;
    pr->users = malloc(((size_t)valid->n_users + 1) * sizeof(*pr->users));
    for (int b = 0; b < PROBE_TERMS; b++)
        pr->coef[b] = malloc(((size_t)pr->n_items + 1) * sizeof(float));
    if (!pr->users || !pr->coef[0] || !pr->coef[1] || !pr->coef[2]) {
        embed_probe_free(pr);
        return AISLE_ENOMEM;
    }
    pr->n_users = embed_eval_users(train, valid, stride, pr->users, &skipped);
    *out = pr;
    return AISLE_OK;
}

static void probe_half_free(embed_probe *pr);

static void probe_drop_cache(embed_probe *pr) {
    for (int b = 0; b < PROBE_TERMS; b++) {
        free(pr->prod[b]);
        pr->prod[b] = NULL;
    }
    pr->cached = 0;
}

void embed_probe_free(embed_probe *pr) {
    if (!pr) return;
    probe_drop_cache(pr);
    probe_half_free(pr);
    for (int b = 0; b < PROBE_TERMS; b++) free(pr->coef[b]);
    free(pr->users);
    embed_model_free(&pr->lists);
    free(pr);
}

void embed_probe_set_base(embed_probe *pr, const embed_train_params *p) {
    pr->base = *p;
    pr->has_base = 1;
    embed_trainer_pin(pr->t, p);
}

/* Whether a and b have the same products A, B, C. */
static int probe_same_key(const embed_train_params *a, const embed_train_params *b) {
    embed_sharp_blocks x, y;
    embed_sharpened_blocks(a, &x);
    embed_sharpened_blocks(b, &y);
    return a->method == EMBED_METHOD_SHARPENED && b->method == EMBED_METHOD_SHARPENED &&
           a->dim == b->dim && x.user_exp[0] == y.user_exp[0] && x.user_exp[1] == y.user_exp[1];
}

/* How a point is scored: by its model, from the cache (building it first
 * when p shares the base's key), or half from it (the cache's rank and
 * first user-side exponent, another second: lin_item). */
enum { PROBE_MODEL, PROBE_CACHED, PROBE_HALF };

static int probe_mode(const embed_probe *pr, const embed_train_params *p) {
    double bytes = (double)PROBE_TERMS * pr->n_users * pr->n_items * sizeof(float);
    if (p->dim == 0 || bytes > EMBED_PROBE_MAX_BYTES) return PROBE_MODEL;
    if (pr->cached && probe_same_key(&pr->key, p)) return PROBE_CACHED;
    if (pr->has_base && probe_same_key(&pr->base, p)) return PROBE_CACHED;
    embed_sharp_blocks x, y;
    embed_sharpened_blocks(&pr->key, &x);
    embed_sharpened_blocks(p, &y);
    if (pr->cached && p->method == EMBED_METHOD_SHARPENED && p->dim == pr->key.dim &&
        x.user_exp[0] == y.user_exp[0])
        return PROBE_HALF;
    return PROBE_MODEL;
}

/* The three user-side blocks of one batch (rows X, Y S^2, Y S^2 t; n x k
 * each) from the users' profiles. */
static void probe_user_rows(const embed_probe *pr, const embed_trainer_view *v,
                            const embed_sharp_blocks *sb, uint32_t k, uint32_t first,
                            uint32_t n, float *rows[PROBE_TERMS]) {
    double s1 = v->sigma[0] > 0 ? v->sigma[0] * v->sigma[0] : 1;
#pragma omp parallel for schedule(dynamic, 8)
    for (uint32_t r = 0; r < n; r++) {
        uint32_t u = pr->users[first + r];
        float *x = rows[0] + (size_t)r * k, *yb = rows[1] + (size_t)r * k,
              *yc = rows[2] + (size_t)r * k;
        memset(x, 0, k * sizeof(float));
        memset(yb, 0, k * sizeof(float));
        for (uint64_t e = pr->train->off[u]; e < pr->train->off[u + 1]; e++) {
            uint32_t i = pr->train->item[e];
            if (i >= pr->n_items) continue;
            const double *vi = v->V + (size_t)i * v->k;
            double w = pr->train->weight[e];
            double w0 = w * probe_pow(v->deg[i], sb->user_exp[0]);
            double w1 = w * probe_pow(v->deg[i], sb->user_exp[1]);
            for (uint32_t c = 0; c < k; c++) {
                x[c] += (float)(w0 * vi[c]);
                yb[c] += (float)(w1 * vi[c]);
            }
        }
        for (uint32_t c = 0; c < k; c++) {
            double s2 = v->sigma[c] * v->sigma[c];
            yc[c] = (float)(yb[c] * s2 * (s2 / s1));
            yb[c] = (float)(yb[c] * s2);
        }
    }
}

/* Computes A, B, C for p's key over the whole sample. */
static int probe_build(embed_probe *pr, const embed_train_params *p) {
    embed_trainer_view v = embed_trainer_spectrum(pr->t);
    embed_sharp_blocks sb;
    uint32_t k = p->dim, ni = pr->n_items;
    float *Vf = malloc(((size_t)ni * k + 1) * sizeof(float)), *rows[PROBE_TERMS] = {0};
    int rc = AISLE_ENOMEM;
    probe_drop_cache(pr);
    if (k > v.k) {
        rc = AISLE_EINVAL;
        goto done;
    }
    embed_sharpened_blocks(p, &sb);
    for (int b = 0; b < PROBE_TERMS; b++) {
        pr->prod[b] = malloc(((size_t)pr->n_users * ni + 1) * sizeof(float));
        rows[b] = malloc(((size_t)PROBE_BATCH * k + 1) * sizeof(float));
        if (!pr->prod[b] || !rows[b]) goto done;
    }
    if (!Vf) goto done;
    for (uint32_t i = 0; i < ni; i++)
        for (uint32_t c = 0; c < k; c++) Vf[(size_t)i * k + c] = (float)v.V[(size_t)i * v.k + c];
    for (uint32_t b0 = 0; b0 < pr->n_users; b0 += PROBE_BATCH) {
        uint32_t n = pr->n_users - b0 < PROBE_BATCH ? pr->n_users - b0 : PROBE_BATCH;
        probe_user_rows(pr, &v, &sb, k, b0, n, rows);
        for (int b = 0; b < PROBE_TERMS; b++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ni, (int)k, 1.0f,
                        rows[b], (int)k, Vf, (int)k, 0.0f, pr->prod[b] + (size_t)b0 * ni, (int)ni);
    }
    pr->key = *p;
    pr->cached = 1;
    rc = AISLE_OK;
done:
    if (rc != AISLE_OK) probe_drop_cache(pr);
    for (int b = 0; b < PROBE_TERMS; b++) free(rows[b]);
    free(Vf);
    return rc;
}

/* The item factors of p: alpha e0, -sharpen e1, curve e1. */
static void probe_coefs(embed_probe *pr, const embed_train_params *p) {
    const uint32_t *deg = embed_trainer_spectrum(pr->t).deg;
    embed_sharp_blocks sb;
    embed_sharpened_blocks(p, &sb);
    for (uint32_t j = 0; j < pr->n_items; j++) {
        double seen = deg[j] ? 1.0 : 0.0, e1 = seen * probe_pow(deg[j], sb.item_exp[1]);
        pr->coef[0][j] = (float)(p->alpha * seen * probe_pow(deg[j], sb.item_exp[0]));
        pr->coef[1][j] = (float)(-p->sharpen * e1);
        pr->coef[2][j] = (float)(p->curve * e1);
    }
}

/* A half-cached batch's second block, added into scores: the rows
 * y (curve S^2 t - sharpen S^2) against vs. */
static void probe_half_block(embed_probe *pr, uint32_t first, uint32_t n, float *scores) {
    const embed_train_params *p = &pr->point;
    embed_trainer_view v = embed_trainer_spectrum(pr->t);
    embed_sharp_blocks sb;
    uint32_t k = p->dim;
    embed_sharpened_blocks(p, &sb);
    probe_user_rows(pr, &v, &sb, k, first, n, pr->rows);
    for (size_t e = 0; e < (size_t)n * k; e++)
        pr->rows[1][e] = (float)(p->curve * pr->rows[2][e] - p->sharpen * pr->rows[1][e]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)pr->n_items, (int)k, 1.0f,
                pr->rows[1], (int)k, pr->vs, (int)k, 1.0f, scores, (int)pr->n_items);
}

/* A cached point's batch: the neighbour sums, plus the combination. */
static int probe_score(void *ctx, uint32_t first, uint32_t n, const uint64_t *off,
                       const uint32_t *item, const float *weight, float *scores) {
    embed_probe *pr = ctx;
    size_t ni = pr->n_items;
    int rc = embed_score_batch(&pr->lists, n, off, item, weight, scores);
    if (rc != AISLE_OK) return rc;
    if (pr->half) probe_half_block(pr, first, n, scores);
    const float *c0 = pr->coef[0], *c1 = pr->coef[1], *c2 = pr->coef[2];
    int half = pr->half;
#pragma omp parallel for schedule(static)
    for (uint32_t r = 0; r < n; r++) {
        size_t row = (size_t)(first + r) * ni;
        const float *a = pr->prod[0] + row, *b = pr->prod[1] + row, *c = pr->prod[2] + row;
        float *s = scores + (size_t)r * ni;
        if (half)
            for (size_t j = 0; j < ni; j++) s[j] += c0[j] * a[j];
        else
            for (size_t j = 0; j < ni; j++) s[j] += c0[j] * a[j] + c1[j] * b[j] + c2[j] * c[j];
    }
    return AISLE_OK;
}

/* The buffers of a half-cached point: vs = e1_j V_j (the factors of
 * probe_coefs, before sharpen's sign) and one batch of rows. */
static int probe_half_alloc(embed_probe *pr, const embed_train_params *p) {
    embed_trainer_view v = embed_trainer_spectrum(pr->t);
    embed_sharp_blocks sb;
    uint32_t k = p->dim;
    embed_sharpened_blocks(p, &sb);
    pr->vs = malloc(((size_t)pr->n_items * k + 1) * sizeof(float));
    for (int b = 0; b < PROBE_TERMS; b++)
        pr->rows[b] = malloc(((size_t)PROBE_BATCH * k + 1) * sizeof(float));
    if (!pr->vs || !pr->rows[0] || !pr->rows[1] || !pr->rows[2]) return AISLE_ENOMEM;
    for (uint32_t j = 0; j < pr->n_items; j++) {
        double e1 = v.deg[j] ? probe_pow(v.deg[j], sb.item_exp[1]) : 0.0;
        for (uint32_t c = 0; c < k; c++)
            pr->vs[(size_t)j * k + c] = (float)(e1 * v.V[(size_t)j * v.k + c]);
    }
    return AISLE_OK;
}

static void probe_half_free(embed_probe *pr) {
    free(pr->vs);
    pr->vs = NULL;
    for (int b = 0; b < PROBE_TERMS; b++) {
        free(pr->rows[b]);
        pr->rows[b] = NULL;
    }
    pr->half = 0;
}

/* A point scored by its model (another key, or no cache). */
static int probe_plain(embed_probe *pr, const embed_train_params *p, embed_eval_result *res) {
    embed_model m;
    int rc = embed_trainer_model(pr->t, p, &m);
    if (rc != AISLE_OK) return rc;
    rc = embed_eval_run(&m, pr->train, pr->valid, probe_ks, 3, pr->stride, res, NULL);
    embed_model_free(&m);
    return rc;
}

/* p's score on the sample, by the cache or by its model. */
static int probe_run(embed_probe *pr, const embed_train_params *p, embed_eval_result *res) {
    int mode = probe_mode(pr, p), rc = AISLE_OK;
    if (mode == PROBE_MODEL) return probe_plain(pr, p, res);
    if (mode == PROBE_CACHED && (!pr->cached || !probe_same_key(&pr->key, p)))
        rc = probe_build(pr, p);
    if (rc == AISLE_OK && mode == PROBE_HALF) rc = probe_half_alloc(pr, p);
    if (rc == AISLE_OK) rc = embed_trainer_neighbors(pr->t, p, &pr->lists);
    if (rc == AISLE_OK) {
        probe_coefs(pr, p);
        pr->half = mode == PROBE_HALF;
        pr->point = *p;
        embed_eval_scorer sc = {probe_score, pr, pr->n_items};
        rc = embed_eval_run_scorer(&sc, pr->train, pr->valid, probe_ks, 3, pr->stride, res, NULL);
    }
    embed_model_free(&pr->lists);
    probe_half_free(pr);
    return rc;
}

int embed_probe_eval(embed_probe *pr, const embed_train_params *p, embed_eval_result *res) {
    int rc = probe_run(pr, p, res);
    /* The base's lists exist only once it has been scored. */
    if (pr->has_base) embed_trainer_pin(pr->t, &pr->base);
    return rc;
}
