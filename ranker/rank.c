/* rank: candidate retrieval, filtering, scoring and reasons. */
#include "ranker/rank.h"

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
    strmap seen;     /* profile item ids, dismissed ones too */
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

static float rank_dot(const float *a, const float *b, int d) {
    float s = 0;
    for (int i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

typedef struct rank_cand {
    size_t slot;
    float score;
    int because;  /* profile item index that explains it best */
    int creator;  /* index into p->creators, or -1 */
} rank_cand;

static int rank_cand_cmp(const void *a, const void *b) {
    const rank_cand *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

/* Personalized part: returns 0 (possibly adding nothing), -1 on failure. */
static int rank_personal(rank_state *st, char *err, size_t errlen) {
    const profile *p = st->p;
    int d = catalog_dim(st->c), k, n, rc = -1;
    double wsum = 0;
    size_t *slots = NULL, nlive = 0;
    float *scores = NULL;
    rank_cand *cands = NULL;
    size_t ncands = 0;

    st->u = calloc((size_t)d, sizeof(float));
    st->pslots = malloc((p->n_items + 1) * sizeof(size_t));
    if (!st->u || !st->pslots) goto oom;
    for (size_t i = 0; i < p->n_items; i++) {
        size_t slot;
        st->pslots[i] = SIZE_MAX;
        if (catalog_lookup(st->c, p->items[i].id, &slot) != 0) continue;
        st->pslots[i] = slot;
        const float *v = catalog_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] += (float)p->items[i].weight * v[j];
        wsum += fabs(p->items[i].weight);
        nlive++;
    }
    /* Dismissed items push the user vector away from themselves. */
    for (size_t i = 0; i < p->n_dismissed; i++) {
        size_t slot;
        if (catalog_lookup(st->c, p->dismissed[i].id, &slot) != 0) continue;
        const float *v = catalog_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] -= (float)p->dismissed[i].weight * v[j];
        wsum += fabs(p->dismissed[i].weight);
    }
    if (nlive == 0 || wsum <= 0) return 0;
    /* Scale so scores read the same whatever the profile's total weight. */
    for (int j = 0; j < d; j++) st->u[j] /= (float)wsum;

    k = (int)(st->cap + p->n_items + p->n_dismissed + 16);
    /* A filter drops many neighbours; look further to keep the list full. */
    if (st->filter) k *= 8;
    if (k > RANK_MAX_CANDIDATES) k = RANK_MAX_CANDIDATES;
    slots = malloc((size_t)k * sizeof(*slots));
    scores = malloc((size_t)k * sizeof(*scores));
    cands = malloc((size_t)k * sizeof(*cands));
    if (!slots || !scores || !cands) goto oom;
    n = catalog_search(st->c, st->u, k, slots, scores);
    if (n < 0) {
        snprintf(err, errlen, "vector search failed");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const catalog_item *it;
        rank_cand *cd;
        size_t ci;
        float best = -INFINITY;
        if (!rank_eligible(st, slots[i])) continue;
        it = catalog_at(st->c, slots[i]);
        cd = &cands[ncands++];
        cd->slot = slots[i];
        cd->score = scores[i];
        cd->because = -1;
        cd->creator = -1;
        if (*it->creator_id && strmap_get(&st->creators, it->creator_id, &ci) == 0 &&
            p->creators[ci].weight > 0) {
            double top = p->creators[0].weight > 0 ? p->creators[0].weight : 1;
            cd->creator = (int)ci;
            cd->score += RANK_CREATOR_BOOST * (float)fmin(1.0, p->creators[ci].weight / top);
        }
        for (size_t j = 0; j < p->n_items; j++) {
            float contrib;
            if (st->pslots[j] == SIZE_MAX || p->items[j].weight <= 0) continue;
            contrib = (float)p->items[j].weight *
                      rank_dot(catalog_vector(st->c, st->pslots[j]),
                               catalog_vector(st->c, slots[i]), d);
            if (contrib > best) {
                best = contrib;
                cd->because = (int)j;
            }
        }
    }
    qsort(cands, ncands, sizeof(*cands), rank_cand_cmp);
    for (size_t i = 0; i < ncands && st->out->n < st->cap; i++) {
        rank_hit *h = rank_push(st, cands[i].slot, cands[i].score);
        if (!h) goto oom;
        if (cands[i].because >= 0) {
            const catalog_item *src =
                catalog_at(st->c, st->pslots[cands[i].because]);
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
    return rc;
}

/* Fills the rest from the popular list, then from any in-stock items. */
static int rank_fill(rank_state *st, const profile_entry *popular,
                     size_t n_popular) {
    double top = n_popular ? popular[0].weight : 1;
    if (top <= 0) top = 1;
    for (size_t i = 0; i < n_popular && st->out->n < st->cap; i++) {
        size_t slot;
        rank_hit *h;
        if (catalog_lookup(st->c, popular[i].id, &slot) != 0 ||
            !rank_eligible(st, slot))
            continue;
        if (!(h = rank_push(st, slot, (float)(popular[i].weight / top) * 0.01f)))
            return -1;
        if (rank_reason(h, "Popular right now in %s",
                        *h->item.category ? h->item.category : "the shop") != 0)
            return -1;
    }
    for (size_t slot = 0; slot < catalog_slot_limit(st->c) && st->out->n < st->cap;
         slot++) {
        rank_hit *h;
        if (!rank_eligible(st, slot)) continue;
        if (!(h = rank_push(st, slot, 0.0f))) return -1;
        if (rank_reason(h, "In stock now in %s",
                        *h->item.category ? h->item.category : "the shop") != 0)
            return -1;
    }
    return 0;
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
    for (size_t i = 0; i < p->n_creators; i++)
        if (strmap_put(&st.creators, p->creators[i].id, i) != 0) goto oom;

    catalog_read_begin(c);
    rc = rank_personal(&st, err, errlen);
    if (rc == 0 && rank_fill(&st, req->popular, req->n_popular) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
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
