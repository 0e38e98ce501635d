/* recommend: one profile read, the ranker, the lazily read popular list. */
#include "services/recommend/recommend.h"

#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"

/* Copies n profile entries into the view's entries at dst. */
static const rank_entry *recommend_view(const profile_entry *src, size_t n, rank_entry *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = (rank_entry){src[i].id, src[i].weight};
    return dst;
}

int recommend_user_load(profile_store *ps, const char *user_id, int64_t now_ms,
                        recommend_user *u, char *err, size_t errlen) {
    const profile *p = &u->p;
    rank_entry *e;
    int rc;

    memset(u, 0, sizeof(*u));
    u->now_ms = now_ms;
    /* The whole profile (bounded by the store's --max-items): every item
     * in it counts, and every item in it is left out of the answer. */
    if ((rc = profile_get(ps, user_id, now_ms, SIZE_MAX >> 1, &u->p, err, errlen)) != AISLE_OK)
        return rc;
    e = u->mem = malloc((p->n_items + p->n_creators + p->n_dismissed + p->n_seen +
                         p->n_purchased + 1) * sizeof(*e));
    if (!e) {
        recommend_user_clear(u);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    u->view = (rank_profile){
        .items = recommend_view(p->items, p->n_items, e),
        .n_items = p->n_items,
        .creators = recommend_view(p->creators, p->n_creators, e + p->n_items),
        .n_creators = p->n_creators,
        .dismissed = recommend_view(p->dismissed, p->n_dismissed,
                                    e + p->n_items + p->n_creators),
        .n_dismissed = p->n_dismissed,
        .seen = recommend_view(p->seen, p->n_seen,
                               e + p->n_items + p->n_creators + p->n_dismissed),
        .n_seen = p->n_seen,
        .purchased = recommend_view(p->purchased, p->n_purchased,
                                    e + p->n_items + p->n_creators + p->n_dismissed +
                                        p->n_seen),
        .n_purchased = p->n_purchased,
    };
    return AISLE_OK;
}

void recommend_user_clear(recommend_user *u) {
    profile_clear(&u->p);
    free(u->mem);
    memset(u, 0, sizeof(*u));
}

/* The popular list, read from Redis the first time the ranker asks. */
typedef struct recommend_popular {
    profile_store *ps;
    int64_t now_ms;
    profile_entry *read; /* owned */
    rank_entry *view;    /* owned */
    size_t n;
} recommend_popular;

static int recommend_popular_get(void *arg, const rank_entry **out, size_t *n, char *err,
                                 size_t errlen) {
    recommend_popular *pp = arg;
    int got = profile_popular(pp->ps, pp->now_ms, RECOMMEND_POPULAR_ITEMS, &pp->read, err,
                              errlen);
    if (got < 0) return got;
    pp->n = (size_t)got;
    if (!(pp->view = malloc((pp->n + 1) * sizeof(*pp->view))))
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    *out = recommend_view(pp->read, pp->n, pp->view);
    *n = pp->n;
    return AISLE_OK;
}

int recommend_rank(catalog *c, profile_store *ps, const recommend_user *u, int limit,
                   const rank_filter *filter, rank_result *out, char *err, size_t errlen) {
    recommend_popular pp = {ps, u->now_ms, NULL, NULL, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (limit < 0 || limit > RANK_MAX_LIMIT)
        return status_fail(AISLE_EINVAL, err, errlen, "limit %d is outside 0..%d", limit,
                           RANK_MAX_LIMIT);
    rank_request rq = {.profile = &u->view,
                       .popular = recommend_popular_get,
                       .popular_arg = &pp,
                       .limit = limit ? limit : RECOMMEND_DEFAULT_LIMIT,
                       .filter = filter};
    rc = rank_recommend(c, &rq, out, err, errlen);
    profile_entries_free(pp.read, pp.n);
    free(pp.view);
    return rc;
}

int recommend_for(catalog *c, profile_store *ps, const char *user_id, int limit,
                  const rank_filter *filter, rank_result *out, char *err, size_t errlen) {
    recommend_user u;
    int rc;
    memset(out, 0, sizeof(*out));
    if (limit < 0 || limit > RANK_MAX_LIMIT)
        return status_fail(AISLE_EINVAL, err, errlen, "limit %d is outside 0..%d", limit,
                           RANK_MAX_LIMIT);
    if ((rc = recommend_user_load(ps, user_id, clock_wall_ms(), &u, err, errlen)))
        return rc;
    rc = recommend_rank(c, ps, &u, limit, filter, out, err, errlen);
    recommend_user_clear(&u);
    return rc;
}

void recommend_scored_item(Aisle__V1__ScoredItem *out, const rank_hit *h) {
    aisle__v1__scored_item__init(out);
    out->item_id = h->item.item_id;
    out->score = h->score;
    /* protobuf-c's message fields are not const; packing only reads. */
    out->reasons = (char **)h->reasons;
    out->n_reasons = (size_t)h->n_reasons;
    out->title = h->item.title;
    out->creator_id = h->item.creator_id;
    out->category = h->item.category;
    out->price_cents = h->item.price_cents;
    out->brand = h->item.brand;
}

void recommend_response(const rank_result *rr, const char *request_id,
                        Aisle__V1__ScoredItem *items, Aisle__V1__ScoredItem **ptrs,
                        Aisle__V1__RecommendResponse *out) {
    aisle__v1__recommend_response__init(out);
    for (size_t i = 0; i < rr->n; i++) {
        recommend_scored_item(&items[i], &rr->hits[i]);
        ptrs[i] = &items[i];
    }
    out->items = ptrs;
    out->n_items = rr->n;
    out->request_id = (char *)request_id;
}
