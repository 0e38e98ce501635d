/* report: attribution of signals to exposures and the per-variant
 * statistics of an experiment (see report.h). */
#include "services/experiment/report.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/grow.h"
#include "services/base/status.h"
#include "services/base/strmap.h"
#include "services/experiment/stats.h"

#define REPORT_SRM_P 0.001
#define REPORT_NONE UINT32_MAX

static const char *const report_outcome[REPORT_OUTCOMES] = {"click", "add_to_cart", "purchase"};

typedef struct rexposure {
    int64_t ts;
    uint32_t user, item_off, n_items, var_off, n_vars;
} rexposure;

typedef struct rsignal {
    int64_t ts;
    uint32_t user, item;
    int kind;
} rsignal;

typedef struct rvar {
    uint32_t exp, var;
} rvar;

typedef struct rexp {
    char *name;
    char **vars;
    double *weights;
    size_t n_vars;
} rexp;

struct exp_report {
    exp_report_config cfg;
    strmap users, items, exps, vars, events; /* vars: "EXP\x1fVARIANT"; events: ids seen */
    size_t n_users, n_items;
    rexposure *ex;
    size_t n_ex, cap_ex;
    uint32_t *item_pool;
    size_t n_ip, cap_ip;
    rvar *var_pool;
    size_t n_vp, cap_vp;
    rsignal *sig;
    size_t n_sig, cap_sig;
    rexp *defs;
    size_t n_defs, cap_defs;
    exp_report_exp *res; /* the last compute's */
    size_t n_res;
};

/* The index of key in m, added as *count++ when new. */
static int report_id(strmap *m, size_t *count, const char *key, size_t len, uint32_t *out) {
    size_t v;
    if (strmap_get(m, key, len, &v) == AISLE_OK) return *out = (uint32_t)v, AISLE_OK;
    if (strmap_put(m, key, len, *count) != AISLE_OK) return AISLE_ENOMEM;
    *out = (uint32_t)(*count)++;
    return AISLE_OK;
}

int exp_report_new(const exp_report_config *cfg, exp_report **out) {
    exp_report *r = calloc(1, sizeof(*r));
    if (!r) return AISLE_ENOMEM;
    if (cfg) r->cfg = *cfg;
    if (r->cfg.window_ms <= 0) r->cfg.window_ms = 24LL * 3600 * 1000;
    if (r->cfg.alpha <= 0) r->cfg.alpha = 0.05;
    if (r->cfg.mixing_lift <= 0) r->cfg.mixing_lift = 0.1;
    *out = r;
    return AISLE_OK;
}

static void report_results_free(exp_report *r) {
    for (size_t i = 0; i < r->n_res; i++) free(r->res[i].arms);
    free(r->res);
    r->res = NULL;
    r->n_res = 0;
}

void exp_report_free(exp_report *r) {
    if (!r) return;
    report_results_free(r);
    for (size_t i = 0; i < r->n_defs; i++) {
        for (size_t j = 0; j < r->defs[i].n_vars; j++) free(r->defs[i].vars[j]);
        free(r->defs[i].vars);
        free(r->defs[i].weights);
        free(r->defs[i].name);
    }
    free(r->defs);
    strmap_free(&r->users);
    strmap_free(&r->items);
    strmap_free(&r->exps);
    strmap_free(&r->vars);
    strmap_free(&r->events);
    free(r->ex);
    free(r->item_pool);
    free(r->var_pool);
    free(r->sig);
    free(r);
}

/* The (experiment, variant) pair of names, added when new. */
static int report_var(exp_report *r, const char *exp, const char *var, rvar *out) {
    size_t before = r->n_defs;
    int rc = report_id(&r->exps, &r->n_defs, exp, strlen(exp), &out->exp);
    if (rc == AISLE_OK && r->n_defs > before) {
        r->n_defs = before; /* counted again once the slot exists */
        rc = GROW_ROOM(r->defs, r->n_defs, r->cap_defs, 64);
        if (rc == AISLE_OK) {
            memset(&r->defs[before], 0, sizeof(r->defs[before]));
            r->defs[before].name = strdup(exp);
            r->n_defs = before + 1;
            if (!r->defs[before].name) rc = AISLE_ENOMEM;
        }
    }
    if (rc != AISLE_OK) return rc;
    rexp *d = &r->defs[out->exp];
    size_t klen = strlen(exp) + 1 + strlen(var);
    char *key = malloc(klen + 1);
    if (!key) return AISLE_ENOMEM;
    snprintf(key, klen + 1, "%s\x1f%s", exp, var);
    size_t n = d->n_vars;
    rc = report_id(&r->vars, &n, key, klen, &out->var);
    free(key);
    if (rc != AISLE_OK || n == d->n_vars) return rc;
    char **vars = realloc(d->vars, n * sizeof(*vars));
    double *w = vars ? realloc(d->weights, n * sizeof(*w)) : NULL;
    if (vars) d->vars = vars;
    if (w) d->weights = w;
    if (!vars || !w || !(d->vars[n - 1] = strdup(var))) return AISLE_ENOMEM;
    d->weights[n - 1] = 1;
    d->n_vars = n;
    return AISLE_OK;
}

int exp_report_add_exposure(exp_report *r, const Aisle__V1__Exposure *e) {
    rexposure x = {e->ts_ms, 0, (uint32_t)r->n_ip, (uint32_t)e->n_items, (uint32_t)r->n_vp,
                   (uint32_t)e->n_variants};
    int rc = report_id(&r->users, &r->n_users, e->user_id, strlen(e->user_id), &x.user);
    for (size_t i = 0; rc == AISLE_OK && i < e->n_items; i++) {
        rc = GROW_ROOM(r->item_pool, r->n_ip, r->cap_ip, 64);
        if (rc == AISLE_OK)
            rc = report_id(&r->items, &r->n_items, e->items[i]->item_id,
                           strlen(e->items[i]->item_id), &r->item_pool[r->n_ip]);
        if (rc == AISLE_OK) r->n_ip++;
    }
    for (size_t i = 0; rc == AISLE_OK && i < e->n_variants; i++) {
        rc = GROW_ROOM(r->var_pool, r->n_vp, r->cap_vp, 64);
        if (rc == AISLE_OK)
            rc = report_var(r, e->variants[i]->experiment, e->variants[i]->variant,
                            &r->var_pool[r->n_vp]);
        if (rc == AISLE_OK) r->n_vp++;
    }
    if (rc == AISLE_OK) rc = GROW_ROOM(r->ex, r->n_ex, r->cap_ex, 64);
    if (rc != AISLE_OK) return AISLE_ENOMEM;
    r->ex[r->n_ex++] = x;
    return AISLE_OK;
}

int exp_report_add_signal(exp_report *r, const Aisle__V1__Signal *s) {
    int kind = s->kind == AISLE__V1__SIGNAL_KIND__CLICK         ? REPORT_CLICK
               : s->kind == AISLE__V1__SIGNAL_KIND__ADD_TO_CART ? REPORT_CART
               : s->kind == AISLE__V1__SIGNAL_KIND__PURCHASE    ? REPORT_PURCHASE
                                                                : -1;
    if (kind < 0) return AISLE_OK;
    size_t dummy, n_events = r->events.used;
    if (s->event_id[0]) {
        if (strmap_get(&r->events, s->event_id, strlen(s->event_id), &dummy) == AISLE_OK)
            return AISLE_OK; /* a replay */
        if (strmap_put(&r->events, s->event_id, strlen(s->event_id), n_events) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    rsignal x = {s->ts_ms, 0, 0, kind};
    if (report_id(&r->users, &r->n_users, s->user_id, strlen(s->user_id), &x.user) ||
        report_id(&r->items, &r->n_items, s->item_id, strlen(s->item_id), &x.item) ||
        GROW_ROOM(r->sig, r->n_sig, r->cap_sig, 64))
        return AISLE_ENOMEM;
    r->sig[r->n_sig++] = x;
    return AISLE_OK;
}

int exp_report_expect(exp_report *r, const char *experiment, const char *variant, double w) {
    rvar v;
    int rc = report_var(r, experiment, variant, &v);
    if (rc == AISLE_OK) r->defs[v.exp].weights[v.var] = w;
    return rc;
}

static int report_by_user_time(const void *a, const void *b, void *arg) {
    const rexposure *ex = arg, *x = &ex[*(const uint32_t *)a], *y = &ex[*(const uint32_t *)b];
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Per-computation state: exposures ordered by user then time, and per
 * experiment each user's variant and outcome bits. */
typedef struct rwork {
    uint32_t *order, *first; /* first[u] .. first[u + 1]: u's exposures in order */
    uint32_t **user_var;     /* [exp][user]: the variant, or REPORT_NONE */
    uint8_t **user_conv;     /* [exp][user]: bit k: an attributed outcome k */
    uint64_t **pages, **events; /* [exp][var], [exp][var * REPORT_OUTCOMES + k] */
    uint64_t *mixed;
} rwork;

static void report_work_free(const exp_report *r, rwork *w) {
    for (size_t i = 0; w->user_var && i < r->n_defs; i++) {
        free(w->user_var[i]);
        free(w->user_conv[i]);
        free(w->pages[i]);
        free(w->events[i]);
    }
    free(w->user_var);
    free(w->user_conv);
    free(w->pages);
    free(w->events);
    free(w->mixed);
    free(w->order);
    free(w->first);
}

static int report_work_new(const exp_report *r, rwork *w) {
    size_t e = r->n_defs ? r->n_defs : 1;
    memset(w, 0, sizeof(*w));
    w->order = malloc((r->n_ex ? r->n_ex : 1) * sizeof(*w->order));
    w->first = calloc(r->n_users + 1, sizeof(*w->first));
    w->user_var = calloc(e, sizeof(*w->user_var));
    w->user_conv = calloc(e, sizeof(*w->user_conv));
    w->pages = calloc(e, sizeof(*w->pages));
    w->events = calloc(e, sizeof(*w->events));
    w->mixed = calloc(e, sizeof(*w->mixed));
    if (!w->order || !w->first || !w->user_var || !w->user_conv || !w->pages || !w->events ||
        !w->mixed)
        return AISLE_ENOMEM;
    for (size_t i = 0; i < r->n_defs; i++) {
        size_t nv = r->defs[i].n_vars;
        w->user_var[i] = malloc((r->n_users ? r->n_users : 1) * sizeof(**w->user_var));
        w->user_conv[i] = calloc(r->n_users ? r->n_users : 1, 1);
        w->pages[i] = calloc(nv, sizeof(**w->pages));
        w->events[i] = calloc(nv * REPORT_OUTCOMES, sizeof(**w->events));
        if (!w->user_var[i] || !w->user_conv[i] || !w->pages[i] || !w->events[i])
            return AISLE_ENOMEM;
        memset(w->user_var[i], 0xff, r->n_users * sizeof(**w->user_var));
    }
    return AISLE_OK;
}

/* Orders the exposures up to until by user and time; gives each user's
 * first variant per experiment and counts pages. */
static size_t report_exposures(const exp_report *r, rwork *w, int64_t until) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_ex; i++)
        if (r->ex[i].ts <= until) w->order[n++] = (uint32_t)i;
    qsort_r(w->order, n, sizeof(*w->order), report_by_user_time, r->ex);
    for (size_t i = 0; i < n; i++) w->first[r->ex[w->order[i]].user + 1]++;
    for (size_t u = 0; u < r->n_users; u++) w->first[u + 1] += w->first[u];
    for (size_t i = 0; i < n; i++) {
        const rexposure *x = &r->ex[w->order[i]];
        for (uint32_t k = 0; k < x->n_vars; k++) {
            rvar v = r->var_pool[x->var_off + k];
            uint32_t *uv = &w->user_var[v.exp][x->user];
            if (*uv == REPORT_NONE) *uv = v.var;
            else if (*uv != v.var && !(w->user_conv[v.exp][x->user] & 0x80))
                w->user_conv[v.exp][x->user] |= 0x80, w->mixed[v.exp]++;
            w->pages[v.exp][v.var]++;
        }
    }
    return n;
}

/* The position of item on page x, or -1. */
static int report_shows(const exp_report *r, const rexposure *x, uint32_t item) {
    for (uint32_t k = 0; k < x->n_items; k++)
        if (r->item_pool[x->item_off + k] == item) return (int)k;
    return -1;
}

/* Credits signal s to the latest exposure before it, within the window,
 * that showed its item; raises that item's grade when grades is given. */
static void report_attribute(const exp_report *r, rwork *w, const rsignal *s, int8_t *grades) {
    uint32_t lo = w->first[s->user], hi = w->first[s->user + 1];
    while (lo < hi) { /* the first exposure after s */
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->ex[w->order[mid]].ts <= s->ts) lo = mid + 1;
        else hi = mid;
    }
    for (uint32_t i = lo; i-- > w->first[s->user];) {
        const rexposure *x = &r->ex[w->order[i]];
        if (s->ts - x->ts > r->cfg.window_ms) return;
        int pos = report_shows(r, x, s->item);
        if (pos < 0) continue;
        int8_t *g = grades ? &grades[x->item_off + pos] : NULL;
        if (g && *g < s->kind) *g = (int8_t)s->kind;
        for (uint32_t k = 0; k < x->n_vars; k++) {
            rvar v = r->var_pool[x->var_off + k];
            w->events[v.exp][v.var * REPORT_OUTCOMES + s->kind]++;
            if (w->user_var[v.exp][s->user] == v.var)
                w->user_conv[v.exp][s->user] |= (uint8_t)(1u << s->kind);
        }
        return;
    }
}

static void report_wilson(uint64_t x, uint64_t n, double *p, double *lo, double *hi) {
    if (n == 0) {
        *p = *lo = *hi = NAN;
        return;
    }
    double z = STATS_Z95, q = (double)x / n, d = 1 + z * z / n;
    double c = (q + z * z / (2.0 * n)) / d,
           h = z * sqrt(q * (1 - q) / n + z * z / (4.0 * n * n)) / d;
    *p = q;
    *lo = c - h;
    *hi = c + h;
}

/* Lift, interval and p-values of arm t against control c for outcome k. */
static void report_compare(const exp_report *r, const exp_report_arm *c, exp_report_arm *t, int k) {
    double nc = (double)c->users, nt = (double)t->users;
    double pc = c->rate[k], pt = t->rate[k];
    t->lift[k] = t->lift_lo[k] = t->lift_hi[k] = NAN;
    t->p_fixed[k] = t->p_seq[k] = 1;
    if (nc == 0 || nt == 0) return;
    if (pc > 0 && pt > 0) {
        double lr = log(pt / pc), se = sqrt((1 - pt) / (nt * pt) + (1 - pc) / (nc * pc));
        t->lift[k] = pt / pc - 1;
        t->lift_lo[k] = exp(lr - STATS_Z95 * se) - 1;
        t->lift_hi[k] = exp(lr + STATS_Z95 * se) - 1;
    }
    double pp = (double)(c->converted[k] + t->converted[k]) / (nc + nt);
    double se0 = sqrt(pp * (1 - pp) * (1 / nc + 1 / nt));
    if (se0 > 0) t->p_fixed[k] = stats_norm_p2((pt - pc) / se0);
    double var = pt * (1 - pt) / nt + pc * (1 - pc) / nc, tau = r->cfg.mixing_lift * pp;
    if (var > 0 && tau > 0) t->p_seq[k] = stats_msprt_p(pt - pc, var, tau * tau);
    t->significant[k] = t->p_seq[k] < r->cfg.alpha;
}

static int report_arm_order(const void *a, const void *b) {
    const exp_report_arm *x = a, *y = b;
    int cx = strcmp(x->variant, "control") == 0, cy = strcmp(y->variant, "control") == 0;
    return cx != cy ? cy - cx : strcmp(x->variant, y->variant);
}

static void report_srm(exp_report_exp *e) {
    double n = 0, wsum = 0, chi = 0;
    for (size_t a = 0; a < e->n_arms; a++) n += e->arms[a].users, wsum += e->arms[a].expected_share;
    for (size_t a = 0; a < e->n_arms; a++) {
        e->arms[a].expected_share /= wsum;
        double want = n * e->arms[a].expected_share;
        if (want > 0) chi += (e->arms[a].users - want) * (e->arms[a].users - want) / want;
    }
    e->srm_chi2 = chi;
    e->srm_p = e->n_arms > 1 && n > 0 ? stats_chi2_sf(chi, (double)e->n_arms - 1) : 1;
    e->srm = e->srm_p < REPORT_SRM_P;
}

/* The results of experiment i from the counts in w. */
static int report_experiment(const exp_report *r, const rwork *w, size_t i, exp_report_exp *e) {
    const rexp *d = &r->defs[i];
    e->name = d->name;
    e->n_arms = d->n_vars;
    e->mixed_users = w->mixed[i];
    e->arms = calloc(d->n_vars ? d->n_vars : 1, sizeof(*e->arms));
    if (!e->arms) return AISLE_ENOMEM;
    for (size_t v = 0; v < d->n_vars; v++) {
        exp_report_arm *a = &e->arms[v];
        a->variant = d->vars[v];
        a->pages = w->pages[i][v];
        a->expected_share = d->weights[v];
        for (int k = 0; k < REPORT_OUTCOMES; k++)
            a->events[k] = w->events[i][v * REPORT_OUTCOMES + k];
    }
    for (size_t u = 0; u < r->n_users; u++) {
        uint32_t v = w->user_var[i][u];
        if (v == REPORT_NONE) continue;
        e->arms[v].users++;
        for (int k = 0; k < REPORT_OUTCOMES; k++)
            e->arms[v].converted[k] += (w->user_conv[i][u] >> k) & 1;
    }
    /* Experiments named only by exp_report_expect have arms without users. */
    qsort(e->arms, e->n_arms, sizeof(*e->arms), report_arm_order);
    for (size_t a = 0; a < e->n_arms; a++)
        for (int k = 0; k < REPORT_OUTCOMES; k++) {
            exp_report_arm *x = &e->arms[a];
            report_wilson(x->converted[k], x->users, &x->rate[k], &x->lo[k], &x->hi[k]);
            x->lift[k] = x->lift_lo[k] = x->lift_hi[k] = NAN;
            x->p_fixed[k] = x->p_seq[k] = 1;
            if (a > 0) report_compare(r, &e->arms[0], x, k);
        }
    report_srm(e);
    return AISLE_OK;
}

static int report_by_name(const void *a, const void *b) {
    return strcmp(((const exp_report_exp *)a)->name, ((const exp_report_exp *)b)->name);
}

int exp_report_compute(exp_report *r, int64_t until_ms, const exp_report_exp **out, size_t *n) {
    rwork w;
    report_results_free(r);
    int rc = report_work_new(r, &w);
    if (rc != AISLE_OK) goto fail;
    report_exposures(r, &w, until_ms);
    for (size_t i = 0; i < r->n_sig; i++)
        if (r->sig[i].ts <= until_ms) report_attribute(r, &w, &r->sig[i], NULL);
    r->res = calloc(r->n_defs ? r->n_defs : 1, sizeof(*r->res));
    if (!r->res) {
        rc = AISLE_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < r->n_defs && rc == AISLE_OK; i++) {
        rc = report_experiment(r, &w, i, &r->res[i]);
        r->n_res = i + 1;
    }
    if (rc != AISLE_OK) goto fail;
    qsort(r->res, r->n_res, sizeof(*r->res), report_by_name);
    report_work_free(r, &w);
    *out = r->res;
    *n = r->n_res;
    return AISLE_OK;
fail:
    report_work_free(r, &w);
    report_results_free(r);
    return rc;
}

static void report_pct(buf *b, double x, int sign) {
    if (isnan(x)) buf_puts(b, "n/a");
    else buf_printf(b, sign ? "%+.2f%%" : "%.2f%%", 100 * x);
}

static void report_p(buf *b, double p) {
    buf_printf(b, p < 0.0001 ? "<0.0001" : "%.4f", p < 0.0001 ? 0.0 : p);
}

static void report_srm_line(const exp_report_exp *e, buf *b) {
    buf_printf(b, "sample ratio: chi2 %.2f, p ", e->srm_chi2);
    report_p(b, e->srm_p);
    buf_puts(b, e->srm ? "  MISMATCH: the split is not the one expected; do not trust the results\n"
                       : "  (ok)\n");
}

void exp_report_text(const exp_report *r, buf *b) {
    buf_printf(b, "attribution window %.1f h; verdicts by the mSPRT always-valid p-value "
                  "(alpha %.3g, mixing lift %.3g), which stays valid when read daily\n",
               r->cfg.window_ms / 3600000.0, r->cfg.alpha, r->cfg.mixing_lift);
    for (size_t i = 0; i < r->n_res; i++) {
        const exp_report_exp *e = &r->res[i];
        uint64_t users = 0;
        for (size_t a = 0; a < e->n_arms; a++) users += e->arms[a].users;
        buf_printf(b, "\nexperiment %s: %zu variants, %llu users", e->name, e->n_arms,
                   (unsigned long long)users);
        if (e->mixed_users)
            buf_printf(b, " (%llu seen in several variants, counted in the first)",
                       (unsigned long long)e->mixed_users);
        buf_puts(b, "\n  ");
        report_srm_line(e, b);
        for (int k = 0; k < REPORT_OUTCOMES; k++) {
            buf_printf(b, "  %-12s %9s %9s %8s  %-11s%-20s  %s\n", report_outcome[k], "users",
                       "pages", "events", "rate", "[95% CI]", "lift vs control [95% CI], p-values");
            for (size_t a = 0; a < e->n_arms; a++) {
                const exp_report_arm *x = &e->arms[a];
                buf_printf(b, "  %-12s %9llu %9llu %8llu  ", x->variant,
                           (unsigned long long)x->users, (unsigned long long)x->pages,
                           (unsigned long long)x->events[k]);
                size_t at = b->len;
                report_pct(b, x->rate[k], 0);
                buf_printf(b, "%*s[", (int)(11 - (b->len - at)), "");
                report_pct(b, x->lo[k], 0);
                buf_puts(b, ", ");
                report_pct(b, x->hi[k], 0);
                buf_puts(b, "]");
                if (a == 0) {
                    buf_puts(b, "\n");
                    continue;
                }
                buf_printf(b, "  ");
                report_pct(b, x->lift[k], 1);
                buf_puts(b, " [");
                report_pct(b, x->lift_lo[k], 1);
                buf_puts(b, ", ");
                report_pct(b, x->lift_hi[k], 1);
                buf_puts(b, "]  p ");
                report_p(b, x->p_fixed[k]);
                buf_puts(b, "  p(seq) ");
                report_p(b, x->p_seq[k]);
                buf_puts(b, x->significant[k] ? "  significant\n" : "  not significant\n");
            }
        }
    }
}

/* An SVG of each arm's rate with its interval (bars and whiskers). */
static void report_svg_rates(const exp_report_exp *e, int k, buf *b) {
    double top = 0;
    for (size_t a = 0; a < e->n_arms; a++)
        if (!isnan(e->arms[a].hi[k]) && e->arms[a].hi[k] > top) top = e->arms[a].hi[k];
    if (top <= 0) top = 1;
    int w = 80 * (int)e->n_arms + 60, h = 220;
    buf_printf(b, "<svg width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s rate by variant\">",
               w, h, report_outcome[k]);
    buf_printf(b, "<line x1=\"40\" y1=\"190\" x2=\"%d\" y2=\"190\" stroke=\"#444\"/>", w - 10);
    for (size_t a = 0; a < e->n_arms; a++) {
        const exp_report_arm *x = &e->arms[a];
        if (isnan(x->rate[k])) continue;
        double y = 190 - 170 * x->rate[k] / top, ylo = 190 - 170 * x->lo[k] / top,
               yhi = 190 - 170 * x->hi[k] / top;
        int cx = 60 + 80 * (int)a;
        buf_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"40\" height=\"%.1f\" fill=\"%s\"/>",
                   cx - 20, y, 190 - y, a == 0 ? "#999" : "#3a7bd5");
        buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>", cx,
                   ylo, cx, yhi);
        buf_printf(b, "<text x=\"%d\" y=\"205\" font-size=\"11\" text-anchor=\"middle\">%s</text>",
                   cx, x->variant);
        buf_printf(
            b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.2f%%</text>",
            cx, yhi - 4, 100 * x->rate[k]);
    }
    buf_puts(b, "</svg>\n");
}

/* An SVG of each treatment's lift interval around zero (a forest plot). */
static void report_svg_lift(const exp_report_exp *e, int k, buf *b) {
    double span = 0.05;
    for (size_t a = 1; a < e->n_arms; a++) {
        const exp_report_arm *x = &e->arms[a];
        if (!isnan(x->lift_lo[k]) && fabs(x->lift_lo[k]) > span) span = fabs(x->lift_lo[k]);
        if (!isnan(x->lift_hi[k]) && fabs(x->lift_hi[k]) > span) span = fabs(x->lift_hi[k]);
    }
    int h = 30 * (int)e->n_arms + 30;
    buf_printf(b, "<svg width=\"420\" height=\"%d\" role=\"img\" aria-label=\"%s lift\">", h,
               report_outcome[k]);
    buf_printf(b, "<line x1=\"250\" y1=\"5\" x2=\"250\" y2=\"%d\" stroke=\"#999\" "
                  "stroke-dasharray=\"3\"/>", h - 20);
    buf_printf(b, "<text x=\"250\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">0</text>",
               h - 5);
    for (size_t a = 1; a < e->n_arms; a++) {
        const exp_report_arm *x = &e->arms[a];
        int y = 30 * (int)a;
        buf_printf(b, "<text x=\"5\" y=\"%d\" font-size=\"11\">%s</text>", y + 4, x->variant);
        if (isnan(x->lift[k])) continue;
        double lo = 250 + 160 * x->lift_lo[k] / span, hi = 250 + 160 * x->lift_hi[k] / span,
               mid = 250 + 160 * x->lift[k] / span;
        const char *color = x->significant[k] ? (x->lift[k] > 0 ? "#1a8f3c" : "#c0392b") : "#555";
        buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                      "stroke-width=\"2\"/>", lo, y, hi, y, color);
        buf_printf(b, "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", mid, y, color);
        buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\">%+.1f%%</text>", hi + 6, y + 4,
                   100 * x->lift[k]);
    }
    buf_puts(b, "</svg>\n");
}

void exp_report_html(const exp_report *r, buf *b) {
    buf_puts(b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Aisle experiment "
                "report</title><style>body{font-family:sans-serif;margin:2em}table{border-"
                "collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:"
                "right}th:first-child,td:first-child{text-align:left}.bad{color:#c0392b;font-"
                "weight:bold}</style></head><body>\n<h1>Experiment report</h1>\n<pre>");
    buf text = {0};
    exp_report_text(r, &text);
    for (const char *p = buf_str(&text); *p; p++) /* escape the names */
        if (*p == '<') buf_puts(b, "&lt;");
        else if (*p == '&') buf_puts(b, "&amp;");
        else buf_putc(b, *p);
    buf_free(&text);
    buf_puts(b, "</pre>\n");
    for (size_t i = 0; i < r->n_res; i++) {
        const exp_report_exp *e = &r->res[i];
        buf_printf(b, "<h2>%s</h2>\n", e->name);
        if (e->srm)
            buf_puts(b,
                     "<p class=\"bad\">Sample ratio mismatch: do not trust these results.</p>\n");
        for (int k = 0; k < REPORT_OUTCOMES; k++) {
            buf_printf(b, "<h3>%s: users with one, by variant; lift vs control</h3>\n",
                       report_outcome[k]);
            report_svg_rates(e, k, b);
            report_svg_lift(e, k, b);
        }
    }
    buf_puts(b, "</body></html>\n");
}

int exp_delim_write(FILE *f, const ProtobufCMessage *m) {
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t head[10], *body = malloc(len ? len : 1);
    if (!body) return AISLE_ENOMEM;
    protobuf_c_message_pack(m, body);
    size_t n = 0;
    for (size_t v = len; n == 0 || v; v >>= 7)
        head[n++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    int ok = fwrite(head, 1, n, f) == n && fwrite(body, 1, len, f) == len;
    free(body);
    return ok ? AISLE_OK : AISLE_EIO;
}

int exp_delim_read(FILE *f, buf *b) {
    uint64_t len = 0;
    int c = fgetc(f);
    buf_reset(b);
    if (c == EOF) return 0;
    for (int shift = 0;; shift += 7) {
        if (c == EOF || shift > 28) return AISLE_EFORMAT;
        len |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
        c = fgetc(f);
    }
    if (buf_reserve(b, len + 1) != AISLE_OK) return AISLE_ENOMEM;
    if (fread(b->data, 1, len, f) != len) return AISLE_EFORMAT;
    b->len = len;
    b->data[len] = 0;
    return 1;
}

int exp_report_outcomes(exp_report *r, int64_t until_ms, int8_t **grades, size_t *n) {
    rwork w;
    int8_t *g = malloc(r->n_ip ? r->n_ip : 1);
    int rc = g ? report_work_new(r, &w) : AISLE_ENOMEM;
    if (rc == AISLE_OK) {
        memset(g, -1, r->n_ip);
        report_exposures(r, &w, until_ms);
        for (size_t i = 0; i < r->n_sig; i++)
            if (r->sig[i].ts <= until_ms) report_attribute(r, &w, &r->sig[i], g);
    }
    if (g) report_work_free(r, &w);
    if (rc != AISLE_OK) {
        free(g);
        return rc;
    }
    *grades = g;
    *n = r->n_ip;
    return AISLE_OK;
}
