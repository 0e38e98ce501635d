/* snapscore: the profile source and bounded scoring of a learned
 * snapshot's exact surface: the profile search, the profile items'
 * neighbour sums (st->ns), the pruned offer of neighbour-only candidates
 * and the threshold pass that scores only those that may reach the page.
 * rank.c runs it on its own per-call state (ranker/rank_state.h). */
#include "ranker/snapscore.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/scratch.h"
#include "retrieval/vec.h"

/* Whether the page is simply the pool's top scores under the settings'
 * hand weights (no model, MMR, caps or boosts) and the profile search gave
 * a floor: then a candidate only the neighbour lists brought scores at most
 * what it would with u·Q[j] at the floor, which snapscore_score_bounded uses to
 * skip most of the full-dimension products. */
int snapscore_can_bound(const rank_state *st) {
    const rank_settings *set = st->set;
    return !st->req->model && set->mmr_lambda >= 1 && !set->cap_creator && !set->cap_brand &&
           !set->cap_category && !st->req->n_rules && set->weight[RANK_SRC_PROFILE] >= 0 &&
           st->personal && !isnan(st->floor);
}

/* Whether the profile source may leave a neighbour-only candidate out of
 * the pool: the page is the pool's top (snapscore_can_bound), no other source
 * runs for this request (none can bring the item later) and the settings
 * do not weigh the neighbour share (its scale, the pool's best, is not
 * known yet). The exact surface without words, vector or context item
 * qualifies: the quality bench's and a learned snapshot's surface. */
static int snapscore_can_prune(const rank_state *st) {
    const rank_settings *set = st->set;
    const rank_request *req = st->req;
    const int later[] = {RANK_SRC_NEIGHBOURS, RANK_SRC_CREATORS, RANK_SRC_POPULAR,
                         RANK_SRC_TRENDING};
    if (!snapscore_can_bound(st) || set->weight[RANK_SRC_NEIGHBOURS] != 0) return 0;
    for (size_t k = 0; k < sizeof(later) / sizeof(later[0]); k++)
        if (set->budget[later[k]] > 0) return 0;
    return !(st->lex && set->budget[RANK_SRC_QUERY] > 0) &&
           !(req->query_vector && set->budget[RANK_SRC_VECTOR] > 0) &&
           !(st->ctx != SIZE_MAX && set->budget[RANK_SRC_CONTEXT] > 0);
}

/* The hand scores of the candidates pooled so far (the profile search's
 * hits, whose scores are final) into heap, a min-heap of at most a page
 * of the best; returns how many it holds. snapscore_score_bounded drops any
 * neighbour-only candidate whose bound falls below its page, which holds
 * these scores or better ones, so one below heap[0] of a full heap cannot
 * reach the page either. */
static size_t snapscore_prune_threshold(const rank_state *st, float *heap) {
    size_t n = 0;
    for (size_t i = 0; i < st->npool; i++) {
        rank_cand cd = st->pool[i];
        rank_features(st, &cd, st->best);
        rank_heap_push(heap, &n, st->cap, rank_hand_score(st->set, cd.f));
    }
    return n;
}

/* At least snapscore_score_bounded's bound of a neighbour-only candidate whose
 * sum plus bias is g (st->ns[j] + b[j]): the creator share and the
 * affinities at their most helpful values for this profile (0 when it has
 * no creators, categories or brands; the hand score rises with each, and
 * float arithmetic is monotone), so it reads none of the profile's maps.
 * It rises with g, which snapscore_loose_cut uses. */
static float snapscore_loose_bound(const rank_state *st, float g) {
    const rank_settings *set = st->set;
    const rank_profile *p = st->p;
    float f[RANK_N_FEATURES] = {0};
    f[RANK_F_PERSONAL] = st->floor + g / (float)st->wsum;
    f[RANK_F_CREATOR] = p->n_creators > 0;
    f[RANK_F_CATEGORY] = set->w_category > 0 && p->n_categories > 0;
    f[RANK_F_BRAND] = set->w_brand > 0 && p->n_brands > 0;
    return rank_hand_score(set, f);
}

/* Floats as unsigned keys in the same order (NaNs aside), and back. */
static uint32_t snapscore_float_key(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

static float snapscore_key_float(uint32_t k) {
    uint32_t u = k & 0x80000000u ? k & 0x7fffffffu : ~k;
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

/* A cut c such that every g < c has snapscore_loose_bound(g) < t: one bisection
 * over the floats a call, so the pass over thousands of neighbour entries
 * tests each with one comparison instead of a hand score. -INFINITY when
 * even the lowest float's bound reaches t. */
static float snapscore_loose_cut(const rank_state *st, float t) {
    uint32_t lo = snapscore_float_key(-FLT_MAX), hi = snapscore_float_key(FLT_MAX);
    if (!(snapscore_loose_bound(st, -FLT_MAX) < t)) return -INFINITY;
    if (snapscore_loose_bound(st, FLT_MAX) < t) return INFINITY;
    while (hi - lo > 1) { /* loose(lo) < t ≤ loose(hi) */
        uint32_t mid = lo + (hi - lo) / 2;
        if (snapscore_loose_bound(st, snapscore_key_float(mid)) < t) lo = mid;
        else hi = mid;
    }
    return snapscore_key_float(hi);
}

/* vec_hits ordered by id alone. */
static int snapscore_hit_id_cmp(const void *a, const void *b) {
    uint32_t x = ((const vec_hit *)a)->id, y = ((const vec_hit *)b)->id;
    return (x > y) - (x < y);
}

/* Profile item i's neighbour list into *nb, *w; returns its length (0
 * when the catalog does not know the item). */
static size_t snapscore_profile_list(const rank_state *st, size_t i, const uint32_t **nb,
                                     const float **w) {
    size_t m = 0;
    if (st->pslots[i] != SIZE_MAX) catalog_neighbours(st->c, st->pslots[i], nb, w, &m);
    return m;
}

/* The hand score of the neighbour-only candidate at slot with its real
 * u·Q[j] (the product into *search): what the pruned offer's page holds
 * for it. */
static float snapscore_real_score(rank_state *st, size_t slot, float *search) {
    rank_cand cd = {.slot = slot, .sources = 1u << RANK_SRC_NEIGHBOURS};
    cd.search = *search = vec_dot(st->u, catalog_vector(st->c, slot), catalog_dim(st->c));
    cd.raw[RANK_SRC_NEIGHBOURS] = st->ns[slot];
    rank_features(st, &cd, st->best);
    return rank_hand_score(st->set, cd.f);
}

/* The eligible, unpooled heads of the profile items' lists (their
 * heaviest entries, lists come heaviest first; about two pages in all)
 * into heads as (g, slot), deduplicated through pooled; returns how many. */
static size_t snapscore_list_heads(rank_state *st, unsigned char *pooled, vec_hit *heads) {
    const rank_profile *p = st->p;
    assert(p->n_items > 0); /* the sums ran: some profile item has a list */
    size_t limit = catalog_slot_limit(st->c), n = 0;
    size_t per = (2 * st->cap + p->n_items - 1) / p->n_items;
    for (size_t i = 0; i < p->n_items; i++) {
        const uint32_t *nb;
        const float *w;
        size_t m = snapscore_profile_list(st, i, &nb, &w);
        for (size_t e = 0; e < m && e < per; e++) {
            size_t j = nb[e];
            if (j >= limit || pooled[j] || !rank_eligible(st, j)) continue;
            pooled[j] = 1;
            heads[n++] = (vec_hit){st->ns[j] + catalog_bias(st->c, j), (uint32_t)j};
        }
    }
    for (size_t k = 0; k < n; k++) pooled[heads[k].id] = 0;
    return n;
}

/* A score t below which no neighbour-only candidate's bound is taken by
 * the pruned offer's pass, from the lists' heads, which is what lets the
 * cut leave most of the listed items out of the pass's heap. The pass
 * takes candidates in order of g while the page's last real score does
 * not pass their bound; once it reaches a candidate x, it has taken every
 * head of a larger g, so its page holds the search hits and those heads
 * at least. So for the k heads of the largest g, scored for real onto a
 * copy of the search hits' page (top, n_top of st->cap; page is scratch
 * for st->cap + 1), every x whose bound is below both that page's last
 * score and the k-th head's bound is one the pass would stop at or before:
 * t is the best such score over k, -INFINITY when no page fills. The pass
 * itself still starts from the search hits' page, so the candidates it
 * takes, and the page, are the same with or without t, even where an
 * approximate search leaves the bounds short (IVF). */
static float snapscore_heads_threshold(rank_state *st, const float *top, size_t n_top,
                                       unsigned char *pooled, vec_hit *heads, float *page) {
    size_t n_heads = snapscore_list_heads(st, pooled, heads);
    float t = -INFINITY, search;
    memcpy(page, top, n_top * sizeof(*page));
    vec_hits_heap(heads, n_heads);
    while (n_heads) {
        vec_hit h = vec_hits_pop(heads, &n_heads);
        float bound = snapscore_loose_bound(st, h.score);
        if (!(bound > t)) break; /* no later k does better */
        rank_heap_push(page, &n_top, st->cap, snapscore_real_score(st, h.id, &search));
        if (n_top == st->cap) t = fmaxf(t, fminf(page[0], bound));
    }
    return t;
}

/* snapscore_offer_neighbours when snapscore_can_prune holds: a neighbour-only
 * candidate enters the pool only if its real score may reach the page.
 * Those whose sum passes the loose cut of the page so far (or of the
 * lists' heads, snapscore_heads_threshold) are taken in
 * order of their bound (a heap on g), each scored with its real u·Q[j]
 * into the page's min-heap, until the next bound falls below the page's
 * last score; the taken are then offered in order of first appearance
 * with that product as their search score (so snapscore_score_bounded scores
 * them without computing it again), and the page and its ties are what
 * offering all would give. st->pruned_best becomes the best sum of any
 * eligible listed item: what the pool's best would be had every one
 * entered. taken holds (u·Q[j] or NAN for a search hit, touched index). */
static int snapscore_offer_pruned(rank_state *st, float *top, unsigned char *pooled,
                                  vec_hit *cand, vec_hit *taken) {
    size_t n_top = snapscore_prune_threshold(st, top), n_cand = 0, n_taken = 0;
    for (size_t i = 0; i < st->npool; i++) pooled[st->pool[i].slot] = 1;
    float t = snapscore_heads_threshold(st, top, n_top, pooled, cand, top + st->cap + 1);
    if (n_top == st->cap) t = fmaxf(t, top[0]);
    float cut = snapscore_loose_cut(st, t);
    for (size_t k = 0; k < st->n_touched; k++) {
        size_t j = st->touched[k];
        float g = st->ns[j] + catalog_bias(st->c, j);
        if (st->ns[j] > st->pruned_best && rank_eligible(st, j)) st->pruned_best = st->ns[j];
        if (pooled[j]) taken[n_taken++] = (vec_hit){NAN, (uint32_t)k};
        else if (!(g < cut)) cand[n_cand++] = (vec_hit){g, (uint32_t)k};
    }
    for (size_t i = 0; i < st->npool; i++) pooled[st->pool[i].slot] = 0; /* scratch: zeroed */
    vec_hits_heap(cand, n_cand);
    while (n_cand && (n_top < st->cap || !(snapscore_loose_bound(st, cand[0].score) < top[0]))) {
        uint32_t k = vec_hits_pop(cand, &n_cand).id;
        float search;
        if (!rank_eligible(st, st->touched[k])) continue;
        rank_heap_push(top, &n_top, st->cap, snapscore_real_score(st, st->touched[k], &search));
        taken[n_taken++] = (vec_hit){search, k};
    }
    qsort(taken, n_taken, sizeof(*taken), snapscore_hit_id_cmp);
    for (size_t i = 0; i < n_taken; i++) {
        size_t j = st->touched[taken[i].id];
        int got = rank_offer(st, j, RANK_SRC_NEIGHBOURS, st->ns[j]);
        if (got < 0) return AISLE_ENOMEM;
        if (isnan(taken[i].score)) continue;
        /* Eligible and not pooled before: rank_offer appended it. */
        assert(got == 1 && st->pool[st->npool - 1].slot == j);
        st->pool[st->npool - 1].search = taken[i].score;
    }
    return AISLE_OK;
}

/* Offers each item of the profile items' neighbour lists (st->touched, in
 * order of first appearance) with its sum st->ns[j]; when snapscore_can_prune
 * holds, only those that may reach the page (snapscore_offer_pruned): on a
 * learned snapshot most of the thousands listed cannot. */
static int snapscore_offer_neighbours(rank_state *st, char *err, size_t errlen) {
    float *top;
    unsigned char *pooled;
    vec_hit *cand;
    vec_hit *taken;
    int rc = AISLE_OK;
    if (!snapscore_can_prune(st)) {
        for (size_t k = 0; k < st->n_touched && rc == AISLE_OK; k++)
            if (rank_offer(st, st->touched[k], RANK_SRC_NEIGHBOURS, st->ns[st->touched[k]]) < 0)
                rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        return rc;
    }
    /* Scratch of the pruned offer, freed here; the marks are the
     * neighbour sums' (zero between uses). */
    top = malloc(2 * (st->cap + 1) * sizeof(*top)); /* and the heads' page */
    pooled = st->scr->mark;
    cand = malloc((st->n_touched + 1) * sizeof(*cand));
    taken = malloc((st->n_touched + 1) * sizeof(*taken));
    if (!top || !cand || !taken || snapscore_offer_pruned(st, top, pooled, cand, taken))
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    free(top);
    free(cand);
    free(taken);
    return rc;
}

/* One list's wt·N(j) (m entries of nb, w) into ns, each slot not yet
 * seen appended to touched at n; returns the new n. Through st, every
 * store to seen (bytes, which may alias anything) made the loop load and
 * store st->n_touched and st->ns again: these locals stay in registers. */
static size_t snapscore_add_list(float *restrict ns, unsigned char *restrict seen,
                                 uint32_t *restrict touched, size_t n, const uint32_t *nb,
                                 const float *w, size_t m, float wt, size_t limit) {
    for (size_t e = 0; e < m; e++) {
        size_t j = nb[e];
        if (j >= limit) continue;
        touched[n] = (uint32_t)j;
        n += !seen[j];
        seen[j] = 1;
        ns[j] += wt * w[e];
    }
    return n;
}

/* Σ_i w_i·N_i(j) over the profile items' neighbour lists into st->ns by
 * slot, and each listed slot once, in order of first appearance, into
 * st->touched (touched owned by st, ns lent by the thread's scratch,
 * st->scr, until rank_state_free; both left NULL when no list has an
 * entry).
 * The first-appearance test is branch-free: on a learned snapshot half
 * of some 27,000 entries a call are firsts, in no predictable order. */
static int snapscore_neighbour_sums(rank_state *st) {
    const rank_profile *p = st->p;
    const uint32_t *nb;
    const float *w;
    size_t limit = catalog_slot_limit(st->c), total = 0;
    unsigned char *seen;
    for (size_t i = 0; i < p->n_items; i++) total += snapscore_profile_list(st, i, &nb, &w);
    if (!total) return AISLE_OK;
    st->touched = malloc(total * sizeof(*st->touched));
    if (!st->touched || !(st->scr = rank_scratch_take(limit))) return AISLE_ENOMEM;
    st->ns = st->scr->sum;
    seen = st->scr->mark; /* zeroed again below */
    for (size_t i = 0; i < p->n_items; i++) {
        size_t m = snapscore_profile_list(st, i, &nb, &w);
        st->n_touched = snapscore_add_list(st->ns, seen, st->touched, st->n_touched, nb, w, m,
                                           (float)p->items[i].weight, limit);
    }
    for (size_t k = 0; k < st->n_touched; k++) seen[st->touched[k]] = 0;
    return AISLE_OK;
}

/* The profile source: the index's top hits for u, then every item in a
 * profile item's neighbour list, with Σ_i w_i·N_i(j) into st->ns. With
 * non-negative neighbour weights nothing outside both can beat the last
 * index hit on the personal score. */
int snapscore_source_profile(rank_state *st, char *err, size_t errlen) {
    int rc;
    if (!st->personal) return AISLE_OK;
    rc = rank_offer_search(st, st->u, rank_depth(st, st->set->budget[RANK_SRC_PROFILE]),
                           RANK_SRC_PROFILE, 1, err, errlen);
    if (rc == AISLE_OK && snapscore_neighbour_sums(st) != AISLE_OK)
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return rc == AISLE_OK && st->ns ? snapscore_offer_neighbours(st, err, errlen) : rc;
}

/* The threshold pass. Every candidate but the neighbour-only ones is
 * scored in full. A neighbour-only one is scored first with the search's
 * floor in place of u·Q[j] (an upper bound: the hand score rises with the
 * personal score, and float addition is monotone); in order of that bound,
 * each gets its real product until the bound falls below the page's
 * st->cap-th best real score, and the rest leave the pool: they cannot
 * reach the page. The page, and each survivor's score and features, are
 * what scoring the whole pool gives. */
int snapscore_score_bounded(rank_state *st, char *err, size_t errlen) {
    const unsigned only_nb = 1u << RANK_SRC_NEIGHBOURS;
    vec_hit *nb = malloc((st->npool + 1) * sizeof(*nb)); /* bounds by pool place */
    float *top = malloc((st->cap + 1) * sizeof(*top)); /* a min-heap of the best real scores */
    size_t n_nb = 0, n_top = 0, kept = 0;
    unsigned char *keep = calloc(st->npool + 1, 1);
    if (!nb || !top || !keep) {
        free(nb);
        free(top);
        free(keep);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    for (size_t i = 0; i < st->npool; i++) {
        rank_cand *cd = &st->pool[i];
        int bounded = cd->sources == only_nb && isnan(cd->search);
        if (bounded) cd->search = st->floor;
        rank_features(st, cd, st->best);
        cd->score = rank_hand_score(st->set, cd->f);
        if (bounded) {
            cd->search = NAN;
            nb[n_nb++] = (vec_hit){cd->score, (uint32_t)i};
        } else {
            keep[i] = 1;
            rank_heap_push(top, &n_top, st->cap, cd->score);
        }
    }
    /* In bound order, popped from a heap: the loop stops after the few
     * that can still reach the page. */
    vec_hits_heap(nb, n_nb);
    while (n_nb && (n_top < st->cap || !(nb[0].score < top[0]))) {
        vec_hit b = vec_hits_pop(nb, &n_nb);
        rank_cand *cd = &st->pool[b.id];
        rank_features(st, cd, st->best);
        cd->score = rank_hand_score(st->set, cd->f);
        keep[b.id] = 1;
        rank_heap_push(top, &n_top, st->cap, cd->score);
    }
    /* Survivors keep their order, so ties sort as they would in the whole
     * pool. (Pool indexes in st->at are stale from here: nothing after
     * scoring reads them when snapscore_can_bound holds, as there are no boosts.) */
    for (size_t i = 0; i < st->npool; i++)
        if (keep[i]) st->pool[kept++] = st->pool[i];
    st->npool = kept;
    free(nb);
    free(top);
    free(keep);
    return AISLE_OK;
}

void snapscore_release(rank_state *st) {
    /* ns goes back zeroed: every slot it holds is in touched. */
    for (size_t k = 0; st->ns && k < st->n_touched; k++) st->ns[st->touched[k]] = 0;
    rank_scratch_give(st->scr);
    free(st->touched);
}
