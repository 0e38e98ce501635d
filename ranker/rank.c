/* rank: candidate retrieval, filtering, scoring and reasons. */
#include "ranker/rank.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/strmap.h"

#define RANK_CREATOR_BOOST 0.05f
#define RANK_MAX_CANDIDATES 2000

/* Working state of one ranking call; everything here is freed by
 * rank_state_free. */
typedef struct rank_state {
    catalog *c;
    const rank_profile *p;
    const rank_filter *filter;
    strmap seen;     /* ids of profile, dismissed, seen and purchased items */
    strmap creators; /* creator id → index into p->creators */
    strmap taken;    /* item ids already in the result */
    size_t *pslots;  /* catalog slot of each profile item, or SIZE_MAX */
    float *u;        /* user vector */
    rank_result *out;
    size_t cap;
} rank_state;

static void rank_hit_clear(rank_hit *h) {
    free(h->item.item_id);
    free(h->item.title);
    free(h->item.creator_id);
    free(h->item.category);
    free(h->item.brand);
    for (int i = 0; i < h->n_reasons; i++) free(h->reasons[i]);
    memset(h, 0, sizeof(*h));
}

void rank_result_free(rank_result *r) {
    for (size_t i = 0; i < r->n; i++) rank_hit_clear(&r->hits[i]);
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

static void rank_state_free(rank_state *st) {
    strmap_free(&st->seen);
    strmap_free(&st->creators);
    strmap_free(&st->taken);
    free(st->pslots);
    free(st->u);
}

static int rank_reason(rank_hit *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int rank_reason(rank_hit *h, const char *fmt, ...) {
    va_list ap;
    char *s;
    int rc;
    if (h->n_reasons == RANK_MAX_REASONS) return AISLE_OK;
    va_start(ap, fmt);
    rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0) return AISLE_ENOMEM;
    h->reasons[h->n_reasons++] = s;
    return AISLE_OK;
}

/* Appends the item in slot with score; the caller adds reasons to the
 * returned hit. NULL when out of memory. */
static rank_hit *rank_push(rank_state *st, size_t slot, float score) {
    const catalog_item *it = catalog_at(st->c, slot);
    rank_hit *h = &st->out->hits[st->out->n];
    h->item.item_id = strdup(it->item_id);
    h->item.title = strdup(it->title);
    h->item.creator_id = strdup(it->creator_id);
    h->item.category = strdup(it->category);
    h->item.brand = strdup(it->brand);
    h->item.price_cents = it->price_cents;
    h->item.in_stock = it->in_stock;
    h->score = score;
    st->out->n++;
    if (!h->item.item_id || !h->item.title || !h->item.creator_id ||
        !h->item.category || !h->item.brand ||
        strmap_put(&st->taken, it->item_id, strlen(it->item_id), slot) != 0)
        return NULL;
    return h;
}

static int rank_field_is(const char *want, const char *have) {
    return !want || !*want || strcmp(want, have) == 0;
}

int rank_filter_pass(const rank_filter *f, const catalog_item *it) {
    if (!f) return 1;
    for (size_t i = 0; i < f->n_exclude_categories; i++)
        if (strcmp(f->exclude_categories[i], it->category) == 0) return 0;
    return (f->max_price_cents <= 0 || it->price_cents <= f->max_price_cents) &&
           (f->min_price_cents <= 0 || it->price_cents >= f->min_price_cents) &&
           rank_field_is(f->category, it->category) && rank_field_is(f->brand, it->brand) &&
           rank_field_is(f->creator_id, it->creator_id);
}

/* Whether slot may be recommended at all. */
static int rank_eligible(rank_state *st, size_t slot) {
    const catalog_item *it = catalog_at(st->c, slot);
    size_t dummy;
    return it && it->in_stock && rank_filter_pass(st->filter, it) &&
           strmap_get(&st->seen, it->item_id, strlen(it->item_id), &dummy) != 0 &&
           strmap_get(&st->taken, it->item_id, strlen(it->item_id), &dummy) != 0;
}

/* OpenBLAS's dot has SIMD kernels; learned vectors run to 512 floats. */
static float rank_dot(const float *a, const float *b, int d) {
    return cblas_sdot(d, a, 1, b, 1);
}

typedef struct rank_cand {
    size_t slot;
    float score;
    int creator; /* index into p->creators, or -1 */
} rank_cand;

static int rank_cand_cmp(const void *a, const void *b) {
    const rank_cand *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

/* Weight of j in slot's neighbour list, 0 when absent. */
static float rank_neighbour_weight(const catalog *c, size_t slot, size_t j) {
    const uint32_t *nb;
    const float *w;
    size_t n;
    catalog_neighbours(c, slot, &nb, &w, &n);
    for (size_t e = 0; e < n; e++)
        if (nb[e] == j) return w[e];
    return 0.0f;
}

/* The profile item that contributes most to j's score, or -1. */
static int rank_because(const rank_state *st, size_t j) {
    const rank_profile *p = st->p;
    int d = catalog_dim(st->c), best_i = -1;
    float best = -INFINITY;
    for (size_t i = 0; i < p->n_items; i++) {
        float contrib;
        if (st->pslots[i] == SIZE_MAX || p->items[i].weight <= 0) continue;
        contrib = (float)p->items[i].weight *
                  (rank_dot(catalog_query_vector(st->c, st->pslots[i]),
                            catalog_vector(st->c, j), d) +
                   rank_neighbour_weight(st->c, st->pslots[i], j));
        if (contrib > best) {
            best = contrib;
            best_i = (int)i;
        }
    }
    return best_i;
}

/* Adds Σ_i w_i·N_i(j) for every j in the profile items' neighbour lists
 * into ns (dense by slot); each slot touched is listed once in *touched.
 * Returns the number touched, or -1 when out of memory. The caller frees
 * *ns, *mark and *touched. */
static long rank_neighbour_scores(const rank_state *st, float **ns, unsigned char **mark,
                                  size_t **touched) {
    const rank_profile *p = st->p;
    size_t limit = catalog_slot_limit(st->c), n = 0, cap = 0;
    *ns = NULL;
    *mark = NULL;
    *touched = NULL;
    for (size_t i = 0; i < p->n_items; i++) {
        const uint32_t *nb;
        const float *w;
        size_t m;
        if (st->pslots[i] == SIZE_MAX) continue;
        catalog_neighbours(st->c, st->pslots[i], &nb, &w, &m);
        for (size_t e = 0; e < m; e++) {
            size_t j = nb[e];
            if (j >= limit) continue;
            if (!*ns) {
                *ns = calloc(limit, sizeof(float));
                *mark = calloc(limit, 1);
                if (!*ns || !*mark) return -1;
            }
            if (!(*mark)[j]) {
                if (n == cap) {
                    size_t *t = realloc(*touched, (cap = cap ? cap * 2 : 1024) * sizeof(size_t));
                    if (!t) return -1;
                    *touched = t;
                }
                (*touched)[n++] = j;
                (*mark)[j] = 1;
            }
            (*ns)[j] += (float)p->items[i].weight * w[e];
        }
    }
    return (long)n;
}

/* u = (Σ_i w_i·P[i] − Σ_d w_d·P[d]) / Σ|w| over the profile's items and
 * dismissed items, recording each profile item's slot in st->pslots.
 * Sets *wsum to Σ|w| and returns how many profile items the catalog knows,
 * or AISLE_ENOMEM. */
static long rank_user_vector(rank_state *st, double *wsum) {
    const rank_profile *p = st->p;
    int d = catalog_dim(st->c);
    long nlive = 0;
    *wsum = 0;
    st->u = calloc((size_t)d, sizeof(float));
    st->pslots = malloc((p->n_items + 1) * sizeof(size_t));
    if (!st->u || !st->pslots) return AISLE_ENOMEM;
    for (size_t i = 0; i < p->n_items; i++) {
        size_t slot;
        st->pslots[i] = SIZE_MAX;
        if (catalog_lookup(st->c, p->items[i].id, &slot) != AISLE_OK) continue;
        st->pslots[i] = slot;
        const float *v = catalog_query_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] += (float)p->items[i].weight * v[j];
        *wsum += fabs(p->items[i].weight);
        nlive++;
    }
    /* Dismissed items push the user vector away from themselves. */
    for (size_t i = 0; i < p->n_dismissed; i++) {
        size_t slot;
        if (catalog_lookup(st->c, p->dismissed[i].id, &slot) != AISLE_OK) continue;
        const float *v = catalog_query_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] -= (float)p->dismissed[i].weight * v[j];
        *wsum += fabs(p->dismissed[i].weight);
    }
    if (nlive > 0 && *wsum > 0)
        for (int j = 0; j < d; j++) st->u[j] /= (float)*wsum;
    return nlive;
}

/* How many index hits to ask for: enough for the page plus everything the
 * profile will exclude, more when a request filter drops many. */
static int rank_search_depth(const rank_state *st) {
    const rank_profile *p = st->p;
    size_t k = st->cap + p->n_items + p->n_dismissed + p->n_seen + p->n_purchased + 16;
    if (st->filter) k *= 8;
    return k > RANK_MAX_CANDIDATES ? RANK_MAX_CANDIDATES : (int)k;
}

/* The creator boost of item it: a share of RANK_CREATOR_BOOST by how much
 * the user engages with its creator; sets *creator to the profile index. */
static float rank_creator_boost(const rank_state *st, const catalog_item *it, int *creator) {
    const rank_profile *p = st->p;
    size_t ci;
    double top;
    *creator = -1;
    if (!*it->creator_id ||
        strmap_get(&st->creators, it->creator_id, strlen(it->creator_id), &ci) != AISLE_OK ||
        p->creators[ci].weight <= 0)
        return 0.0f;
    top = p->creators[0].weight > 0 ? p->creators[0].weight : 1;
    *creator = (int)ci;
    return RANK_CREATOR_BOOST * (float)fmin(1.0, p->creators[ci].weight / top);
}

/* Eligible candidates with their scores: the n index hits (slots, scores)
 * first, then the neighbour-list slots not among them. mark (may be NULL)
 * is dense by slot; 2 means "already a candidate". Returns the count. */
static size_t rank_candidates(rank_state *st, const size_t *slots, const float *scores,
                              int n, const size_t *touched, long ntouched, const float *ns,
                              unsigned char *mark, double wsum, rank_cand *cands) {
    int d = catalog_dim(st->c);
    size_t ncands = 0;
    for (long i = 0; i < n + ntouched; i++) {
        size_t j = i < n ? slots[i] : touched[i - n];
        rank_cand *cd;
        if (mark && mark[j] == 2) continue;
        if (mark) mark[j] = 2;
        if (!rank_eligible(st, j)) continue;
        cd = &cands[ncands++];
        cd->slot = j;
        cd->score = (i < n ? scores[i] : rank_dot(st->u, catalog_vector(st->c, j), d)) +
                    ((ns ? ns[j] : 0.0f) + catalog_bias(st->c, j)) / (float)wsum;
        cd->score += rank_creator_boost(st, catalog_at(st->c, j), &cd->creator);
    }
    return ncands;
}

/* Appends cand to the result with the reasons that explain it. */
static int rank_explain(rank_state *st, const rank_cand *cand) {
    int because = rank_because(st, cand->slot);
    rank_hit *h = rank_push(st, cand->slot, cand->score);
    if (!h) return AISLE_ENOMEM;
    if (because >= 0) {
        const catalog_item *src = catalog_at(st->c, st->pslots[because]);
        if (rank_reason(h, "Similar to \"%s\", which you showed interest in",
                        *src->title ? src->title : src->item_id) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    if (cand->creator >= 0 &&
        rank_reason(h, "From %s, a creator you engage with",
                    st->p->creators[cand->creator].id) != AISLE_OK)
        return AISLE_ENOMEM;
    if (h->n_reasons == 0 &&
        rank_reason(h, "Matches your recent interests in %s",
                    *h->item.category ? h->item.category : "the catalog") != AISLE_OK)
        return AISLE_ENOMEM;
    return AISLE_OK;
}

/* Personalized part (possibly adding nothing). A candidate's score is
 * u·Q[j] + (Σ_i w_i·N_i(j) + b[j]) / Σ|w|, where u is already divided by
 * Σ|w|: the offline job's formula, scaled so scores read the same whatever
 * a profile's total weight. Candidates are the index's top k by u·Q plus
 * every neighbour of a profile item; with non-negative neighbour weights
 * nothing outside both can beat the k-th index hit. */
static int rank_personal(rank_state *st, char *err, size_t errlen) {
    int k, n, rc = AISLE_ENOMEM;
    double wsum;
    size_t *slots = NULL, *touched = NULL, ncands;
    float *scores = NULL, *ns = NULL;
    unsigned char *mark = NULL;
    rank_cand *cands = NULL;
    long nlive, ntouched;

    if ((nlive = rank_user_vector(st, &wsum)) < 0) goto fail;
    if (nlive == 0 || wsum <= 0) return AISLE_OK;
    k = rank_search_depth(st);
    if ((ntouched = rank_neighbour_scores(st, &ns, &mark, &touched)) < 0) goto fail;
    slots = malloc((size_t)k * sizeof(*slots));
    scores = malloc((size_t)k * sizeof(*scores));
    cands = malloc(((size_t)k + (size_t)ntouched) * sizeof(*cands));
    if (!slots || !scores || !cands) goto fail;
    if ((n = catalog_search(st->c, st->u, k, slots, scores)) < 0) {
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "vector search failed");
        goto out;
    }
    ncands = rank_candidates(st, slots, scores, n, touched, ntouched, ns, mark, wsum, cands);
    qsort(cands, ncands, sizeof(*cands), rank_cand_cmp);
    for (size_t i = 0; i < ncands && st->out->n < st->cap; i++)
        if (rank_explain(st, &cands[i]) != AISLE_OK) goto fail;
    rc = AISLE_OK;
    goto out;
fail:
    status_fmt(err, errlen, "out of memory");
out:
    free(slots);
    free(scores);
    free(cands);
    free(ns);
    free(mark);
    free(touched);
    return rc;
}

/* Fills the rest from the popular list (fetched only now that it is
 * needed), then from any in-stock items. Returns AISLE_OK, AISLE_ENOMEM,
 * or the popular callback's code. */
static int rank_fill(rank_state *st, const rank_request *req, char *err, size_t errlen) {
    const rank_entry *popular = NULL;
    size_t n_popular = 0;
    double top;
    int rc;
    if (st->out->n < st->cap && req->popular &&
        (rc = req->popular(req->popular_arg, &popular, &n_popular, err, errlen)) != AISLE_OK)
        return rc;
    top = n_popular && popular[0].weight > 0 ? popular[0].weight : 1;
    for (size_t i = 0; i < n_popular && st->out->n < st->cap; i++) {
        size_t slot;
        rank_hit *h;
        if (catalog_lookup(st->c, popular[i].id, &slot) != AISLE_OK ||
            !rank_eligible(st, slot))
            continue;
        if (!(h = rank_push(st, slot, (float)(popular[i].weight / top) * 0.01f)) ||
            rank_reason(h, "Popular right now in %s",
                        *h->item.category ? h->item.category : "the shop") != AISLE_OK)
            goto oom;
    }
    for (size_t slot = 0; slot < catalog_slot_limit(st->c) && st->out->n < st->cap;
         slot++) {
        rank_hit *h;
        if (!rank_eligible(st, slot)) continue;
        if (!(h = rank_push(st, slot, 0.0f)) ||
            rank_reason(h, "In stock now in %s",
                        *h->item.category ? h->item.category : "the shop") != AISLE_OK)
            goto oom;
    }
    return AISLE_OK;
oom:
    return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
}

/* Indexes the ids a result must leave out (the profile's items, dismissed,
 * seen and purchased) and the creators the user engages with. */
static int rank_index_profile(rank_state *st) {
    const rank_profile *p = st->p;
    const struct {
        const rank_entry *e;
        size_t n;
    } left_out[] = {{p->items, p->n_items},
                    {p->dismissed, p->n_dismissed},
                    /* Seen and purchased sets outlast the weighted items
                     * (trimmed by weight): an old purchase is not offered. */
                    {p->seen, p->n_seen},
                    {p->purchased, p->n_purchased}};
    for (size_t k = 0; k < sizeof(left_out) / sizeof(left_out[0]); k++)
        for (size_t i = 0; i < left_out[k].n; i++)
            if (strmap_put(&st->seen, left_out[k].e[i].id, strlen(left_out[k].e[i].id), i))
                return AISLE_ENOMEM;
    for (size_t i = 0; i < p->n_creators; i++)
        if (strmap_put(&st->creators, p->creators[i].id, strlen(p->creators[i].id), i))
            return AISLE_ENOMEM;
    return AISLE_OK;
}

int rank_recommend(catalog *c, const rank_request *req, rank_result *out, char *err,
                   size_t errlen) {
    static const rank_profile empty;
    rank_state st;
    int limit = req->limit, rc;

    memset(out, 0, sizeof(*out));
    memset(&st, 0, sizeof(st));
    st.c = c;
    st.p = req->profile ? req->profile : &empty;
    st.filter = req->filter;
    st.out = out;
    st.cap = limit < 1 ? 1 : limit > RANK_MAX_LIMIT ? RANK_MAX_LIMIT : (size_t)limit;
    out->hits = calloc(st.cap, sizeof(rank_hit));
    if (!out->hits || rank_index_profile(&st) != AISLE_OK) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    catalog_read_begin(c);
    rc = rank_personal(&st, err, errlen);
    if (rc == AISLE_OK) rc = rank_fill(&st, req, err, errlen);
    catalog_read_end(c);
    if (rc != AISLE_OK) goto fail;
    assert(out->n <= st.cap);
    rank_state_free(&st);
    return AISLE_OK;
fail:
    rank_state_free(&st);
    rank_result_free(out);
    return rc;
}
