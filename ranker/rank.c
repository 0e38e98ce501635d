/* rank: sources into one candidate pool, features, selection, reasons. */
#include "ranker/rank.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/lexical.h"
#include "ranker/rank_state.h"
#include "ranker/scratch.h"
#include "ranker/snapscore.h"
#include "retrieval/vec.h"
#include "services/base/grow.h"
#include "services/base/strmap.h"

#define RANK_CREATOR_BOOST 0.05f
#define RANK_MAX_CANDIDATES 2000
#define RANK_TOP_CREATORS 5   /* engaged creators the creators source draws from */
#define RANK_TOP_FOLLOWS 5    /* followed creators it draws from besides, newest follows first */
#define RANK_CREATOR_SCAN 5000 /* newest slots it looks through */
#define RANK_QUOTE 60         /* longest query quoted in a reason */
/* The surfaces' seed_nprobe: item queries find 0.96 of their 51 nearest
 * in 8 of the synthetic shop's 512 lists, at 0.57 of the 32 lists' CPU
 * (bench/recommend/index), for a source weighted 0.05 or 0.1. */
#define RANK_SEED_NPROBE 8

/* How slots are marked in rank_state.marks: the profile's ids by kind,
 * and the items already in the result. */
enum {
    RANK_IN_ITEMS = 1,
    RANK_IN_DISMISSED = 2,
    RANK_IN_SEEN = 4,
    RANK_IN_PURCHASED = 8,
    RANK_TAKEN = 16,
    RANK_EXCLUDED = 32 /* the request's exclude_item_ids */
};

static const char *const rank_source_names[RANK_SRC_COUNT] = {
    "profile", "neighbours", "creators", "popular", "query", "query_vector", "context", "fill",
    "trending", "featured"};

const char *rank_source_name(int source) {
    assert(source >= 0 && source < RANK_SRC_COUNT);
    return rank_source_names[source];
}

/* Budgets and weights by source, in enum order. What the caller asks for
 * in the request (words, a vector, a context item) outweighs the profile's
 * guess: a full-strength match adds 2, a perfect personal score about 1.
 * The exact settings keep
 * the ranker the quality bench measures: profile and neighbours only (the
 * request's own sources when it sets them), raw scores, no MMR, no caps. */
static const rank_settings rank_surfaces[] = {
    {.name = "",
     .budget = {0, 0, 0, 0, 200, 200, 200, 0},
     .weight = {1, 0, 0, 0, 2, 2, 2, 0},
     .mmr_lambda = 1,
     .context_phrase = "Similar to \"%s\", the product you are looking at"},
    {.name = "home",
     .budget = {200, 100, 50, 100, 200, 200, 100, 0, [RANK_SRC_TRENDING] = 60},
     .weight = {1, 0.05f, 0.1f, 0.1f, 2, 2, 1, 0, [RANK_SRC_TRENDING] = 0.1f},
     .w_category = 0.05f,
     .w_brand = 0.03f,
     .mmr_lambda = 0.5f,
     .cap_creator = 3,
     .cap_brand = 3,
     .seed_nprobe = RANK_SEED_NPROBE,
     .context_phrase = "Similar to \"%s\", the product you are looking at"},
    {.name = "product_page",
     .budget = {100, 50, 20, 50, 200, 200, 300, 0, [RANK_SRC_TRENDING] = 30},
     .weight = {0.5f, 0.05f, 0.05f, 0.05f, 2, 2, 2, 0, [RANK_SRC_TRENDING] = 0.05f},
     .w_category = 0.02f,
     .mmr_lambda = 0.75f,
     .cap_creator = 4,
     .seed_nprobe = RANK_SEED_NPROBE,
     .context_phrase = "Similar to \"%s\", the product you are looking at"},
    {.name = "cart",
     .budget = {100, 100, 20, 50, 200, 200, 300, 0, [RANK_SRC_TRENDING] = 30},
     .weight = {0.5f, 0.1f, 0.05f, 0.1f, 2, 2, 2, 0, [RANK_SRC_TRENDING] = 0.1f},
     .w_brand = 0.05f,
     .mmr_lambda = 0.5f,
     .cap_creator = 2,
     .seed_nprobe = RANK_SEED_NPROBE,
     .context_phrase = "Goes with \"%s\" in your cart"},
    {.name = "similar",
     .budget = {0, 0, 0, 0, 200, 200, 400, 0},
     .weight = {0.2f, 0, 0, 0, 2, 2, 2, 0},
     .mmr_lambda = 0.85f,
     .context_phrase = "Like \"%s\""},
};

const rank_settings *rank_surface(const char *name) {
    for (size_t i = 0; i < sizeof(rank_surfaces) / sizeof(rank_surfaces[0]); i++)
        if (strcmp(rank_surfaces[i].name, name ? name : "") == 0) return &rank_surfaces[i];
    return NULL;
}

uint32_t rank_item_hash(const char *item_id) {
    return (uint32_t)strmap_hash(item_id, strlen(item_id));
}

static void rank_keyfilter_free(rank_keyfilter *kf) {
    for (int k = 0; k < RANK_KF_KINDS; k++) {
        free(kf->in[k]);
        free(kf->out[k]);
    }
}
/* Sorts the pool best first, as a stable sort of the candidates would. */
static int rank_sort_pool(rank_state *st) {
    /* A score and a place in the pool (vec_hit's id), so sorting moves
     * eight bytes rather than a candidate; equal scores keep their pool
     * order, as a stable sort would. */
    vec_hit *order = malloc((st->npool + 1) * sizeof(*order));
    rank_cand *sorted = malloc((st->poolcap + 1) * sizeof(*sorted));
    if (!order || !sorted) {
        free(order);
        free(sorted);
        return AISLE_ENOMEM;
    }
    for (size_t i = 0; i < st->npool; i++)
        order[i] = (vec_hit){st->pool[i].score, (uint32_t)i};
    vec_hits_sort(order, st->npool);
    for (size_t i = 0; i < st->npool; i++) sorted[i] = st->pool[order[i].id];
    free(st->pool);
    st->pool = sorted;
    free(order);
    return AISLE_OK;
}

static int rank_cand_cmp(const void *a, const void *b) {
    const rank_cand *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

static void rank_hit_clear(rank_hit *h) {
    free(h->item.item_id);
    free(h->item.title);
    free(h->item.creator_id);
    free(h->item.category);
    free(h->item.brand);
    free(h->item.creator_name);
    for (int i = 0; i < h->n_reasons; i++) free(h->reasons[i]);
    memset(h, 0, sizeof(*h));
}

void rank_result_free(rank_result *r) {
    for (size_t i = 0; i < r->n; i++) rank_hit_clear(&r->hits[i]);
    free(r->hits);
    for (size_t i = 0; i < r->n_creators; i++) {
        free(r->creators[i].id);
        free(r->creators[i].name);
    }
    free(r->creators);
    memset(r, 0, sizeof(*r));
}

static void rank_state_free(rank_state *st) {
    free(st->marks.keys);
    free(st->marks.vals);
    rank_slotmap *maps[] = {&st->creators, &st->categories, &st->brands, &st->followed};
    for (size_t k = 0; k < sizeof(maps) / sizeof(maps[0]); k++) {
        free(maps[k]->keys);
        free(maps[k]->vals);
    }
    rank_keyfilter_free(&st->kf);
    free(st->pslots);
    free(st->u);
    snapscore_release(st);
    free(st->lex);
    for (size_t i = 0; i < st->n_planned; i++) {
        free(st->planned[i].slots);
        free(st->planned[i].scores);
    }
    free(st->at.keys);
    free(st->at.vals);
    free(st->pool);
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

static size_t rank_slotmap_home(size_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) & (cap - 1));
}

/* slot's value in m, or NULL when absent. */
static uint32_t *rank_slotmap_find(const rank_slotmap *m, size_t slot) {
    for (size_t i = m->cap ? rank_slotmap_home(slot + 1, m->cap) : 0; m->cap && m->keys[i];
         i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == slot + 1) return &m->vals[i];
    return NULL;
}

/* The value of slot in m, 0 when absent. */
static uint32_t rank_slotmap_get(const rank_slotmap *m, size_t slot) {
    const uint32_t *v = rank_slotmap_find(m, slot);
    return v ? *v : 0;
}

/* Sizes the empty map m for n entries, so that filling it never rehashes.
 * AISLE_OK, or AISLE_ENOMEM with m still empty. */
static int rank_slotmap_reserve(rank_slotmap *m, size_t n) {
    size_t cap = 256;
    assert(m->cap == 0);
    while (cap < 2 * (n + 1)) cap *= 2;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = malloc(cap * sizeof(*m->vals));
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return AISLE_ENOMEM;
    }
    m->cap = cap;
    return AISLE_OK;
}

/* The value of slot in m, inserting 0 when absent; NULL when out of
 * memory. */
static uint32_t *rank_slotmap_at(rank_slotmap *m, size_t slot) {
    size_t mask, i;
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        size_t *keys = calloc(cap, sizeof(*keys));
        uint32_t *vals = malloc(cap * sizeof(*vals));
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return NULL;
        }
        for (size_t j = 0; j < m->cap; j++) {
            if (!m->keys[j]) continue;
            for (i = rank_slotmap_home(m->keys[j], cap); keys[i]; i = (i + 1) & (cap - 1))
                ;
            keys[i] = m->keys[j];
            vals[i] = m->vals[j];
        }
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = cap;
    }
    mask = m->cap - 1;
    for (i = rank_slotmap_home(slot + 1, m->cap); m->keys[i]; i = (i + 1) & mask)
        if (m->keys[i] == slot + 1) return &m->vals[i];
    m->keys[i] = slot + 1;
    m->vals[i] = 0;
    m->n++;
    return &m->vals[i];
}

/* Appends the item in slot with score and features f (copied); the caller
 * adds reasons to the returned hit. NULL when out of memory. */
static rank_hit *rank_push(rank_state *st, size_t slot, float score, unsigned sources,
                           const float *f) {
    const catalog_item *it = catalog_at(st->c, slot);
    rank_hit *h = &st->out->hits[st->out->n];
    uint32_t *mark;
    h->item.item_id = strdup(it->item_id);
    h->item.title = strdup(it->title);
    h->item.creator_id = strdup(it->creator_id);
    h->item.category = strdup(it->category);
    h->item.brand = strdup(it->brand);
    h->item.creator_name = strdup(it->creator_name);
    h->item.price_cents = it->price_cents;
    h->item.in_stock = it->in_stock;
    h->score = score;
    h->sources = sources;
    memcpy(h->features, f, sizeof(h->features));
    for (int s = 0; s < RANK_SRC_COUNT; s++)
        if (sources & 1u << s) h->source_names[h->n_sources++] = rank_source_names[s];
    st->out->n++;
    if (!h->item.item_id || !h->item.title || !h->item.creator_id ||
        !h->item.category || !h->item.brand || !h->item.creator_name ||
        !(mark = rank_slotmap_at(&st->marks, slot)))
        return NULL;
    *mark |= RANK_TAKEN;
    return h;
}

/* Ascending uint32_t: catalog keys, and the page-token hashes of served items. */
static int rank_u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Whether key is in the sorted list of n. A few keys (a shopper's filter
 * names one or two) are compared in turn: every candidate's eligibility
 * test asks, and a call of bsearch with its comparator costs more. */
static int rank_key_in(const uint32_t *list, size_t n, uint32_t key) {
    if (n <= 8) {
        for (size_t i = 0; i < n; i++)
            if (list[i] == key) return 1;
        return 0;
    }
    return bsearch(&key, list, n, sizeof(key), rank_u32_cmp) != NULL;
}

/* names[0..n) as sorted catalog keys into *out (owned); a name no item has
 * had becomes CATALOG_NO_KEY, which matches nothing. AISLE_ENOMEM. */
static int rank_keys(const catalog *c, const char *const *names, size_t n, uint32_t **out) {
    *out = NULL;
    if (!n) return AISLE_OK;
    if (!(*out = malloc(n * sizeof(**out)))) return AISLE_ENOMEM;
    for (size_t i = 0; i < n; i++) (*out)[i] = catalog_key(c, names[i]);
    qsort(*out, n, sizeof(**out), rank_u32_cmp);
    return AISLE_OK;
}

/* Resolves f's strings into kf (catalog read lock held). */
static int rank_keyfilter_init(const catalog *c, const rank_filter *f, rank_keyfilter *kf) {
    memset(kf, 0, sizeof(*kf));
    kf->f = f;
    if (!f) return AISLE_OK;
    const char *one[RANK_KF_KINDS] = {f->category, f->brand, f->creator_id};
    const char *const *in[RANK_KF_KINDS] = {f->categories, f->brands, f->creators};
    const size_t n_in[RANK_KF_KINDS] = {f->n_categories, f->n_brands, f->n_creators};
    const char *const *out[RANK_KF_KINDS] = {f->exclude_categories, f->exclude_brands,
                                             f->exclude_creators};
    const size_t n_out[RANK_KF_KINDS] = {f->n_exclude_categories, f->n_exclude_brands,
                                         f->n_exclude_creators};
    for (int k = 0; k < RANK_KF_KINDS; k++) {
        kf->one[k] = catalog_key(c, one[k]);
        kf->n_in[k] = n_in[k];
        kf->n_out[k] = n_out[k];
        if (rank_keys(c, in[k], n_in[k], &kf->in[k]) != AISLE_OK ||
            rank_keys(c, out[k], n_out[k], &kf->out[k]) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    return AISLE_OK;
}

/* Whether the item (it, with keys fc) passes the request's filter: prices,
 * the single fields, the include lists, the exclude lists. Stock and the
 * excluded item ids are rank_eligible's. */
static int rank_keyfilter_pass(const rank_keyfilter *kf, const catalog_facets *fc) {
    const rank_filter *f = kf->f;
    const uint32_t have[RANK_KF_KINDS] = {fc->category, fc->brand, fc->creator};
    if (!f) return 1;
    if ((f->max_price_cents > 0 && fc->price_cents > f->max_price_cents) ||
        (f->min_price_cents > 0 && fc->price_cents < f->min_price_cents))
        return 0;
    for (int k = 0; k < RANK_KF_KINDS; k++)
        if ((kf->one[k] && kf->one[k] != have[k]) ||
            (kf->n_in[k] && !rank_key_in(kf->in[k], kf->n_in[k], have[k])) ||
            rank_key_in(kf->out[k], kf->n_out[k], have[k]))
            return 0;
    return 1;
}

/* Whether slot may be recommended at all: every source and the fill go
 * through here, so no path lets an excluded item through. It reads the
 * slot's packed facets, not the item table: one cache line a candidate. */
int rank_eligible(rank_state *st, size_t slot) {
    const catalog_facets *fc;
    uint32_t h;
    if (slot >= catalog_slot_limit(st->c)) return 0;
    fc = catalog_facets_at(st->c, slot);
    /* The filter, which reads only the facets, before the marks' map: in a
     * filtered search most of the rows asked about fail it. */
    if (!fc->live || (!fc->in_stock && !(st->filter && st->filter->include_out_of_stock)) ||
        slot == st->ctx || (st->lex && st->lex[slot] <= 0) ||
        !rank_keyfilter_pass(&st->kf, fc) || rank_slotmap_get(&st->marks, slot))
        return 0;
    if (!st->req->n_served) return 1;
    h = rank_item_hash(catalog_at(st->c, slot)->item_id);
    return !bsearch(&h, st->req->served, st->req->n_served, sizeof(h), rank_u32_cmp);
}

/* SIMD kernels (retrieval/vec.h); learned vectors run to 512 floats. */
static float rank_dot(const float *a, const float *b, int d) { return vec_dot(a, b, d); }

/* Offers slot to the pool from source src with score. Returns 1 when the
 * item is (now or already) a candidate, 0 when it is not eligible, or
 * AISLE_ENOMEM. */
int rank_offer(rank_state *st, size_t slot, int src, float score) {
    rank_cand *cd;
    uint32_t *at;
    if (slot >= catalog_slot_limit(st->c)) return 0;
    if (!(at = rank_slotmap_at(&st->at, slot))) return AISLE_ENOMEM;
    if (*at == UINT32_MAX) return 0;
    if (!*at) {
        if (!rank_eligible(st, slot)) {
            *at = UINT32_MAX;
            return 0;
        }
        if (GROW_ROOM(st->pool, st->npool, st->poolcap, 256)) return AISLE_ENOMEM;
        cd = &st->pool[st->npool++];
        memset(cd, 0, sizeof(*cd));
        cd->slot = slot;
        cd->search = NAN;
        cd->creator = -1;
        *at = (uint32_t)st->npool;
    }
    cd = &st->pool[*at - 1];
    if (!(cd->sources & 1u << src) || score > cd->raw[src]) cd->raw[src] = score;
    cd->sources |= 1u << src;
    return 1;
}

/* The planned search of q at depth k, or NULL. */
static const catalog_query *rank_planned(const rank_state *st, const float *q, int k) {
    for (size_t i = 0; i < st->n_planned; i++)
        if (st->planned[i].q == q && st->planned[i].k == k) return &st->planned[i];
    return NULL;
}

/* Whether slot may be a hit of a filtered search (catalog_query's keep). */
static int rank_keep(void *st, size_t slot) { return rank_eligible(st, slot); }

/* Offers one search's hits from source src (the profile source keeps
 * each hit's search score, and the search's floor). Returns how many were
 * eligible, or AISLE_ENOMEM. */
static int rank_offer_hits(rank_state *st, const catalog_query *q, int src) {
    int eligible = 0;
    /* The hits' facets lie scattered over the catalog's table: asking for
     * them all before the first eligibility test overlaps their cache
     * misses (the test's load of them was most of its cost). */
    for (int i = 0; i < q->n; i++)
        if (q->slots[i] < catalog_slot_limit(st->c))
            __builtin_prefetch(catalog_facets_at(st->c, q->slots[i]));
    if (src == RANK_SRC_PROFILE) st->floor = q->n > 0 ? q->scores[q->n - 1] : NAN;
    for (int i = 0; i < q->n; i++) {
        int got = rank_offer(st, q->slots[i], src, q->scores[i]);
        if (got < 0) return AISLE_ENOMEM;
        if (got && src == RANK_SRC_PROFILE)
            st->pool[*rank_slotmap_at(&st->at, q->slots[i]) - 1].search = q->scores[i];
        eligible += got > 0;
    }
    return eligible;
}

/* Runs q now, into arrays of its own (the caller frees them). */
static int rank_search_now(rank_state *st, catalog_query *q) {
    q->slots = malloc((size_t)q->k * sizeof(*q->slots));
    q->scores = malloc((size_t)q->k * sizeof(*q->scores));
    if (!q->slots || !q->scores) return AISLE_ENOMEM;
    return catalog_search_batch(st->c, q, 1);
}

/* Offers the k best items by inner product with q from source src (the
 * planned search when there is one). With deepen, when fewer than a page
 * of them were eligible and the index had more, it searches once more
 * for the best eligible items alone (a filtered search, as deep as the
 * page when that is deeper): a filter that drops most items costs one
 * more search of the same lists, only when it does, rather than searches
 * ever deeper that return what was already refused. */
int rank_offer_search(rank_state *st, const float *q, int k, int src, int deepen,
                      char *err, size_t errlen) {
    const catalog_query *pre = rank_planned(st, q, k);
    catalog_query own = {.q = q, .k = k}, deeper = {.q = q, .keep = rank_keep, .keep_arg = st};
    int got, rc = AISLE_OK;
    if (k <= 0) return AISLE_OK;
    if (!pre && (rc = rank_search_now(st, &own)) != AISLE_OK) goto fail;
    if (!pre) pre = &own;
    if ((got = rank_offer_hits(st, pre, src)) < 0) rc = got;
    else if (deepen && (size_t)got < st->cap && pre->n == k) {
        deeper.k = (size_t)k > st->cap ? k : (int)st->cap;
        if ((rc = rank_search_now(st, &deeper)) == AISLE_OK &&
            (got = rank_offer_hits(st, &deeper, src)) < 0)
            rc = got;
    }
fail:
    free(own.slots);
    free(own.scores);
    free(deeper.slots);
    free(deeper.scores);
    return rc ? status_fail(rc, err, errlen, "out of memory") : AISLE_OK;
}

/* How deep to search first: a source's budget, never less than the page
 * plus what the profile and earlier pages leave out. */
int rank_depth(const rank_state *st, int budget) {
    const rank_profile *p = st->p;
    size_t k = st->cap + p->n_items + p->n_dismissed + p->n_seen + p->n_purchased +
               st->req->n_served + 16;
    if ((size_t)budget > k) k = (size_t)budget;
    return k > RANK_MAX_CANDIDATES ? RANK_MAX_CANDIDATES : (int)k;
}

/* u = (Σ_i w_i·P[i] − Σ_d w_d·P[d]) / Σ|w| over the profile's items and
 * dismissed items, recording each profile item's slot in st->pslots; sets
 * st->personal when the catalog knows a profile item. */
static int rank_user_vector(rank_state *st) {
    const rank_profile *p = st->p;
    int d = catalog_dim(st->c);
    long nlive = 0;
    st->wsum = 0;
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
        st->wsum += fabs(p->items[i].weight);
        nlive++;
    }
    /* Dismissed items push the user vector away from themselves. */
    for (size_t i = 0; i < p->n_dismissed; i++) {
        size_t slot;
        if (catalog_lookup(st->c, p->dismissed[i].id, &slot) != AISLE_OK) continue;
        const float *v = catalog_query_vector(st->c, slot);
        for (int j = 0; j < d; j++) st->u[j] -= (float)p->dismissed[i].weight * v[j];
        st->wsum += fabs(p->dismissed[i].weight);
    }
    st->personal = nlive > 0 && st->wsum > 0;
    if (st->personal)
        for (int j = 0; j < d; j++) st->u[j] /= (float)st->wsum;
    return AISLE_OK;
}

/* The seeds of the neighbours source (the heaviest and the most
 * recently seen profile items the catalog knows) into seeds; returns how
 * many, and the depth each is searched to in *per. */
static size_t rank_neighbour_seeds(const rank_state *st, size_t *seeds, int *per) {
    const rank_profile *p = st->p;
    size_t n = 0, slot;
    for (size_t i = 0; i < p->n_items && n < RANK_SEED_ITEMS; i++)
        if (st->pslots[i] != SIZE_MAX) seeds[n++] = st->pslots[i];
    for (size_t i = 0; i < p->n_seen && n < RANK_SEED_ITEMS + RANK_SEED_RECENT; i++)
        if (catalog_lookup(st->c, p->seen[i].id, &slot) == AISLE_OK) seeds[n++] = slot;
    *per = st->set->budget[RANK_SRC_NEIGHBOURS] / (int)(n ? n : 1) + 1;
    return n;
}

/* Nearest items by vector to the heaviest and the most recently seen
 * profile items: item-to-item neighbours that need no learned lists. */
static int rank_source_neighbours(rank_state *st, char *err, size_t errlen) {
    size_t seeds[RANK_SEED_ITEMS + RANK_SEED_RECENT], n;
    int per, rc = AISLE_OK;
    if (st->set->budget[RANK_SRC_NEIGHBOURS] <= 0 || !st->personal) return AISLE_OK;
    n = rank_neighbour_seeds(st, seeds, &per);
    for (size_t i = 0; i < n && rc == AISLE_OK; i++)
        rc = rank_offer_search(st, catalog_vector(st->c, seeds[i]), per, RANK_SRC_NEIGHBOURS,
                               0, err, errlen);
    return rc;
}

/* A creator's item for the creators source: its slot and the creator's share. */
typedef struct rank_made {
    uint32_t slot;
    float share;
} rank_made;

static int rank_made_newest(const void *a, const void *b) {
    uint32_t x = ((const rank_made *)a)->slot, y = ((const rank_made *)b)->slot;
    return (x < y) - (x > y);
}

/* The creators the creators source draws from, with their shares: the
 * RANK_TOP_CREATORS the user engages with most (a share of the top one's
 * weight), then up to RANK_TOP_FOLLOWS followed ones not among them (a
 * full share: a follow is asked for, not inferred). Returns how many. */
static size_t rank_made_creators(const rank_state *st, const char **ids, float *shares) {
    const rank_profile *p = st->p;
    size_t n = 0, engaged = 0;
    for (size_t ci = 0; ci < p->n_creators && ci < RANK_TOP_CREATORS; ci++)
        if (p->creators[ci].weight > 0 && p->creators[0].weight > 0) {
            ids[n] = p->creators[ci].id;
            shares[n++] = (float)(p->creators[ci].weight / p->creators[0].weight);
            engaged = ci + 1;
        }
    for (size_t i = 0, f = 0; i < p->n_follows && f < RANK_TOP_FOLLOWS; i++) {
        uint32_t key = catalog_key(st->c, p->follows[i].id);
        uint32_t ci = key && key != CATALOG_NO_KEY ? rank_slotmap_get(&st->creators, key) : 0;
        if (!key || key == CATALOG_NO_KEY || (ci && ci <= engaged)) continue;
        ids[n] = p->follows[i].id;
        shares[n++] = 1.0f;
        f++;
    }
    return n;
}

/* Items of the creators the user engages with most and of those they
 * follow (rank_made_creators), newest slots first (slots are handed out
 * as items arrive) among the catalog's newest RANK_CREATOR_SCAN, scored by
 * the creator's share. The creator index keeps each creator's slots, so a
 * call reads those few creators' items rather than the newest slots of
 * the whole catalog. */
static int rank_source_creators(rank_state *st, char *err, size_t errlen) {
    const char *ids[RANK_TOP_CREATORS + RANK_TOP_FOLLOWS];
    float shares[RANK_TOP_CREATORS + RANK_TOP_FOLLOWS];
    size_t limit = catalog_slot_limit(st->c), n = 0, cap = 0, drawn;
    size_t oldest = limit > RANK_CREATOR_SCAN ? limit - RANK_CREATOR_SCAN : 0;
    int budget = st->set->budget[RANK_SRC_CREATORS], got = 0;
    rank_made *items = NULL;
    if (budget <= 0 || !(drawn = rank_made_creators(st, ids, shares))) return AISLE_OK;
    for (size_t k = 0; k < drawn; k++) {
        const uint32_t *slots;
        size_t m = creators_slots(catalog_creators(st->c), ids[k], &slots);
        if (n + m > cap) {
            rank_made *g = realloc(items, (cap = 2 * (n + m)) * sizeof(*g));
            if (!g) goto oom;
            items = g;
        }
        for (size_t e = 0; e < m; e++)
            if (slots[e] >= oldest) items[n++] = (rank_made){slots[e], shares[k]};
    }
    if (n) qsort(items, n, sizeof(*items), rank_made_newest);
    for (size_t i = 0; i < n && i < 2 * (size_t)budget; i++)
        __builtin_prefetch(catalog_facets_at(st->c, items[i].slot));
    for (size_t i = 0; i < n && got < budget; i++) {
        int r = rank_offer(st, items[i].slot, RANK_SRC_CREATORS, items[i].share);
        if (r < 0) goto oom;
        got += r;
    }
    free(items);
    return AISLE_OK;
oom:
    free(items);
    return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
}

void rank_list_resolve(catalog *c, rank_list *l, size_t *slots) {
    catalog_read_begin(c);
    l->generation = catalog_id_generation(c);
    for (size_t i = 0; i < l->n; i++)
        if (catalog_lookup(c, l->items[i].id, &slots[i]) != AISLE_OK) slots[i] = SIZE_MAX;
    catalog_read_end(c);
    l->slots = slots;
}

/* Whether l's resolved slots still hold. */
static int rank_list_known(const rank_state *st, const rank_list *l) {
    return l->slots && l->generation == catalog_id_generation(st->c);
}

/* Entry i of l's slot: the one resolved beforehand while it holds, else
 * looked up. AISLE_OK, or AISLE_ENOTFOUND when the catalog lacks it. */
static int rank_list_slot(const rank_state *st, const rank_list *l, size_t i, size_t *slot) {
    if (!rank_list_known(st, l)) return catalog_lookup(st->c, l->items[i].id, slot);
    *slot = l->slots[i];
    return *slot == SIZE_MAX ? AISLE_ENOTFOUND : AISLE_OK;
}

/* The share of l's heaviest weight entry i has (a list whose top is not
 * positive counts weights as they are). */
static float rank_list_share(const rank_list *l, size_t i) {
    double top = l->n && l->items[0].weight > 0 ? l->items[0].weight : 1;
    return (float)(l->items[i].weight / top);
}

/* The popular list, asked of the callback once per call. */
static int rank_popular_list(rank_state *st, char *err, size_t errlen) {
    int rc;
    if (st->popular_read || !st->req->popular) return AISLE_OK;
    st->popular_read = 1;
    rc = st->req->popular(st->req->popular_arg, &st->popular, err, errlen);
    if (rc != AISLE_OK) memset(&st->popular, 0, sizeof(st->popular));
    return rc;
}

/* Offers l's heaviest eligible entries, up to budget, from source src,
 * scored as a share of l's heaviest. */
static int rank_offer_list(rank_state *st, const rank_list *l, size_t budget, int src, char *err,
                           size_t errlen) {
    /* As for a search's hits (rank_offer_hits): the facets the eligibility
     * tests will read, asked for at once, for about as many entries as the
     * budget takes when the slots are known. */
    for (size_t i = 0; rank_list_known(st, l) && i < l->n && i < 2 * budget; i++)
        if (l->slots[i] < catalog_slot_limit(st->c))
            __builtin_prefetch(catalog_facets_at(st->c, l->slots[i]));
    for (size_t i = 0, got = 0; i < l->n && got < budget; i++) {
        size_t slot;
        int r;
        if (rank_list_slot(st, l, i, &slot) != AISLE_OK) continue;
        if ((r = rank_offer(st, slot, src, rank_list_share(l, i))) < 0)
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        got += (size_t)r;
    }
    return AISLE_OK;
}

static int rank_source_popular(rank_state *st, char *err, size_t errlen) {
    int budget = st->set->budget[RANK_SRC_POPULAR], rc;
    if (budget <= 0) return AISLE_OK;
    if ((rc = rank_popular_list(st, err, errlen)) != AISLE_OK) return rc;
    return rank_offer_list(st, &st->popular, (size_t)budget, RANK_SRC_POPULAR, err, errlen);
}

/* Each trending list's heaviest eligible items, the budget shared between
 * the lists, scored as a share of their list's heaviest. */
static int rank_source_trending(rank_state *st, char *err, size_t errlen) {
    const rank_request *req = st->req;
    int budget = st->set->budget[RANK_SRC_TRENDING], per;
    if (budget <= 0 || req->n_trending == 0) return AISLE_OK;
    per = budget / (int)req->n_trending + 1;
    for (size_t k = 0; k < req->n_trending; k++) {
        int rc = rank_offer_list(st, &req->trending[k].list, (size_t)per, RANK_SRC_TRENDING, err,
                                 errlen);
        if (rc != AISLE_OK) return rc;
    }
    return AISLE_OK;
}

/* The best lexical matches (st->lex is already scored). */
static int rank_source_query(rank_state *st, char *err, size_t errlen) {
    size_t limit = catalog_slot_limit(st->c), n = 0;
    size_t budget = (size_t)st->set->budget[RANK_SRC_QUERY];
    rank_cand *best;
    if (!st->lex || budget == 0) return AISLE_OK;
    for (size_t slot = 0; slot < limit; slot++) n += st->lex[slot] > 0;
    if (!(best = malloc(n * sizeof(*best) + 1)))
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    n = 0;
    for (size_t slot = 0; slot < limit; slot++)
        if (st->lex[slot] > 0) best[n++] = (rank_cand){.slot = slot, .score = st->lex[slot]};
    qsort(best, n, sizeof(*best), rank_cand_cmp);
    for (size_t i = 0, got = 0; i < n && got < budget; i++) {
        int r = rank_offer(st, best[i].slot, RANK_SRC_QUERY, best[i].score);
        if (r < 0) {
            free(best);
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        }
        got += (size_t)r;
    }
    free(best);
    return AISLE_OK;
}

/* The context item's learned neighbours, then its nearest by vector. */
static int rank_source_context(rank_state *st, char *err, size_t errlen) {
    const uint32_t *nb;
    const float *w;
    size_t m;
    if (st->ctx == SIZE_MAX || st->set->budget[RANK_SRC_CONTEXT] <= 0) return AISLE_OK;
    catalog_neighbours(st->c, st->ctx, &nb, &w, &m);
    for (size_t e = 0; e < m; e++)
        if (rank_offer(st, nb[e], RANK_SRC_CONTEXT,
                       rank_dot(catalog_vector(st->c, st->ctx), catalog_vector(st->c, nb[e]),
                                catalog_dim(st->c))) < 0)
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return rank_offer_search(st, catalog_vector(st->c, st->ctx),
                             st->set->budget[RANK_SRC_CONTEXT], RANK_SRC_CONTEXT, 1, err,
                             errlen);
}

/* Adds the search of q at depth k to the plan, once: the heaviest item is
 * often also the one seen last, and its one search serves both seeds. */
static void rank_plan(rank_state *st, const float *q, int k, int nprobe) {
    assert(st->n_planned < RANK_MAX_PLANNED);
    if (!rank_planned(st, q, k))
        st->planned[st->n_planned++] = (catalog_query){.q = q, .k = k, .nprobe = nprobe};
}

/* Runs, as one batch, the first round of each search the sources below
 * will make (the same queries at the same depths): the index's lists
 * that several of them probe are read once. */
static int rank_plan_searches(rank_state *st, char *err, size_t errlen) {
    const rank_settings *set = st->set;
    size_t seeds[RANK_SEED_ITEMS + RANK_SEED_RECENT], n;
    int per;
    if (st->personal) rank_plan(st, st->u, rank_depth(st, set->budget[RANK_SRC_PROFILE]), 0);
    if (set->budget[RANK_SRC_NEIGHBOURS] > 0 && st->personal) {
        n = rank_neighbour_seeds(st, seeds, &per);
        for (size_t i = 0; i < n; i++)
            rank_plan(st, catalog_vector(st->c, seeds[i]), per, set->seed_nprobe);
    }
    if (st->ctx != SIZE_MAX && set->budget[RANK_SRC_CONTEXT] > 0)
        rank_plan(st, catalog_vector(st->c, st->ctx), set->budget[RANK_SRC_CONTEXT], 0);
    if (st->req->query_vector && set->budget[RANK_SRC_VECTOR] > 0)
        rank_plan(st, st->req->query_vector, set->budget[RANK_SRC_VECTOR], 0);
    for (size_t i = 0; i < st->n_planned; i++) {
        catalog_query *q = &st->planned[i];
        q->slots = malloc((size_t)q->k * sizeof(*q->slots) + 1);
        q->scores = malloc((size_t)q->k * sizeof(*q->scores) + 1);
        if (!q->slots || !q->scores) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    if (st->n_planned && catalog_search_batch(st->c, st->planned, st->n_planned) != AISLE_OK)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

/* Room for what the sources that run may offer, their budgets and the
 * profile search's depth (more when the neighbour lists or a filter's
 * deeper search bring more): the offered map and the pool, sized once,
 * rather than rehashed and copied as they double their way there. */
static int rank_reserve(rank_state *st) {
    const rank_settings *set = st->set;
    /* The request's own sources run only when it brings their input. */
    const int off[RANK_SRC_COUNT] = {[RANK_SRC_QUERY] = !st->lex,
                                     [RANK_SRC_VECTOR] = !st->req->query_vector,
                                     [RANK_SRC_CONTEXT] = st->ctx == SIZE_MAX};
    size_t n = (size_t)rank_depth(st, set->budget[RANK_SRC_PROFILE]);
    for (int s = RANK_SRC_PROFILE + 1; s < RANK_SRC_COUNT; s++)
        if (set->budget[s] > 0 && !off[s]) n += (size_t)set->budget[s];
    if (rank_slotmap_reserve(&st->at, n) != AISLE_OK) return AISLE_ENOMEM;
    return grow_room(&st->pool, &st->poolcap, 0, sizeof(*st->pool), n);
}

static int rank_sources(rank_state *st, char *err, size_t errlen) {
    int rc;
    if (rank_reserve(st) != AISLE_OK) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = rank_plan_searches(st, err, errlen)) || (rc = snapscore_source_profile(st, err, errlen)) ||
        (rc = rank_source_neighbours(st, err, errlen)) ||
        (rc = rank_source_creators(st, err, errlen)) ||
        (rc = rank_source_popular(st, err, errlen)) ||
        (rc = rank_source_trending(st, err, errlen)) || (rc = rank_source_query(st, err, errlen)) ||
        (rc = rank_source_context(st, err, errlen)))
        return rc;
    if (st->req->query_vector && st->set->budget[RANK_SRC_VECTOR] > 0)
        return rank_offer_search(st, st->req->query_vector, st->set->budget[RANK_SRC_VECTOR],
                                 RANK_SRC_VECTOR, 1, err, errlen);
    return AISLE_OK;
}

/* How much the user engages with the item's creator, a share of the top
 * creator's weight in [0, 1]; sets *creator to the profile index. */
static float rank_creator_share(const rank_state *st, const catalog_facets *fc, int *creator) {
    const rank_profile *p = st->p;
    size_t ci;
    double top;
    *creator = -1;
    if (!fc->creator || !(ci = rank_slotmap_get(&st->creators, fc->creator)) ||
        p->creators[--ci].weight <= 0)
        return 0.0f;
    top = p->creators[0].weight > 0 ? p->creators[0].weight : 1;
    *creator = (int)ci;
    return (float)fmin(1.0, p->creators[ci].weight / top);
}

/* A share in [0, 1] of the heaviest entry's weight for key in m. */
static float rank_affinity(const rank_slotmap *m, const rank_entry *list, uint32_t key) {
    size_t i;
    if (!key || !(i = rank_slotmap_get(m, key)) || list[0].weight <= 0 || list[--i].weight <= 0)
        return 0.0f;
    return (float)fmin(1.0, list[i].weight / list[0].weight);
}

/* Fills cd->f (see RANK_F_* in rank.h) and cd->creator; best holds each
 * source's best raw score over the pool. The one place features are made:
 * the pool's, the fill's and so what is logged for training. */
void rank_features(const rank_state *st, rank_cand *cd, const float *best) {
    const catalog_facets *fc = catalog_facets_at(st->c, cd->slot);
    float *f = cd->f, share = rank_creator_share(st, fc, &cd->creator);
    int d = catalog_dim(st->c);
    memset(f, 0, sizeof(cd->f));
    if (st->personal) {
        f[RANK_F_PERSONAL] =
            (isnan(cd->search) ? rank_dot(st->u, catalog_vector(st->c, cd->slot), d)
                               : cd->search) +
            ((st->ns ? st->ns[cd->slot] : 0.0f) + catalog_bias(st->c, cd->slot)) /
                (float)st->wsum;
        f[RANK_F_CREATOR] = share;
    }
    for (int s = RANK_SRC_PROFILE + 1; s < RANK_SRC_COUNT; s++)
        if ((cd->sources & 1u << s) && best[s] > 0)
            f[RANK_F_SOURCE + s - 1] = cd->raw[s] / best[s];
    f[RANK_F_CATEGORY] = rank_affinity(&st->categories, st->p->categories, fc->category);
    f[RANK_F_BRAND] = rank_affinity(&st->brands, st->p->brands, fc->brand);
}

/* The settings' hand weights over f: the personal score plus the creator
 * boost times the profile weight, each other source's share and the
 * affinities times theirs. Terms whose weight is 0 are skipped, so the
 * exact settings give the personal score bit for bit. */
float rank_hand_score(const rank_settings *set, const float *f) {
    float score = set->weight[RANK_SRC_PROFILE] *
                  (f[RANK_F_PERSONAL] + RANK_CREATOR_BOOST * f[RANK_F_CREATOR]);
    for (int s = RANK_SRC_PROFILE + 1; s < RANK_SRC_COUNT; s++)
        if (set->weight[s] != 0) score += set->weight[s] * f[RANK_F_SOURCE + s - 1];
    if (set->w_category != 0) score += set->w_category * f[RANK_F_CATEGORY];
    if (set->w_brand != 0) score += set->w_brand * f[RANK_F_BRAND];
    return score;
}

/* Scores the pool with the request's model over its features. */
static int rank_model_score(rank_state *st, char *err, size_t errlen) {
    ltr_model *m = st->req->model;
    float *rows, *out;
    int rc;
    if (ltr_model_features(m) != RANK_N_FEATURES)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "the ranker model takes %u features; this ranker computes %d",
                           ltr_model_features(m), RANK_N_FEATURES);
    if (st->npool == 0) return AISLE_OK;
    rows = malloc(st->npool * sizeof(st->pool[0].f));
    out = malloc(st->npool * sizeof(*out));
    rc = rows && out ? AISLE_OK : status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; rc == AISLE_OK && i < st->npool; i++)
        memcpy(rows + i * RANK_N_FEATURES, st->pool[i].f, sizeof(st->pool[i].f));
    if (rc == AISLE_OK) rc = ltr_model_score(m, rows, st->npool, out, err, errlen);
    for (size_t i = 0; rc == AISLE_OK && i < st->npool; i++) st->pool[i].score = out[i];
    free(rows);
    free(out);
    return rc;
}

/* The features of a fill item in slot brought by src with share (of the
 * popular list's top; 1 for any eligible item), as a candidate's. */
static void rank_fill_features(const rank_state *st, size_t slot, int src, float share,
                               float *f) {
    rank_cand cd = {.slot = slot, .search = NAN, .sources = 1u << src};
    float best[RANK_SRC_COUNT] = {0};
    cd.raw[src] = share;
    best[src] = 1;
    rank_features(st, &cd, best);
    memcpy(f, cd.f, sizeof(cd.f));
}

/* Adds score to the min-heap h of at most cap of the best scores seen. */
void rank_heap_push(float *h, size_t *n, size_t cap, float score) {
    size_t i;
    if (*n == cap) {
        if (!(score > h[0])) return;
        /* Replace the root and sift down. */
        for (i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            float least = score;
            if (l < *n && h[l] < least) {
                m = l;
                least = h[l];
            }
            if (r < *n && h[r] < least) m = r;
            if (m == i) break;
            h[i] = h[m];
            i = m;
        }
        h[i] = score;
        return;
    }
    for (i = (*n)++; i > 0 && h[(i - 1) / 2] > score; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = score;
}

/* Asks for what rank_features reads of each candidate, its facets and
 * (when the profile search did not score it) its vector, before the first
 * is read: scattered over the catalog, their cache misses then overlap.
 * Bounded scoring (snapscore_score_bounded) reads the vectors of only the few
 * candidates that may reach the page, so it is asked for none. */
static void rank_prefetch_pool(const rank_state *st) {
    int d = catalog_dim(st->c), vectors = st->personal && !snapscore_can_bound(st);
    for (size_t i = 0; i < st->npool; i++) {
        const rank_cand *cd = &st->pool[i];
        __builtin_prefetch(catalog_facets_at(st->c, cd->slot));
        if (!vectors || !isnan(cd->search)) continue;
        for (int j = 0; j < d; j += 16) __builtin_prefetch(catalog_vector(st->c, cd->slot) + j);
    }
}

/* Every candidate's features, then its score: the request's model's, or
 * the settings' hand weights. */
static int rank_score(rank_state *st, char *err, size_t errlen) {
    rank_prefetch_pool(st);
    st->best[RANK_SRC_NEIGHBOURS] = st->pruned_best;
    for (size_t i = 0; i < st->npool; i++)
        for (int s = 0; s < RANK_SRC_COUNT; s++)
            if (st->pool[i].raw[s] > st->best[s]) st->best[s] = st->pool[i].raw[s];
    if (snapscore_can_bound(st)) return snapscore_score_bounded(st, err, errlen);
    for (size_t i = 0; i < st->npool; i++) {
        rank_features(st, &st->pool[i], st->best);
        st->pool[i].score = rank_hand_score(st->set, st->pool[i].f);
    }
    return st->req->model ? rank_model_score(st, err, errlen) : AISLE_OK;
}

/* Multiplies the boosted candidates' scores (a negative score is divided,
 * so a factor above 1 always lifts an item and one below 1 always lowers
 * it) and marks them featured: a lookup per rule, not per candidate. */
static int rank_boost(rank_state *st) {
    for (size_t r = 0; r < st->req->n_rules; r++) {
        const rank_rule *rule = &st->req->rules[r];
        uint32_t *at;
        size_t slot;
        rank_cand *cd;
        if (rule->boost == 1 || catalog_lookup(st->c, rule->item_id, &slot) != AISLE_OK)
            continue;
        if (!(at = rank_slotmap_at(&st->at, slot))) return AISLE_ENOMEM;
        if (*at == 0 || *at == UINT32_MAX) continue; /* not a candidate */
        cd = &st->pool[*at - 1];
        cd->score = cd->score > 0 ? cd->score * rule->boost : cd->score / rule->boost;
        cd->sources |= 1u << RANK_SRC_FEATURED;
    }
    return AISLE_OK;
}

/* Per-page caps: how many of the page share the item's creator, brand,
 * category, counted by catalog key. */
typedef struct rank_caps {
    rank_slotmap n[3];
    int max[3];
    /* Keys of each kind at their cap: while none is, no item can break
     * that cap, and rank_capped looks none of them up (the selection asks
     * of many items each step). */
    int full[3];
} rank_caps;

static const char *const rank_cap_names[3] = {"creator", "brand", "category"};

static uint32_t rank_cap_key(const catalog_facets *fc, int k) {
    return k == 0 ? fc->creator : k == 1 ? fc->brand : fc->category;
}

/* The first cap (0 creator, 1 brand, 2 category) slot's item would break,
 * or -1. */
static int rank_capped(const rank_state *st, const rank_caps *caps, size_t slot) {
    const catalog_facets *fc = catalog_facets_at(st->c, slot);
    for (int k = 0; k < 3; k++) {
        uint32_t key = rank_cap_key(fc, k);
        if (caps->full[k] && key &&
            rank_slotmap_get(&caps->n[k], key) >= (uint32_t)caps->max[k])
            return k;
    }
    return -1;
}

static int rank_cap_count(const rank_state *st, rank_caps *caps, size_t slot) {
    const catalog_facets *fc = catalog_facets_at(st->c, slot);
    for (int k = 0; k < 3; k++) {
        uint32_t key = rank_cap_key(fc, k), *n;
        if (caps->max[k] <= 0 || !key) continue;
        if (!(n = rank_slotmap_at(&caps->n[k], key))) return AISLE_ENOMEM;
        caps->full[k] += ++*n == (uint32_t)caps->max[k];
    }
    return AISLE_OK;
}

static void rank_caps_free(rank_caps *caps) {
    for (int k = 0; k < 3; k++) {
        free(caps->n[k].keys);
        free(caps->n[k].vals);
    }
}

/* Writes cents as "$49.99" or "$50". */
static void rank_price(char *buf, size_t len, int64_t cents) {
    if (cents % 100)
        snprintf(buf, len, "$%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    else
        snprintf(buf, len, "$%lld", (long long)(cents / 100));
}

/* The request's filter in the shopper's words, when it asked for one. */
static int rank_filter_reason(const rank_state *st, rank_hit *h) {
    const rank_filter *f = st->filter;
    char lo[32], hi[32];
    if (!f) return AISLE_OK;
    rank_price(lo, sizeof(lo), f->min_price_cents);
    rank_price(hi, sizeof(hi), f->max_price_cents);
    if (f->max_price_cents > 0 && f->min_price_cents > 0)
        return rank_reason(h, "Between %s and %s, as you asked", lo, hi);
    if (f->max_price_cents > 0)
        return h->item.price_cents < f->max_price_cents
                   ? rank_reason(h, "Under %s, as you asked", hi)
                   : rank_reason(h, "At your %s ceiling, as you asked", hi);
    if (f->min_price_cents > 0) return rank_reason(h, "%s or more, as you asked", lo);
    if (f->n_categories) return rank_reason(h, "In %s, as you asked", h->item.category);
    if (f->n_brands) return rank_reason(h, "By %s, as you asked", h->item.brand);
    return AISLE_OK;
}

static const char *rank_title(const catalog_item *it) {
    return *it->title ? it->title : it->item_id;
}

const char *rank_creator_label(const catalog_item *it) {
    return it->creator_name && *it->creator_name ? it->creator_name : it->creator_id;
}

int rank_profile_follows(const rank_profile *p, const char *creator_id) {
    for (size_t i = 0; i < p->n_follows; i++)
        if (strcmp(p->follows[i].id, creator_id) == 0) return 1;
    return 0;
}

/* How the user met profile item i: "viewed", "bought", or engaged with. */
static const char *rank_met(const rank_state *st, int i) {
    uint32_t flags = rank_slotmap_get(&st->marks, st->pslots[i]);
    return flags & RANK_IN_PURCHASED ? "which you bought"
           : flags & RANK_IN_SEEN    ? "which you viewed"
                                     : "which you showed interest in";
}

/* Appends cand to the result with the reasons that explain it: its
 * sources (because: the profile item it is most like, or -1), then what
 * the page's rules did (variety: a better-scored item waits; cap: one was
 * held back by kind), then the request's filter. */
static int rank_explain(rank_state *st, const rank_cand *cd, int variety, int cap,
                        int because) {
    const rank_request *req = st->req;
    rank_hit *h = rank_push(st, cd->slot, cd->score, cd->sources, cd->f);
    uint32_t creator = catalog_facets_at(st->c, cd->slot)->creator;
    int followed = creator && rank_slotmap_get(&st->followed, creator) != 0;
    char quote[RANK_QUOTE + 4];
    int rc = AISLE_OK;
    if (!h) return AISLE_ENOMEM;
    if (cd->sources & 1u << RANK_SRC_FEATURED) rc = rank_reason(h, "Featured");
    if (!rc && because >= 0)
        rc = rank_reason(h, "Similar to \"%s\", %s",
                         rank_title(catalog_at(st->c, st->pslots[because])),
                         rank_met(st, because));
    /* The creators source brings a creator's newest items; a followed
     * creator is named so whether or not the user engages with them. */
    if (!rc && (cd->creator >= 0 || followed) &&
        (st->personal || cd->sources & 1u << RANK_SRC_CREATORS))
        rc = rank_reason(h, "%s %s, %s",
                         cd->sources & 1u << RANK_SRC_CREATORS ? "New from" : "From",
                         rank_creator_label(&h->item),
                         followed ? "whom you follow" : "a creator you engage with");
    if (!rc && cd->sources & 1u << RANK_SRC_CONTEXT)
        rc = rank_reason(h, st->set->context_phrase, rank_title(catalog_at(st->c, st->ctx)));
    if (!rc && cd->sources & 1u << RANK_SRC_QUERY) {
        snprintf(quote, sizeof(quote), "%.*s%s", RANK_QUOTE, req->query,
                 strlen(req->query) > RANK_QUOTE ? "..." : "");
        rc = rank_reason(h, "Matches your search \"%s\"", quote);
    }
    if (!rc && cd->sources & 1u << RANK_SRC_VECTOR)
        rc = rank_reason(h, "Looks like what you searched with");
    if (!rc && cd->sources & 1u << RANK_SRC_TRENDING)
        rc = rank_reason(h, "Trending in %s this week",
                         *h->item.category ? h->item.category : "the shop");
    else if (!rc && cd->sources & 1u << RANK_SRC_POPULAR)
        rc = rank_reason(h, "Popular right now in %s",
                         *h->item.category ? h->item.category : "the shop");
    if (!rc && variety) rc = rank_reason(h, "Adds variety to this page");
    if (!rc && cap >= 0)
        rc = rank_reason(h, "Here because this page shows at most %d per %s",
                         cap == 0   ? st->set->cap_creator
                         : cap == 1 ? st->set->cap_brand
                                    : st->set->cap_category,
                         rank_cap_names[cap]);
    if (!rc && h->n_reasons == 0)
        rc = rank_reason(h, "Matches your recent interests in %s",
                         *h->item.category ? h->item.category : "the catalog");
    /* What the shopper asked for always shows: it takes the last place
     * when the sources filled them all. */
    if (!rc && h->n_reasons == RANK_MAX_REASONS) free(h->reasons[--h->n_reasons]);
    if (!rc) rc = rank_filter_reason(st, h);
    return rc;
}

/* A pick of rank_select, explained once the whole page is chosen. */
typedef struct rank_pick {
    size_t at;   /* its place in the pool */
    int variety; /* a better-scored item waits */
    int cap;     /* the cap that held a better one back, or -1 */
    int because; /* the profile item it is most like, or -1 */
} rank_pick;

/* Sets each of the n picks' because: for those the profile or the
 * neighbours brought, the profile item i that contributes most to the
 * pick j's score, w_i·(P[i]·Q[j] + N_i(j)) (the first of equals). One walk
 * of each profile item's neighbour list serves the whole page, a bitmap of
 * the page's slots passing over the rest: a learned snapshot's lists run
 * to a thousand entries, and looking each pick up in each of them was the
 * largest cost of its pages. The products P[i]·Q[j] of a profile item
 * with the picks are one vec_dots_at call over the picks' rows (vec_dot's
 * bits, four rows to a load of P[i]). AISLE_OK or AISLE_ENOMEM. */
static int rank_becauses(const rank_state *st, rank_pick *picks, size_t n) {
    const rank_profile *p = st->p;
    const unsigned mask = 1u << RANK_SRC_PROFILE | 1u << RANK_SRC_NEIGHBOURS;
    size_t limit = catalog_slot_limit(st->c);
    int d = catalog_dim(st->c), rc = AISLE_ENOMEM;
    uint64_t *page = NULL;
    float *nbw = NULL, *best = NULL, *dots = NULL;
    const float **rows = NULL; /* the explained picks' vectors */
    size_t *ks = NULL, m = 0;  /* and their places in picks */
    rank_slotmap where = {0};  /* slot → pick + 1 */
    int lists = st->ns != NULL; /* whether any profile item has a neighbour list */
    for (size_t k = 0; k < n; k++) picks[k].because = -1;
    if (!st->personal || !n) return AISLE_OK;
    page = lists ? calloc(limit / 64 + 1, sizeof(*page)) : NULL;
    nbw = calloc(n, sizeof(*nbw));
    best = malloc(n * sizeof(*best));
    dots = malloc(n * sizeof(*dots));
    rows = malloc(n * sizeof(*rows));
    ks = malloc(n * sizeof(*ks));
    if ((lists && !page) || !nbw || !best || !dots || !rows || !ks) goto out;
    for (size_t k = 0; k < n; k++) {
        const rank_cand *cd = &st->pool[picks[k].at];
        uint32_t *at;
        best[k] = -INFINITY;
        if (!(cd->sources & mask)) continue;
        rows[m] = catalog_vector(st->c, cd->slot);
        ks[m++] = k;
        if (!lists) continue;
        if (!(at = rank_slotmap_at(&where, cd->slot))) goto out;
        *at = (uint32_t)k + 1;
        page[cd->slot / 64] |= 1ull << cd->slot % 64;
    }
    for (size_t i = 0; i < p->n_items && m; i++) {
        const uint32_t *nb;
        const float *w;
        size_t len;
        if (st->pslots[i] == SIZE_MAX || p->items[i].weight <= 0) continue;
        catalog_neighbours(st->c, st->pslots[i], &nb, &w, &len);
        if (lists) memset(nbw, 0, n * sizeof(*nbw));
        /* Backwards, so the first entry of a slot is the one kept. */
        for (size_t e = len; lists && e-- > 0;)
            if (nb[e] < limit && page[nb[e] / 64] >> nb[e] % 64 & 1)
                nbw[rank_slotmap_get(&where, nb[e]) - 1] = w[e];
        vec_dots_at(catalog_query_vector(st->c, st->pslots[i]), rows, m, d, dots);
        for (size_t j = 0; j < m; j++) {
            size_t k = ks[j];
            float contrib = (float)p->items[i].weight * (dots[j] + nbw[k]);
            if (contrib > best[k]) {
                best[k] = contrib;
                picks[k].because = (int)i;
            }
        }
    }
    rc = AISLE_OK;
out:
    free(page);
    free(nbw);
    free(best);
    free(dots);
    free(rows);
    free(ks);
    free(where.keys);
    free(where.vals);
    return rc;
}

/* The window's MMR state (rank_select): each item's largest cosine to
 * the picks so far, kept lazily. folded[i] of the window's picks (wpicks,
 * in pick order) are in maxsim[i]; the rest are folded in only when i
 * might be the next pick, so maxsim[i] is a lower bound of the true
 * largest cosine and the relevance less it an upper bound of i's MMR
 * value (a subtraction rounds monotonically). Most of a window never
 * comes close to a pick: a step reads the few vectors that do, where
 * folding every pick into every item read the whole window each step.
 * The values compared are the eager fold's, so the page is too. Arrays
 * owned by rank_select. */
typedef struct rank_mmr {
    float *maxsim, *norms; /* norms[i] < 0: not yet computed */
    size_t *folded;
    size_t *wpicks, n_wpicks;
    /* The window picks' vectors in pick order, side by side, and room for
     * one item's products with them: an item's unseen picks are folded
     * in by one vec_dots call over them (the same bits as a product at a
     * time, retrieval/vec.h) rather than a call a pair. */
    float *pv, *sims;
} rank_mmr;

/* Folds the window picks item i has not seen into mmr->maxsim[i]. */
static void rank_mmr_fold(const rank_state *st, rank_mmr *mmr, size_t i) {
    int d = catalog_dim(st->c);
    const float *v = catalog_vector(st->c, st->pool[i].slot);
    size_t from = mmr->folded[i], n = mmr->n_wpicks - from;
    if (mmr->norms[i] < 0) mmr->norms[i] = sqrtf(rank_dot(v, v, d));
    if (n) vec_dots(v, mmr->pv + from * (size_t)d, n, d, mmr->sims);
    for (size_t k = 0; k < n; k++) {
        size_t p = mmr->wpicks[from + k];
        float s = mmr->norms[i] > 0 && mmr->norms[p] > 0
                      ? mmr->sims[k] / (mmr->norms[i] * mmr->norms[p])
                      : 0.0f;
        if (s > mmr->maxsim[i]) mmr->maxsim[i] = s;
    }
    mmr->folded[i] = mmr->n_wpicks;
}

/* Makes window item pick the next window pick: its vector joins mmr->pv
 * (its norm is known: it was folded before it was picked). */
static void rank_mmr_pick(const rank_state *st, rank_mmr *mmr, size_t pick) {
    int d = catalog_dim(st->c);
    memcpy(mmr->pv + mmr->n_wpicks * (size_t)d, catalog_vector(st->c, st->pool[pick].slot),
           (size_t)d * sizeof(float));
    mmr->wpicks[mmr->n_wpicks++] = pick;
}

/* Picks the page from the pool (sorted best first): MMR over the first
 * RANK_MAX_CANDIDATES — λ·relevance − (1−λ)·(the largest cosine to an item
 * already picked, folded in lazily: rank_mmr) — then the rest in score
 * order, never breaking a cap. The window is the pool, not a multiple of
 * the page: a second interest may rank below every item of the first. */
static int rank_select(rank_state *st, rank_caps *caps) {
    const rank_settings *set = st->set;
    size_t win = set->mmr_lambda < 1 ? RANK_MAX_CANDIDATES : 0, np = st->npool;
    int rc = AISLE_OK;
    float lo, span, lambda = set->mmr_lambda;
    rank_mmr mmr = {0};
    unsigned char *used = calloc(np + 1, 1);
    rank_pick *picks = malloc(st->cap * sizeof(*picks));
    size_t n_picks = 0, first_free = 0;
    if (win > np) win = np;
    if (win) {
        mmr.maxsim = calloc(win, sizeof(*mmr.maxsim));
        mmr.norms = malloc(win * sizeof(*mmr.norms));
        mmr.folded = calloc(win, sizeof(*mmr.folded));
        mmr.wpicks = malloc(st->cap * sizeof(*mmr.wpicks));
        mmr.pv = malloc(st->cap * (size_t)catalog_dim(st->c) * sizeof(*mmr.pv));
        mmr.sims = malloc(st->cap * sizeof(*mmr.sims));
    }
    if (!used || !picks ||
        (win && (!mmr.maxsim || !mmr.norms || !mmr.folded || !mmr.wpicks || !mmr.pv || !mmr.sims)))
        rc = AISLE_ENOMEM;
    for (size_t i = 0; i < win && !rc; i++) mmr.norms[i] = -1;
    /* Relevance as a share of the best score, so a second interest at two
     * thirds of the first reads as 0.67 however the window ends; min-max
     * only when the best is not positive. */
    lo = win && st->pool[0].score <= 0 ? st->pool[win - 1].score : 0;
    span = win && st->pool[0].score - lo > 0 ? st->pool[0].score - lo : 1;
    assert(st->out->n == 0);
    while (!rc && n_picks < st->cap) {
        size_t pick = SIZE_MAX;
        int cap_above = -1;
        float bestv = -INFINITY;
        /* The best-scored item the caps allow; past the window, the pick.
         * It only moves down: an item passed over is used or capped, and
         * counts only grow. */
        while (first_free < np &&
               (used[first_free] || rank_capped(st, caps, st->pool[first_free].slot) >= 0))
            first_free++;
        if (first_free >= np) break;
        if (first_free >= win) pick = first_free;
        for (size_t i = first_free; first_free < win && i < win; i++) {
            float rel, v;
            if (used[i]) continue;
            rel = lambda * (st->pool[i].score - lo) / span;
            /* rel falls with i (the pool is sorted) and bounds i's value
             * (maxsim ≥ 0): once it is not above the best so far, no item
             * after can be the pick. */
            if (!(rel > bestv)) break;
            /* The bound first: below the best so far, i cannot be the pick. */
            if (!(rel - (1 - lambda) * mmr.maxsim[i] > bestv)) continue;
            rank_mmr_fold(st, &mmr, i);
            v = rel - (1 - lambda) * mmr.maxsim[i];
            /* Caps are looked up only for a would-be pick: few per step. */
            if (v > bestv && rank_capped(st, caps, st->pool[i].slot) < 0) {
                bestv = v;
                pick = i;
            }
        }
        if (pick == SIZE_MAX) break;
        /* A cap counts in the reason only when it held back a better item. */
        for (size_t i = 0; i < pick && cap_above < 0; i++)
            if (!used[i]) cap_above = rank_capped(st, caps, st->pool[i].slot);
        used[pick] = 1;
        picks[n_picks++] = (rank_pick){.at = pick, .variety = pick != first_free,
                                       .cap = cap_above};
        rc = rank_cap_count(st, caps, st->pool[pick].slot);
        if (!rc && pick < win) rank_mmr_pick(st, &mmr, pick);
    }
    if (!rc) rc = rank_becauses(st, picks, n_picks);
    for (size_t k = 0; k < n_picks && !rc; k++)
        rc = rank_explain(st, &st->pool[picks[k].at], picks[k].variety, picks[k].cap,
                          picks[k].because);
    free(picks);
    free(used);
    free(mmr.maxsim);
    free(mmr.norms);
    free(mmr.folded);
    free(mmr.wpicks);
    free(mmr.pv);
    free(mmr.sims);
    return rc;
}

/* Fills the rest from the popular list (fetched only now that it is
 * needed, unless the popular source already read it), then from any
 * eligible item. Returns AISLE_OK, AISLE_ENOMEM, or the popular
 * callback's code. */
static int rank_fill(rank_state *st, rank_caps *caps, char *err, size_t errlen) {
    int rc;
    if (st->out->n < st->cap && (rc = rank_popular_list(st, err, errlen)) != AISLE_OK)
        return rc;
    for (size_t i = 0; i < st->popular.n && st->out->n < st->cap; i++) {
        size_t slot;
        rank_hit *h;
        if (rank_list_slot(st, &st->popular, i, &slot) != AISLE_OK ||
            !rank_eligible(st, slot) || rank_capped(st, caps, slot) >= 0)
            continue;
        float share = rank_list_share(&st->popular, i), f[RANK_N_FEATURES];
        rank_fill_features(st, slot, RANK_SRC_POPULAR, share, f);
        if (!(h = rank_push(st, slot, share * 0.01f, 1u << RANK_SRC_POPULAR, f)) ||
            rank_reason(h, "Popular right now in %s",
                        *h->item.category ? h->item.category : "the shop") != AISLE_OK ||
            rank_filter_reason(st, h) != AISLE_OK || rank_cap_count(st, caps, slot))
            goto oom;
    }
    /* Any eligible item, within the caps; then, only when nothing else is
     * left, past them: caps shape a page, they do not shorten it. */
    for (int within = 1; within >= 0; within--)
        for (size_t slot = 0; slot < catalog_slot_limit(st->c) && st->out->n < st->cap;
             slot++) {
            rank_hit *h;
            if (!rank_eligible(st, slot) || (within && rank_capped(st, caps, slot) >= 0))
                continue;
            float f[RANK_N_FEATURES];
            rank_fill_features(st, slot, RANK_SRC_FILL, 1.0f, f);
            if (!(h = rank_push(st, slot, 0.0f, 1u << RANK_SRC_FILL, f)) ||
                rank_reason(h, "In stock now in %s",
                            *h->item.category ? h->item.category : "the shop") != AISLE_OK ||
                rank_filter_reason(st, h) != AISLE_OK || rank_cap_count(st, caps, slot))
                goto oom;
        }
    return AISLE_OK;
oom:
    return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
}

/* Gives h the "Featured" reason first (the last goes when all are taken)
 * and the featured source. */
static int rank_feature(rank_hit *h) {
    char *s = strdup("Featured");
    if (!s) return AISLE_ENOMEM;
    if (!(h->sources & 1u << RANK_SRC_FEATURED)) {
        h->sources |= 1u << RANK_SRC_FEATURED;
        h->source_names[h->n_sources++] = rank_source_names[RANK_SRC_FEATURED];
    }
    if (h->n_reasons && strcmp(h->reasons[0], "Featured") == 0) {
        free(s);
        return AISLE_OK;
    }
    if (h->n_reasons == RANK_MAX_REASONS) free(h->reasons[--h->n_reasons]);
    memmove(h->reasons + 1, h->reasons, (size_t)h->n_reasons * sizeof(h->reasons[0]));
    h->reasons[0] = s;
    h->n_reasons++;
    return AISLE_OK;
}

/* The rank of the page's hit of item, or SIZE_MAX. */
static size_t rank_on_page(const rank_result *out, const char *item) {
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->hits[i].item.item_id, item) == 0) return i;
    return SIZE_MAX;
}

/* Takes the page's last hit that is not pinned (want 0) off the page;
 * 0 when every hit is pinned. */
static int rank_unpush_last(rank_state *st, int *want) {
    rank_result *out = st->out;
    size_t i = out->n, slot;
    uint32_t *mark;
    while (i > 0 && want[i - 1]) i--;
    if (i == 0) return 0;
    i--;
    if (catalog_lookup(st->c, out->hits[i].item.item_id, &slot) == AISLE_OK &&
        (mark = rank_slotmap_find(&st->marks, slot)))
        *mark &= ~(uint32_t)RANK_TAKEN;
    rank_hit_clear(&out->hits[i]);
    memmove(out->hits + i, out->hits + i + 1, (out->n - i - 1) * sizeof(*out->hits));
    memmove(want + i, want + i + 1, (out->n - i - 1) * sizeof(*want));
    out->n--;
    /* rank_push fills a zeroed hit: the moved-from copy must not linger. */
    memset(&out->hits[out->n], 0, sizeof(*out->hits));
    want[out->n] = 0;
    return 1;
}

/* Orders the page: each pinned hit (want[i], its position) at its place,
 * the others (a pin past a short page's end among them) in their order
 * around them. A pinned hit takes the best score below it, so it does not
 * read as worse than what it displaced. was is scratch for n hits, at for
 * n indexes. */
static void rank_place(rank_result *out, const int *want, rank_hit *was, size_t *at) {
    size_t n = out->n, next = 0;
    float below = -INFINITY;
    memcpy(was, out->hits, n * sizeof(*was));
    for (size_t p = 0; p < n; p++) at[p] = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (want[i] && (size_t)want[i] <= n) at[want[i] - 1] = i;
    for (size_t p = 0; p < n; p++) {
        size_t i = at[p];
        if (i == SIZE_MAX) {
            while (want[next] && (size_t)want[next] <= n) next++;
            i = next++;
        }
        assert(i < n);
        out->hits[p] = was[i];
    }
    for (size_t p = n; p-- > 0;) {
        if (at[p] != SIZE_MAX && below > out->hits[p].score) out->hits[p].score = below;
        if (out->hits[p].score > below) below = out->hits[p].score;
    }
}

/* Puts the surface's pinned items on the page: one already there keeps
 * its hit, an eligible one comes in (the last hit that is not pinned
 * leaves when the page is full); then rank_place orders them. An item that
 * is not eligible (filter, stock, the profile, an earlier page) is not
 * shown. */
static int rank_pin(rank_state *st) {
    rank_result *out = st->out;
    int *want = calloc(st->cap, sizeof(*want));
    rank_hit *was = malloc(st->cap * sizeof(*was));
    size_t *at = malloc(st->cap * sizeof(*at));
    int rc = AISLE_ENOMEM, pinned = 0;
    if (!want || !was || !at) goto fail;
    for (size_t r = 0; r < st->req->n_rules; r++) {
        const rank_rule *rule = &st->req->rules[r];
        size_t i, slot;
        if (rule->pin <= 0 || (size_t)rule->pin > st->cap) continue;
        if ((i = rank_on_page(out, rule->item_id)) == SIZE_MAX) {
            if (catalog_lookup(st->c, rule->item_id, &slot) != AISLE_OK ||
                !rank_eligible(st, slot) || (out->n == st->cap && !rank_unpush_last(st, want)))
                continue;
            float f[RANK_N_FEATURES];
            rank_fill_features(st, slot, RANK_SRC_FEATURED, 1.0f, f);
            if (!rank_push(st, slot, 0.0f, 1u << RANK_SRC_FEATURED, f)) goto fail;
            i = out->n - 1;
        }
        want[i] = rule->pin;
        pinned = 1;
        if (rank_feature(&out->hits[i]) != AISLE_OK) goto fail;
    }
    if (pinned) rank_place(out, want, was, at);
    rc = AISLE_OK;
fail:
    free(want);
    free(was);
    free(at);
    return rc;
}

/* Marks the creators the user follows by catalog key (st->followed), for
 * the creators source and the reason that says so, whether or not the
 * profile's creators list (trimmed by weight) still holds them. */
static int rank_follows_init(rank_state *st) {
    for (size_t i = 0; i < st->p->n_follows; i++) {
        uint32_t key = catalog_key(st->c, st->p->follows[i].id), *at;
        if (!key || key == CATALOG_NO_KEY) continue;
        if (!(at = rank_slotmap_at(&st->followed, key))) return AISLE_ENOMEM;
        *at = 1;
    }
    return AISLE_OK;
}

/* Marks the slots a result must leave out (the profile's items, dismissed,
 * seen and purchased, flagged by kind, and the request's excluded ids; ids
 * the catalog lacks cannot be offered), indexes the profile's creators,
 * categories and brands by catalog key and resolves the request's filter.
 * Needs the catalog's read lock. */
static int rank_index_profile(rank_state *st) {
    const rank_profile *p = st->p;
    const rank_filter *f = st->filter;
    int rc;
    const struct {
        const rank_entry *e;
        size_t n;
        uint32_t flag;
    } left_out[] = {{p->items, p->n_items, RANK_IN_ITEMS},
                    {p->dismissed, p->n_dismissed, RANK_IN_DISMISSED},
                    /* Seen and purchased sets outlast the weighted items
                     * (trimmed by weight): an old purchase is not offered. */
                    {p->seen, p->n_seen, RANK_IN_SEEN},
                    {p->purchased, p->n_purchased, RANK_IN_PURCHASED}};
    const struct {
        rank_slotmap *m;
        const rank_entry *e;
        size_t n;
    } named[] = {{&st->creators, p->creators, p->n_creators},
                 {&st->categories, p->categories, p->n_categories},
                 {&st->brands, p->brands, p->n_brands}};
    for (size_t k = 0; k < sizeof(left_out) / sizeof(left_out[0]); k++)
        for (size_t i = 0; i < left_out[k].n; i++) {
            uint32_t *mark;
            size_t slot;
            if (catalog_lookup(st->c, left_out[k].e[i].id, &slot) != AISLE_OK) continue;
            if (!(mark = rank_slotmap_at(&st->marks, slot))) return AISLE_ENOMEM;
            *mark |= left_out[k].flag;
        }
    for (size_t i = 0; f && i < f->n_exclude_item_ids; i++) {
        uint32_t *mark;
        size_t slot;
        if (catalog_lookup(st->c, f->exclude_item_ids[i], &slot) != AISLE_OK) continue;
        if (!(mark = rank_slotmap_at(&st->marks, slot))) return AISLE_ENOMEM;
        *mark |= RANK_EXCLUDED;
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
        for (size_t i = 0; i < named[k].n; i++) {
            uint32_t key = catalog_key(st->c, named[k].e[i].id), *at;
            /* A name no item has (or "") never matches an item's key. */
            if (!key || key == CATALOG_NO_KEY) continue;
            if (!(at = rank_slotmap_at(named[k].m, key))) return AISLE_ENOMEM;
            *at = (uint32_t)i + 1;
        }
    if ((rc = rank_follows_init(st)) != AISLE_OK) return rc;
    return rank_keyfilter_init(st->c, f, &st->kf);
}

/* What the request itself brings: the context item's slot, the lexical
 * scores of its words, a finite query vector. */
static int rank_request_parts(rank_state *st, char *err, size_t errlen) {
    const rank_request *req = st->req;
    int d = catalog_dim(st->c);
    if (req->context_item_id && *req->context_item_id &&
        catalog_lookup(st->c, req->context_item_id, &st->ctx) != AISLE_OK)
        return status_fail(AISLE_ENOTFOUND, err, errlen, "item '%s' is not in the catalog",
                           req->context_item_id);
    for (int j = 0; req->query_vector && j < d; j++)
        if (!isfinite(req->query_vector[j]))
            return status_fail(AISLE_EINVAL, err, errlen,
                               "query_vector[%d] is not a finite number", j);
    if (req->query && *req->query) {
        if (!(st->lex = malloc((catalog_slot_limit(st->c) + 1) * sizeof(float))) ||
            lexical_score(st->c, req->query, st->lex) < 0)
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    return AISLE_OK;
}

/* Whether creator id may be suggested: not one the profile engages with
 * or follows, and allowed by the request's creator lists. */
static int rank_creator_new(const rank_state *st, const char *id) {
    const rank_keyfilter *kf = &st->kf;
    uint32_t key = catalog_key(st->c, id), ci = rank_slotmap_get(&st->creators, key);
    if ((ci && st->p->creators[ci - 1].weight > 0) ||
        (key && key != CATALOG_NO_KEY && rank_slotmap_get(&st->followed, key)))
        return 0;
    return (!kf->one[RANK_KF_CREATOR] || kf->one[RANK_KF_CREATOR] == key) &&
           (!kf->n_in[RANK_KF_CREATOR] ||
            rank_key_in(kf->in[RANK_KF_CREATOR], kf->n_in[RANK_KF_CREATOR], key)) &&
           !rank_key_in(kf->out[RANK_KF_CREATOR], kf->n_out[RANK_KF_CREATOR], key);
}

/* The creator index's nearest creators to u that are new to the user
 * (asked deep enough to pass over the ones they engage with or follow). */
static int rank_suggest_creators(rank_state *st, char *err, size_t errlen) {
    int want = st->req->creators, k, n, rc = AISLE_OK;
    creators_hit *hits;
    if (want <= 0 || !st->personal) return AISLE_OK;
    if (want > RANK_MAX_CREATORS) want = RANK_MAX_CREATORS;
    k = want + (int)(st->p->n_creators < 256 ? st->p->n_creators : 256) +
        (int)(st->p->n_follows < 256 ? st->p->n_follows : 256);
    hits = malloc((size_t)k * sizeof(*hits));
    st->out->creators = calloc((size_t)want, sizeof(rank_creator));
    if (!hits || !st->out->creators) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    if ((n = creators_search(catalog_creators(st->c), st->u, k, hits)) < 0) {
        rc = status_fail(n, err, errlen, "creator search failed");
        goto fail;
    }
    for (int i = 0; i < n && st->out->n_creators < (size_t)want; i++) {
        rank_creator *cr = &st->out->creators[st->out->n_creators];
        if (!rank_creator_new(st, hits[i].id)) continue;
        *cr = (rank_creator){strdup(hits[i].id), strdup(hits[i].name), hits[i].score,
                             hits[i].n_items};
        st->out->n_creators++;
        if (!cr->id || !cr->name) {
            rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
            goto fail;
        }
    }
fail:
    free(hits);
    return rc;
}

int rank_recommend(catalog *c, const rank_request *req, rank_result *out, char *err,
                   size_t errlen) {
    static const rank_profile empty;
    rank_state st;
    rank_caps caps;
    int limit = req->limit, rc;

    memset(out, 0, sizeof(*out));
    memset(&st, 0, sizeof(st));
    memset(&caps, 0, sizeof(caps));
    st.c = c;
    st.req = req;
    st.p = req->profile ? req->profile : &empty;
    st.filter = req->filter;
    st.set = req->settings ? req->settings : rank_surface("");
    st.ctx = SIZE_MAX;
    st.floor = NAN;
    st.out = out;
    st.cap = limit < 1 ? 1 : limit > RANK_MAX_LIMIT ? RANK_MAX_LIMIT : (size_t)limit;
    caps.max[0] = st.set->cap_creator;
    caps.max[1] = st.set->cap_brand;
    caps.max[2] = st.set->cap_category;
    out->hits = calloc(st.cap, sizeof(rank_hit));
    if (!out->hits) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    catalog_read_begin(c);
    rc = rank_index_profile(&st) != AISLE_OK
             ? status_fail(AISLE_ENOMEM, err, errlen, "out of memory")
             : rank_request_parts(&st, err, errlen);
    if (!rc && rank_user_vector(&st) != AISLE_OK)
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (!rc) rc = rank_sources(&st, err, errlen);
    if (!rc) rc = rank_score(&st, err, errlen);
    if (!rc && rank_boost(&st) != AISLE_OK)
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (!rc && (rank_sort_pool(&st) != AISLE_OK || rank_select(&st, &caps) != AISLE_OK))
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (!rc) rc = rank_fill(&st, &caps, err, errlen);
    if (!rc && st.req->n_rules && rank_pin(&st) != AISLE_OK)
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (!rc) rc = rank_suggest_creators(&st, err, errlen);
    catalog_read_end(c);
    if (rc != AISLE_OK) goto fail;
    assert(out->n <= st.cap);
    rank_caps_free(&caps);
    rank_state_free(&st);
    return AISLE_OK;
fail:
    rank_caps_free(&caps);
    rank_state_free(&st);
    rank_result_free(out);
    return rc;
}
