/* rank: candidate retrieval, filtering, scoring and reasons. */
#include "ranker/rank.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/strmap.h"

#define RANK_CREATOR_BOOST 0.05f
#define RANK_MAX_CANDIDATES 2000

/* Working state of one ranking call; everything here is freed by
 * rank_state_free. */
typedef struct rank_state {
    catalog *c;
    const profile *p;
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
    if (h->n_reasons == RANK_MAX_REASONS) return 0;
    va_start(ap, fmt);
    rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0) return -1;
    h->reasons[h->n_reasons++] = s;
    return 0;
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
        strmap_put(&st->taken, it->item_id, slot) != 0)
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
           strmap_get(&st->seen, it->item_id, &dummy) != 0 &&
           strmap_get(&st->taken, it->item_id, &dummy) != 0;
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
    const profile *p = st->p;
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
    const profile *p = st->p;
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

/* Personalized part: returns 0 (possibly adding nothing), -1 on failure.
 * A candidate's score is u·Q[j] + (Σ_i w_i·N_i(j) + b[j]) / Σ|w|, where u is
 * already divided by Σ|w|: the offline job's formula, scaled so scores read
 * the same whatever a profile's total weight. Candidates are the index's
 * top k by u·Q plus every neighbour of a profile item; with non-negative
 * neighbour weights nothing outside both can beat the k-th index hit. */
static int rank_personal(rank_state *st, char *err, size_t errlen) {
    const profile *p = st->p;
    int d = catalog_dim(st->c), k, n, rc = -1;
    double wsum = 0;
    size_t *slots = NULL, nlive = 0, *touched = NULL;
    float *scores = NULL, *ns = NULL;
    unsigned char *mark = NULL;
    rank_cand *cands = NULL;
    size_t ncands = 0;
    long ntouched;

    st->u = calloc((size_t)d, sizeof(float));
    st->pslots = malloc((p->n_items + 1) * sizeof(size_t));
    if (!st->u || !st->pslots) goto oom;
    for (size_t i = 0; i < p->n_items; i++) {
        size_t slot;
        st->pslots[i] = SIZE_MAX;
        if (catalog_lookup(st->c, p->items[i].id, &slot) != 0) continue;
        st->pslots[i] = slot;
        const float *v = catalog_query_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] += (float)p->items[i].weight * v[j];
        wsum += fabs(p->items[i].weight);
        nlive++;
    }
    /* Dismissed items push the user vector away from themselves. */
    for (size_t i = 0; i < p->n_dismissed; i++) {
        size_t slot;
        if (catalog_lookup(st->c, p->dismissed[i].id, &slot) != 0) continue;
        const float *v = catalog_query_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] -= (float)p->dismissed[i].weight * v[j];
        wsum += fabs(p->dismissed[i].weight);
    }
    if (nlive == 0 || wsum <= 0) return 0;
    for (int j = 0; j < d; j++) st->u[j] /= (float)wsum;

    k = (int)(st->cap + p->n_items + p->n_dismissed + p->n_seen + p->n_purchased + 16);
    /* A filter drops many neighbours; look further to keep the list full. */
    if (st->filter) k *= 8;
    if (k > RANK_MAX_CANDIDATES) k = RANK_MAX_CANDIDATES;
    if ((ntouched = rank_neighbour_scores(st, &ns, &mark, &touched)) < 0) goto oom;
    slots = malloc((size_t)k * sizeof(*slots));
    scores = malloc((size_t)k * sizeof(*scores));
    cands = malloc(((size_t)k + (size_t)ntouched) * sizeof(*cands));
    if (!slots || !scores || !cands) goto oom;
    n = catalog_search(st->c, st->u, k, slots, scores);
    if (n < 0) {
        snprintf(err, errlen, "vector search failed");
        goto out;
    }
    /* Index hits first (their u·Q is known), then neighbours not among
     * them; mark 2 = already a candidate. */
    for (long i = 0; i < n + ntouched; i++) {
        size_t j = i < n ? slots[i] : touched[i - n], ci;
        const catalog_item *it;
        rank_cand *cd;
        if (mark && mark[j] == 2) continue;
        if (mark) mark[j] = 2;
        if (!rank_eligible(st, j)) continue;
        it = catalog_at(st->c, j);
        cd = &cands[ncands++];
        cd->slot = j;
        cd->score = (i < n ? scores[i] : rank_dot(st->u, catalog_vector(st->c, j), d)) +
                    ((ns ? ns[j] : 0.0f) + catalog_bias(st->c, j)) / (float)wsum;
        cd->creator = -1;
        if (*it->creator_id && strmap_get(&st->creators, it->creator_id, &ci) == 0 &&
            p->creators[ci].weight > 0) {
            double top = p->creators[0].weight > 0 ? p->creators[0].weight : 1;
            cd->creator = (int)ci;
            cd->score += RANK_CREATOR_BOOST * (float)fmin(1.0, p->creators[ci].weight / top);
        }
    }
    qsort(cands, ncands, sizeof(*cands), rank_cand_cmp);
    for (size_t i = 0; i < ncands && st->out->n < st->cap; i++) {
        int because = rank_because(st, cands[i].slot);
        rank_hit *h = rank_push(st, cands[i].slot, cands[i].score);
        if (!h) goto oom;
        if (because >= 0) {
            const catalog_item *src = catalog_at(st->c, st->pslots[because]);
            if (rank_reason(h, "Similar to \"%s\", which you showed interest in",
                            *src->title ? src->title : src->item_id) != 0)
                goto oom;
        }
        if (cands[i].creator >= 0 &&
            rank_reason(h, "From %s, a creator you engage with",
                        p->creators[cands[i].creator].id) != 0)
            goto oom;
        if (h->n_reasons == 0 &&
            rank_reason(h, "Matches your recent interests in %s",
                        *h->item.category ? h->item.category : "the catalog") != 0)
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
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
 * needed), then from any in-stock items. Returns 0, -1 when out of memory,
 * or the popular callback's code. */
static int rank_fill(rank_state *st, const rank_request *req, char *err, size_t errlen) {
    profile_entry *popular = NULL;
    int n_popular = 0, rc = -1;
    double top;
    if (st->out->n < st->cap && req->popular) {
        n_popular = req->popular(req->popular_arg, &popular, err, errlen);
        if (n_popular < 0) return n_popular;
    }
    top = n_popular && popular[0].weight > 0 ? popular[0].weight : 1;
    for (int i = 0; i < n_popular && st->out->n < st->cap; i++) {
        size_t slot;
        rank_hit *h;
        if (catalog_lookup(st->c, popular[i].id, &slot) != 0 ||
            !rank_eligible(st, slot))
            continue;
        if (!(h = rank_push(st, slot, (float)(popular[i].weight / top) * 0.01f)) ||
            rank_reason(h, "Popular right now in %s",
                        *h->item.category ? h->item.category : "the shop") != 0)
            goto out;
    }
    for (size_t slot = 0; slot < catalog_slot_limit(st->c) && st->out->n < st->cap;
         slot++) {
        rank_hit *h;
        if (!rank_eligible(st, slot)) continue;
        if (!(h = rank_push(st, slot, 0.0f)) ||
            rank_reason(h, "In stock now in %s",
                        *h->item.category ? h->item.category : "the shop") != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc == -1) snprintf(err, errlen, "out of memory");
    profile_entries_free(popular, n_popular > 0 ? (size_t)n_popular : 0);
    return rc;
}

int rank_recommend(catalog *c, const rank_request *req, rank_result *out, char *err,
                   size_t errlen) {
    static const profile empty;
    const profile *p = req->profile ? req->profile : &empty;
    int limit = req->limit;
    rank_state st;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    memset(&st, 0, sizeof(st));
    st.c = c;
    st.p = p;
    st.filter = req->filter;
    st.out = out;
    st.cap = limit < 1 ? 1 : limit > RANK_MAX_LIMIT ? RANK_MAX_LIMIT : (size_t)limit;
    strmap_init(&st.seen);
    strmap_init(&st.creators);
    strmap_init(&st.taken);
    out->hits = calloc(st.cap, sizeof(rank_hit));
    if (!out->hits) goto oom;
    for (size_t i = 0; i < p->n_items; i++)
        if (strmap_put(&st.seen, p->items[i].id, i) != 0) goto oom;
    for (size_t i = 0; i < p->n_dismissed; i++)
        if (strmap_put(&st.seen, p->dismissed[i].id, i) != 0) goto oom;
    /* Seen and purchased sets outlast the weighted items (which are trimmed
     * by weight), so an old purchase is not offered again. */
    for (size_t i = 0; i < p->n_seen; i++)
        if (strmap_put(&st.seen, p->seen[i].id, i) != 0) goto oom;
    for (size_t i = 0; i < p->n_purchased; i++)
        if (strmap_put(&st.seen, p->purchased[i].id, i) != 0) goto oom;
    for (size_t i = 0; i < p->n_creators; i++)
        if (strmap_put(&st.creators, p->creators[i].id, i) != 0) goto oom;

    catalog_read_begin(c);
    rc = rank_personal(&st, err, errlen);
    if (rc == 0) rc = rank_fill(&st, req, err, errlen);
    catalog_read_end(c);
    if (rc != 0) goto fail;
    rank_state_free(&st);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    rank_state_free(&st);
    rank_result_free(out);
    return -1;
}
