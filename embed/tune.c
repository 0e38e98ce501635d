/* tune: coordinate search over a method's parameters on a validation
 * carve (see tune.h). The candidate lists are deliberately short and
 * spread over the ranges the methods are known to work in; the search
 * never leaves them, so a point it picks is always one of a few dozen that
 * could be listed in advance. */
#include "embed/tune.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/probe.h"
#include "embed/progress.h"
#include "services/base/status.h"

#define TUNE_MAX_VALUES 6

/* One searchable parameter: where it lives in the params and its values. */
typedef struct {
    const char *name;
    size_t offset;   /* of a double, or of a uint32_t when is_u32 */
    int is_u32;
    int n;
    double values[TUNE_MAX_VALUES];
} tune_axis;

#define AXIS_D(field, ...)                                                                  \
    {#field, offsetof(embed_train_params, field), 0,                                       \
     (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double)), {__VA_ARGS__}}
#define AXIS_U(field, ...)                                                                  \
    {#field, offsetof(embed_train_params, field), 1,                                       \
     (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double)), {__VA_ARGS__}}

/* The rank first: it is a prefix of the spectrum, so it is searched
 * downwards only from the trained rank, and on a small catalogue the
 * defaults' rank is the parameter furthest off. Then the cheap axes (a
 * low-rank refill and a rescale of the lists), and the ones that recount
 * the neighbour lists last, except sharpened's lin_user (how much a heavy
 * user's co-occurrences count), which moves its figures the most. The
 * popularity bias comes before beta: both favour popular items, and on
 * Gowalla the bias alone scores better than beta alone or both. */
static const tune_axis tune_cheby[] = {
    AXIS_U(dim, 64, 128, 256, 384, 512),
    AXIS_D(alpha, 0.05, 0.1, 0.2, 0.3, 0.5),
    AXIS_D(flat, 1.0, 1.5, 2.0, 3.0),
    AXIS_D(sharpen, 0.0, 0.2, 0.4),
    AXIS_D(degnorm, 0.2, 0.3, 0.4, 0.5),
};
static const tune_axis tune_sharpened[] = {
    AXIS_U(dim, 64, 128, 192, 256),
    AXIS_D(lin_user, 0.6, 0.7, 0.8, 0.9, 1.0),
    AXIS_D(alpha, 0.1, 0.2, 0.3, 0.5),
    AXIS_D(sharpen, 0.3, 0.5, 0.7),
    AXIS_D(curve, -0.3, 0.0, 0.3, 0.6),
    AXIS_D(pop, 0.0, 0.25, 0.5, 1.0, 2.0),
    AXIS_D(lin_item, 0.3, 0.4, 0.5),
    AXIS_D(beta, -0.1, 0.0, 0.1),
};
static const tune_axis tune_bspm[] = {
    AXIS_U(dim, 128, 256, 384, 448),
    AXIS_D(alpha, 0.1, 0.2, 0.4),
    AXIS_D(sharpen_time, 1.0, 1.5, 2.5, 3.5),
};

static const tune_axis *tune_axes(embed_method m, int *n) {
    switch (m) {
    case EMBED_METHOD_CHEBY: *n = (int)(sizeof(tune_cheby) / sizeof(tune_cheby[0])); return tune_cheby;
    case EMBED_METHOD_BSPM: *n = (int)(sizeof(tune_bspm) / sizeof(tune_bspm[0])); return tune_bspm;
    case EMBED_METHOD_SHARPENED: break;
    }
    *n = (int)(sizeof(tune_sharpened) / sizeof(tune_sharpened[0]));
    return tune_sharpened;
}

static double axis_get(const tune_axis *a, const embed_train_params *p) {
    const char *base = (const char *)p + a->offset;
    if (a->is_u32) {
        uint32_t v;
        memcpy(&v, base, sizeof(v));
        return v;
    }
    double v;
    memcpy(&v, base, sizeof(v));
    return v;
}

static void axis_set(const tune_axis *a, embed_train_params *p, double v) {
    char *base = (char *)p + a->offset;
    if (a->is_u32) {
        uint32_t u = (uint32_t)v;
        memcpy(base, &u, sizeof(u));
    } else {
        memcpy(base, &v, sizeof(v));
    }
}

/* The search's objective: Recall@20 + NDCG@20 (both goals count). */
static double tune_score(const embed_eval_result *r) { return r->recall[0] + r->ndcg[0]; }

/* The search state shared by its steps. */
typedef struct {
    embed_probe *probe;
    int quiet;
    uint32_t max_dim;
    double work;      /* the budget, in scored (user, item) pairs (0: none) */
    double point_work; /* what one point scores: sample users x items */
    double deadline; /* the wall-clock cap (0: none) */
    double step_s;   /* how long the last point took: no point starts that
                        would end past the deadline */
} tune_ctx;

/* The points the budget allows (0: no limit), for the progress lines; the
 * start is scored whatever the budget. */
static uint32_t tune_max_points(const tune_ctx *c) {
    if (c->work <= 0) return 0;
    double n = c->work / c->point_work;
    return n < 1 ? 1 : n > 1e9 ? 1000000000u : (uint32_t)n;
}

/* Whether the budget allows another point; notes a stop by the clock. */
static int tune_can_step(const tune_ctx *c, embed_tune_result *res) {
    if (c->work > 0 && (double)(res->evals + 1) * c->point_work > c->work) return 0;
    if (c->deadline > 0 && embed_now() + c->step_s > c->deadline) {
        res->out_of_time = 1;
        return 0;
    }
    return 1;
}

/* tune_try's answer when the budget allows no more points (not an
 * AISLE_* code: it never leaves this file). */
#define TUNE_SPENT 1

/* Scores *p with axis ax set to val and keeps it in *p and *best when it
 * is better (*better says so). AISLE_OK, TUNE_SPENT or an AISLE_* error. */
static int tune_try(tune_ctx *c, const tune_axis *ax, double val, embed_train_params *p,
                    embed_eval_result *best, embed_tune_result *res, int *better) {
    *better = 0;
    if (!tune_can_step(c, res)) return TUNE_SPENT;
    embed_train_params q = *p;
    embed_eval_result r;
    axis_set(ax, &q, val);
    double t0 = embed_now();
    int rc = embed_probe_eval(c->probe, &q, &r);
    c->step_s = embed_now() - t0;
    if (rc != AISLE_OK) return rc;
    res->evals++;
    *better = tune_score(&r) > tune_score(best);
    if (!c->quiet)
        fprintf(stderr, "tune %u/%u (%.1f s): %s=%g  recall@20 %.4f ndcg@20 %.4f%s\n", res->evals,
                tune_max_points(c), c->step_s, ax->name, val, r.recall[0], r.ndcg[0],
                *better ? "  (best)" : "");
    if (*better) {
        *p = q;
        *best = r;
        embed_probe_set_base(c->probe, p);
    }
    return AISLE_OK;
}

/* Whether val may be tried: a rank above the trained one, or any rank
 * without a spectrum, may not. */
static int tune_allowed(const tune_ctx *c, const tune_axis *ax, double val,
                        const embed_train_params *p) {
    return !ax->is_u32 || (val <= c->max_dim && p->dim > 0);
}

/* One axis as a line search. Its values ascend and, near an optimum, the
 * figures rise towards it from both sides, so the walk steps down from the
 * current value while that improves, and up (likewise) only when the first
 * step down did not: two points for an axis already at its best, instead
 * of every value. A current value not in the list (the caller's own) has
 * every value tried. */
static int tune_walk(tune_ctx *c, const tune_axis *ax, embed_train_params *p,
                     embed_eval_result *best, embed_tune_result *res) {
    double cur = axis_get(ax, p);
    int at = -1, better, rc;
    for (int v = 0; v < ax->n; v++)
        if (ax->values[v] == cur) at = v;
    if (at < 0) {
        for (int v = 0; v < ax->n; v++) {
            if (!tune_allowed(c, ax, ax->values[v], p)) continue;
            if ((rc = tune_try(c, ax, ax->values[v], p, best, res, &better)) != AISLE_OK) return rc;
        }
        return AISLE_OK;
    }
    for (int dir = -1; dir <= 1; dir += 2) {
        int moved = 0;
        for (int v = at + dir; v >= 0 && v < ax->n; v += dir) {
            if (!tune_allowed(c, ax, ax->values[v], p)) break;
            if ((rc = tune_try(c, ax, ax->values[v], p, best, res, &better)) != AISLE_OK) return rc;
            if (!better) break;
            moved = 1;
        }
        if (moved) break;
    }
    return AISLE_OK;
}

/* One pass over every axis; *best and *p hold the best point. */
static int tune_pass(tune_ctx *c, const tune_axis *axes, int n_axes, embed_train_params *p,
                     embed_eval_result *best, embed_tune_result *res) {
    for (int a = 0; a < n_axes; a++) {
        int rc = tune_walk(c, &axes[a], p, best, res);
        if (rc != AISLE_OK) return rc;
    }
    return AISLE_OK;
}

/* The search itself, on a trainer over the carve. */
static int tune_search(tune_ctx *c, embed_train_params *p, const embed_tune_opts *opts,
                       embed_tune_result *res) {
    int n_axes;
    const tune_axis *axes = tune_axes(p->method, &n_axes);
    double t0 = embed_now();
    c->deadline = opts->budget_s > 0 ? t0 + opts->budget_s : 0;
    embed_probe_set_base(c->probe, p);
    int rc = embed_probe_eval(c->probe, p, &res->start);
    c->step_s = embed_now() - t0;
    if (rc != AISLE_OK) return rc;
    res->evals = 1;
    res->best = res->start;
    if (!c->quiet)
        fprintf(stderr, "tune 1/%u (%.1f s): start  recall@20 %.4f ndcg@20 %.4f\n",
                tune_max_points(c), c->step_s, res->start.recall[0], res->start.ndcg[0]);
    /* A second pass only re-checks axes whose best value moved others. */
    for (int pass = 0; pass < 2 && tune_can_step(c, res); pass++) {
        embed_train_params before = *p;
        rc = tune_pass(c, axes, n_axes, p, &res->best, res);
        if (rc == TUNE_SPENT) break;
        if (rc != AISLE_OK) return rc;
        if (memcmp(&before, p, sizeof(before)) == 0) break;
    }
    res->seconds = embed_now() - t0;
    return AISLE_OK;
}

int embed_tune(const embed_data *all, embed_train_params *p, const embed_tune_opts *opts,
               embed_tune_result *res) {
    embed_data train, valid;
    embed_trainer *trainer = NULL;
    tune_ctx c = {.quiet = opts->quiet, .work = opts->work};
    memset(res, 0, sizeof(*res));
    int rc = embed_data_holdout(all, opts->holdout, opts->seed, &train, &valid);
    if (rc != AISLE_OK) return rc;
    rc = embed_trainer_new(&train, p, NULL, opts->quiet, &trainer);
    if (rc != AISLE_OK) goto done;
    embed_trainer_unordered_lists(trainer);
    uint32_t users = 0;
    for (uint32_t u = 0; u < valid.n_users; u++) users += valid.off[u + 1] > valid.off[u];
    c.max_dim = p->dim;
    uint32_t stride = opts->sample && users > opts->sample ? users / opts->sample : 1;
    c.point_work = (double)((users + stride - 1) / stride) * train.n_items;
    if (c.point_work < 1) c.point_work = 1;
    if ((rc = embed_probe_new(trainer, &train, &valid, stride, &c.probe)) != AISLE_OK) goto done;
    rc = tune_search(&c, p, opts, res);
    /* The probe's cache goes before the final training needs the room. */
    embed_probe_free(c.probe);
    if (rc == AISLE_OK) embed_trainer_take_spectrum(trainer, &res->spectrum, &res->spectrum_k);
done:
    embed_trainer_free(trainer);
    embed_data_free(&train);
    embed_data_free(&valid);
    return rc;
}

void embed_tune_result_free(embed_tune_result *res) {
    free(res->spectrum);
    res->spectrum = NULL;
    res->spectrum_k = 0;
}

uint32_t embed_tune_rank(const embed_data *all, const embed_train_params *p) {
    uint32_t side = all->n_users < all->n_items ? all->n_users : all->n_items;
    if (p->method != EMBED_METHOD_SHARPENED || side < EMBED_TUNE_WIDE_SIDE ||
        p->dim >= EMBED_TUNE_WIDE_RANK)
        return p->dim;
    return EMBED_TUNE_WIDE_RANK;
}
