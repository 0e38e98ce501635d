/* recommend: bounds, one profile read, the ranker, the lazily read
 * popular list, paging and the degraded answer. */
#include "services/recommend/recommend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/rules.h"
#include "ranker/scorer.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/recommend/hotfile.h"
#include "services/recommend/listcache.h"
#include "services/recommend/pagetoken.h"


/* Copies n profile entries into the view's entries at *dst, moving *dst
 * past them; returns where they start. */
static const rank_entry *recommend_view(const profile_entry *src, size_t n, rank_entry **dst) {
    rank_entry *start = *dst;
    for (size_t i = 0; i < n; i++) start[i] = (rank_entry){src[i].id, src[i].weight};
    *dst += n;
    return start;
}

int recommend_user_load(profile_store *ps, const char *user_id, int64_t now_ms,
                        recommend_user *u, char *err, size_t errlen) {
    const profile *p = &u->p;
    rank_profile *v = &u->view;
    rank_entry *e;
    int rc;

    memset(u, 0, sizeof(*u));
    u->now_ms = now_ms;
    /* The whole profile (bounded by the store's --max-items): every item
     * in it counts, and every item in it is left out of the answer. */
    if ((rc = profile_get(ps, user_id, now_ms, SIZE_MAX >> 1, &u->p, err, errlen)) != AISLE_OK)
        return rc;
    e = u->mem = malloc((p->n_items + p->n_creators + p->n_dismissed + p->n_seen +
                         p->n_purchased + p->n_categories + p->n_brands + p->n_follows + 1) *
                        sizeof(*e));
    if (!e) {
        recommend_user_clear(u);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    /* One statement each: the order of e's moves is the order written. */
    v->items = recommend_view(p->items, v->n_items = p->n_items, &e);
    v->creators = recommend_view(p->creators, v->n_creators = p->n_creators, &e);
    v->dismissed = recommend_view(p->dismissed, v->n_dismissed = p->n_dismissed, &e);
    v->seen = recommend_view(p->seen, v->n_seen = p->n_seen, &e);
    v->purchased = recommend_view(p->purchased, v->n_purchased = p->n_purchased, &e);
    v->categories = recommend_view(p->categories, v->n_categories = p->n_categories, &e);
    v->brands = recommend_view(p->brands, v->n_brands = p->n_brands, &e);
    v->follows = recommend_view(p->follows, v->n_follows = p->n_follows, &e);
    return AISLE_OK;
}

void recommend_user_clear(recommend_user *u) {
    profile_clear(&u->p);
    free(u->mem);
    memset(u, 0, sizeof(*u));
}

/* The listcache key of the popular list. */
#define RECOMMEND_POPULAR_KEY "popular"
/* Trending: the user's top categories (a new user: the shop's trending
 * ones), each list read this deep. */
#define RECOMMEND_TRENDING_CATEGORIES 3
#define RECOMMEND_TRENDING_ITEMS 100

static void recommend_degrade(recommend_answer *a, const char *why) {
    if (a->degraded) return;
    a->degraded = 1;
    /* The reason is cut to fit beside the sentence around it. */
    snprintf(a->degraded_reason, sizeof(a->degraded_reason),
             "not personalized: the profile store is unreachable (%.180s)", why);
}

/* The popular list for one call. It is read before the ranker takes the
 * catalog's lock, never inside it: a slow Redis must not hold the lock,
 * since catalog events (and, with writers preferred, every request behind
 * them) would wait for it. A list read less than RECOMMEND_CACHE_MS ago by
 * any call is used instead of Redis, so a busy replica asks Redis about once
 * a second. With degrade (a whole call's answer), a store that fails gives
 * the last good list (or none: the ranker then fills from the catalog) and
 * marks the answer degraded; without it (recommend_rank), the failure is
 * kept and returned if the ranker asks for the list. */
typedef struct recommend_popular {
    catalog *c; /* where the list's ids are looked up */
    profile_store *ps;
    int64_t now_ms;
    listcache_list *set; /* a reference, dropped by the call's owner */
    int degrade;
    recommend_answer *answer; /* marked degraded; NULL unless degrade */
    int rc;                   /* the read's failure, for the ranker */
    char err[256];
} recommend_popular;

static void recommend_popular_read(recommend_popular *pp) {
    profile_entry *read = NULL;
    int got;
    if ((pp->set = listcache_take(RECOMMEND_POPULAR_KEY, pp->now_ms, RECOMMEND_CACHE_MS))) return;
    got = pp->answer && pp->answer->degraded
              ? AISLE_EUNAVAIL /* the store already failed this call */
              : profile_popular(pp->ps, pp->now_ms, RECOMMEND_POPULAR_ITEMS, &read, pp->err,
                                sizeof(pp->err));
    if (got >= 0) {
        if (!(pp->set = listcache_list_new(pp->c, read, (size_t)got, pp->now_ms)))
            pp->rc = status_fail(AISLE_ENOMEM, pp->err, sizeof(pp->err), "out of memory");
        else
            listcache_put(RECOMMEND_POPULAR_KEY, pp->set);
    } else if (pp->degrade && (got == AISLE_EIO || got == AISLE_EUNAVAIL)) {
        recommend_degrade(pp->answer, got == AISLE_EIO ? pp->err : "down");
        pp->set = listcache_take(RECOMMEND_POPULAR_KEY, pp->now_ms, INT64_MAX);
    } else {
        pp->rc = got;
    }
}

/* The trending lists of one call and the references that keep them. */
typedef struct recommend_trending {
    rank_trending lists[RECOMMEND_TRENDING_CATEGORIES];
    size_t n;
    listcache_list *held[RECOMMEND_TRENDING_CATEGORIES + 1]; /* NULLs, or references */
} recommend_trending;

/* category's trending list (NULL: the trending categories), from the cache
 * when it was read in the last RECOMMEND_CACHE_MS, else from the store;
 * NULL when the store fails (trending is then left out: the popular read
 * is the one that marks an answer degraded) or memory runs out. */
static listcache_list *recommend_trending_list(catalog *c, profile_store *ps,
                                               const char *category, int64_t now_ms) {
    char key[CATALOG_MAX_FIELD + 32], err[256];
    profile_entry *e;
    listcache_list *l;
    int got;
    if (category) snprintf(key, sizeof(key), "trending:%s", category);
    else snprintf(key, sizeof(key), "trending-categories");
    if ((l = listcache_take(key, now_ms, RECOMMEND_CACHE_MS))) return l;
    got = category ? profile_trending(ps, category, now_ms, RECOMMEND_TRENDING_ITEMS, &e, err,
                                      sizeof(err))
                   : profile_trending_categories(ps, now_ms, RECOMMEND_TRENDING_CATEGORIES, &e,
                                                 err, sizeof(err));
    if (got < 0) {
        log_debug("recommend", "trending left out: %s", err);
        return NULL;
    }
    /* The trending categories are not items: nothing to look up. */
    if ((l = listcache_list_new(category ? c : NULL, e, (size_t)got, now_ms)))
        listcache_put(key, l);
    return l;
}

/* The trending lists for u (its top categories, else the shop's), when
 * the settings ask for trending and the store answered this call. */
static void recommend_trending_read(catalog *c, profile_store *ps, const rank_profile *u,
                                    const rank_settings *set, const recommend_answer *a,
                                    int64_t now_ms, recommend_trending *t) {
    const rank_entry *cats = u->categories;
    size_t n_cats = u->n_categories, h = 0;
    memset(t, 0, sizeof(*t));
    if (!set || set->budget[RANK_SRC_TRENDING] <= 0 || a->degraded) return;
    if (n_cats == 0 && (t->held[h] = recommend_trending_list(c, ps, NULL, now_ms))) {
        cats = t->held[h]->view;
        n_cats = t->held[h++]->n;
    }
    for (size_t i = 0; i < n_cats && t->n < RECOMMEND_TRENDING_CATEGORIES; i++) {
        listcache_list *l;
        if (strlen(cats[i].id) > CATALOG_MAX_FIELD ||
            !(l = recommend_trending_list(c, ps, cats[i].id, now_ms)))
            continue;
        t->held[h++] = l;
        t->lists[t->n++] = (rank_trending){cats[i].id, l->list};
    }
}

static void recommend_trending_drop(recommend_trending *t) {
    for (size_t i = 0; i < sizeof(t->held) / sizeof(t->held[0]); i++) listcache_drop(t->held[i]);
    memset(t, 0, sizeof(*t));
}

/* The ranker's callback: the list read beforehand, or its failure. */
static int recommend_popular_get(void *arg, rank_list *out, char *err, size_t errlen) {
    recommend_popular *pp = arg;
    if (pp->rc != AISLE_OK) return status_fail(pp->rc, err, errlen, "%s", pp->err);
    *out = pp->set ? pp->set->list : (rank_list){0};
    return AISLE_OK;
}

int recommend_rank(catalog *c, profile_store *ps, const recommend_user *u, int limit,
                   const rank_filter *filter, rank_result *out, char *err, size_t errlen) {
    recommend_popular pp = {.c = c, .ps = ps, .now_ms = u->now_ms};
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
    recommend_popular_read(&pp);
    rc = rank_recommend(c, &rq, out, err, errlen);
    listcache_drop(pp.set);
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

/* The API's Filter as the ranker's (pointing into f); 0 when f asks for
 * nothing, so an empty filter ranks exactly as none. */
static int recommend_filter(const Aisle__V1__Filter *f, rank_filter *out) {
    memset(out, 0, sizeof(*out));
    if (!f) return 0;
    /* protobuf-c's repeated strings are char **; the ranker only reads. */
    *out = (rank_filter){
        .max_price_cents = f->max_price_cents,
        .min_price_cents = f->min_price_cents,
        .exclude_categories = (const char *const *)f->exclude_categories,
        .n_exclude_categories = f->n_exclude_categories,
        .categories = (const char *const *)f->categories,
        .n_categories = f->n_categories,
        .brands = (const char *const *)f->brands,
        .n_brands = f->n_brands,
        .exclude_brands = (const char *const *)f->exclude_brands,
        .n_exclude_brands = f->n_exclude_brands,
        .creators = (const char *const *)f->creators,
        .n_creators = f->n_creators,
        .exclude_creators = (const char *const *)f->exclude_creators,
        .n_exclude_creators = f->n_exclude_creators,
        .exclude_item_ids = (const char *const *)f->exclude_item_ids,
        .n_exclude_item_ids = f->n_exclude_item_ids,
        .include_out_of_stock = f->include_out_of_stock,
    };
    return f->max_price_cents || f->min_price_cents || f->n_exclude_categories ||
           f->n_categories || f->n_brands || f->n_exclude_brands || f->n_creators ||
           f->n_exclude_creators || f->n_exclude_item_ids || f->include_out_of_stock;
}

static int recommend_check_filter(const Aisle__V1__Filter *f, char *err, size_t errlen) {
    const struct {
        const char *name;
        size_t n;
    } lists[] = {{"categories", f->n_categories},
                 {"exclude_categories", f->n_exclude_categories},
                 {"brands", f->n_brands},
                 {"exclude_brands", f->n_exclude_brands},
                 {"creators", f->n_creators},
                 {"exclude_creators", f->n_exclude_creators},
                 {"exclude_item_ids", f->n_exclude_item_ids}};
    size_t total = 0;
    if (f->min_price_cents < 0 || f->max_price_cents < 0)
        return status_fail(AISLE_EINVAL, err, errlen, "filter prices must not be negative");
    if (f->max_price_cents > 0 && f->min_price_cents > f->max_price_cents)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "filter min_price_cents %lld is above max_price_cents %lld",
                           (long long)f->min_price_cents, (long long)f->max_price_cents);
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if (lists[i].n > RECOMMEND_MAX_FILTER_VALUES)
            return status_fail(AISLE_EINVAL, err, errlen,
                               "filter %s has %zu values; the most is %d", lists[i].name,
                               lists[i].n, RECOMMEND_MAX_FILTER_VALUES);
        total += lists[i].n;
    }
    if (total > RECOMMEND_MAX_FILTER_TOTAL)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "filter has %zu values in all; the most is %d", total,
                           RECOMMEND_MAX_FILTER_TOTAL);
    return AISLE_OK;
}

/* Every bound of the request, before anything is read; sc holds the
 * surfaces. */
static int recommend_check(const catalog *c, const scorer *sc, const recommend_call *call,
                           char *err, size_t errlen) {
    size_t dim = (size_t)catalog_dim(c);
    if (!call->similar && !*call->user_id)
        return status_fail(AISLE_EINVAL, err, errlen, "user_id is empty");
    if (call->similar && !*call->context_item_id)
        return status_fail(AISLE_EINVAL, err, errlen, "item_id is empty");
    if (call->limit < 0 || call->limit > RANK_MAX_LIMIT)
        return status_fail(AISLE_EINVAL, err, errlen, "limit %d is outside 1..%d (0 means %d)",
                           call->limit, RANK_MAX_LIMIT, RECOMMEND_DEFAULT_LIMIT);
    if (!scorer_surface(sc, call->surface))
        return status_fail(AISLE_EINVAL, err, errlen,
                           "unknown surface '%s' (known: home, product_page, cart, or empty)",
                           call->surface);
    if (strlen(call->query) > RECOMMEND_MAX_QUERY)
        return status_fail(AISLE_EINVAL, err, errlen, "query is %zu bytes; the most is %d",
                           strlen(call->query), RECOMMEND_MAX_QUERY);
    if (call->n_query_vector && call->n_query_vector != dim)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "query_vector has %zu values; the catalog's dimension is %zu",
                           call->n_query_vector, dim);
    /* Non-finite values are the ranker's to refuse (rank_recommend). */
    return call->filter ? recommend_check_filter(call->filter, err, errlen) : AISLE_OK;
}

/* What a page token is bound to: everything but the limit and the token. */
static uint64_t recommend_fingerprint(const recommend_call *call) {
    pagetoken_fp f;
    uint8_t *packed = NULL;
    size_t n = call->filter ? aisle__v1__filter__get_packed_size(call->filter) : 0;
    pagetoken_fp_init(&f);
    pagetoken_fp_add(&f, &call->similar, sizeof(call->similar));
    pagetoken_fp_add(&f, call->user_id, strlen(call->user_id));
    pagetoken_fp_add(&f, call->surface, strlen(call->surface));
    pagetoken_fp_add(&f, call->query, strlen(call->query));
    pagetoken_fp_add(&f, call->context_item_id, strlen(call->context_item_id));
    pagetoken_fp_add(&f, call->query_vector, call->n_query_vector * sizeof(float));
    /* Packing is deterministic for one message; a failed allocation only
     * weakens the binding, it cannot let a token through unsigned. */
    if (n && (packed = malloc(n))) {
        aisle__v1__filter__pack(call->filter, packed);
        pagetoken_fp_add(&f, packed, n);
    }
    free(packed);
    return f.h;
}

/* The next page's token over served plus this page, or NULL when the page
 * was short (nothing more is eligible) or the session is full. */
static int recommend_next_token(uint64_t fp, int64_t now_ms, const uint32_t *served,
                                size_t n_served, const rank_result *rr, size_t limit,
                                char **out) {
    uint32_t *all;
    int rc;
    *out = NULL;
    if (rr->n < limit) return AISLE_OK;
    if (!(all = malloc((n_served + rr->n) * sizeof(*all) + 4))) return AISLE_ENOMEM;
    if (n_served) memcpy(all, served, n_served * sizeof(*all));
    for (size_t i = 0; i < rr->n; i++) all[n_served + i] = rank_item_hash(rr->hits[i].item.item_id);
    rc = pagetoken_write(fp, now_ms, all, n_served + rr->n, out);
    free(all);
    return rc == AISLE_EFULL ? AISLE_OK : rc;
}

/* The settings files (hotfile.h): the scorer's surfaces (ranker/scorer.h;
 * named by a flag, else AISLE_SCORER) and the merchandising rules
 * (ranker/rules.h; a flag only). */
static int recommend_scorer_load(const char *path, void **out, char *err, size_t errlen) {
    scorer *sc = NULL;
    int rc = scorer_load(path, &sc, err, errlen);
    *out = sc;
    return rc;
}

static int recommend_rules_load(const char *path, void **out, char *err, size_t errlen) {
    rules *r = NULL;
    int rc = rules_load(path, &r, err, errlen);
    *out = r;
    return rc;
}

static void recommend_rules_free(void *r) { rules_free(r); }

static hotfile recommend_scorer_file =
    HOTFILE_INIT("scorer", "AISLE_SCORER", recommend_scorer_load, free);
static hotfile recommend_rules_file =
    HOTFILE_INIT("rules", NULL, recommend_rules_load, recommend_rules_free);

/* The scorer files experiments name (a variant's ranker.weights_file),
 * each a hotfile of its own, kept for the process's life: a few distinct
 * paths at most, each loaded by the first call that names it. */
#define RECOMMEND_VARIANT_SCORERS 8
static struct {
    pthread_mutex_t mu;
    hotfile files[RECOMMEND_VARIANT_SCORERS];
    size_t n;
} recommend_variant_scorers = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The hotfile of path, made (and loaded) when new; NULL when the table is
 * full or the file cannot be loaded now (logged; the next call tries
 * again once it can). */
static hotfile *recommend_variant_scorer(const char *path) {
    hotfile *h = NULL;
    char err[256];
    pthread_mutex_lock(&recommend_variant_scorers.mu);
    for (size_t i = 0; i < recommend_variant_scorers.n && !h; i++)
        if (strcmp(recommend_variant_scorers.files[i].path, path) == 0)
            h = &recommend_variant_scorers.files[i];
    if (!h && recommend_variant_scorers.n < RECOMMEND_VARIANT_SCORERS) {
        hotfile *fresh = &recommend_variant_scorers.files[recommend_variant_scorers.n];
        *fresh = (hotfile)HOTFILE_INIT("variant scorer", NULL, recommend_scorer_load, free);
        if (hotfile_set(fresh, path, err, sizeof(err)) == AISLE_OK) {
            h = fresh;
            recommend_variant_scorers.n++;
        } else {
            log_warn("recommend", "an experiment's scorer file: %s; the server's is used", err);
            free(fresh->path);
            pthread_mutex_destroy(&fresh->mu);
        }
    }
    pthread_mutex_unlock(&recommend_variant_scorers.mu);
    return h;
}

/* The scorer the call ranks with, a reference on it and its hotfile (to
 * drop it with): the variant's file when it names one that loads, else the
 * server's. */
static const scorer *recommend_scorer_take(const recommend_call *call, int64_t now_ms,
                                           hotfile **file, hotfile_ref **ref) {
    const char *path = call->overrides ? call->overrides->scorer_file : NULL;
    *file = path && *path ? recommend_variant_scorer(path) : NULL;
    *ref = *file ? hotfile_take(*file, now_ms) : NULL;
    if (!*ref) {
        *file = &recommend_scorer_file;
        *ref = hotfile_take(*file, now_ms);
    }
    return hotfile_data(*ref);
}

int recommend_settings_files(const char *scorer_path, const char *rules_path, char *err,
                             size_t errlen) {
    int rc = AISLE_OK;
    if (scorer_path && *scorer_path)
        rc = hotfile_set(&recommend_scorer_file, scorer_path, err, errlen);
    if (rc == AISLE_OK) rc = hotfile_set(&recommend_rules_file, rules_path, err, errlen);
    return rc;
}

/* One creator's tally over a page. */
typedef struct recommend_tally {
    const char *id;
    const char *name;
    float score;
    int n_items;
    int followed; /* the user follows them */
} recommend_tally;

/* Followed creators first, then by score. */
static int recommend_tally_cmp(const void *a, const void *b) {
    const recommend_tally *x = a, *y = b;
    if (x->followed != y->followed) return y->followed - x->followed;
    return (x->score < y->score) - (x->score > y->score);
}

/* The page's creators, those the user follows first, then by the summed
 * scores of their items on it; those the user follows or engages with say
 * so. Linear scans: a page holds at most 500 items. */
static void recommend_creators(const rank_result *rr, const rank_profile *p,
                               recommend_answer *a) {
    recommend_tally all[RANK_MAX_LIMIT];
    size_t n = 0;
    for (size_t i = 0; i < rr->n; i++) {
        const char *id = rr->hits[i].item.creator_id;
        size_t k = 0;
        if (!*id) continue;
        while (k < n && strcmp(all[k].id, id)) k++;
        if (k == n)
            all[n++] = (recommend_tally){.id = id,
                                         .name = rank_creator_label(&rr->hits[i].item),
                                         .followed = rank_profile_follows(p, id)};
        all[k].score += rr->hits[i].score;
        all[k].n_items++;
    }
    if (n) qsort(all, n, sizeof(all[0]), recommend_tally_cmp);
    for (size_t k = 0; k < n && k < RECOMMEND_PAGE_CREATORS; k++) {
        recommend_creator *c = &a->creators[a->n_creators++];
        *c = (recommend_creator){.id = all[k].id, .name = all[k].name, .score = all[k].score,
                                 .n_items = all[k].n_items};
        for (size_t j = 0; j < p->n_creators && !c->engaged; j++)
            c->engaged = strcmp(p->creators[j].id, c->id) == 0 && p->creators[j].weight > 0;
        snprintf(c->reasons[c->n_reasons++], sizeof(c->reasons[0]),
                 "Made %d of the items above", c->n_items);
        if (all[k].followed || c->engaged)
            snprintf(c->reasons[c->n_reasons++], sizeof(c->reasons[0]), "%s",
                     all[k].followed ? "A creator you follow" : "A creator you engage with");
    }
}

/* After the page's creators, the index's (the ranker left out those the
 * user engages with) that the page does not show already. */
static void recommend_index_creators(const rank_result *rr, recommend_answer *a) {
    size_t listed = a->n_creators;
    for (size_t i = 0; i < rr->n_creators && a->n_creators < RECOMMEND_MAX_CREATORS; i++) {
        const rank_creator *rc = &rr->creators[i];
        recommend_creator *c;
        size_t k = 0;
        while (k < listed && strcmp(a->creators[k].id, rc->id)) k++;
        if (k < listed) continue;
        c = &a->creators[a->n_creators++];
        *c = (recommend_creator){.id = rc->id, .name = *rc->name ? rc->name : rc->id,
                                 .score = rc->score};
        snprintf(c->reasons[c->n_reasons++], sizeof(c->reasons[0]),
                 "Makes items like the ones you viewed");
        snprintf(c->reasons[c->n_reasons++], sizeof(c->reasons[0]), "%zu item%s in the shop",
                 rc->n_items, rc->n_items == 1 ? "" : "s");
    }
}

void recommend_overrides_none(recommend_overrides *o) {
    o->mmr_lambda = -1;
    o->cap_creator = o->cap_category = -1;
    for (int i = 0; i < RANK_SRC_COUNT; i++) o->budget[i] = -1;
    o->model = NULL;
    o->scorer_file = NULL;
}

/* base with o applied, in *tmp. */
static const rank_settings *recommend_override(const rank_settings *base,
                                               const recommend_overrides *o, rank_settings *tmp) {
    *tmp = *base;
    if (o->mmr_lambda >= 0) tmp->mmr_lambda = o->mmr_lambda;
    if (o->cap_creator >= 0) tmp->cap_creator = o->cap_creator;
    if (o->cap_category >= 0) tmp->cap_category = o->cap_category;
    for (int i = 0; i < RANK_SRC_COUNT; i++)
        if (o->budget[i] >= 0) tmp->budget[i] = o->budget[i];
    return tmp;
}

int recommend_answer_call(catalog *c, profile_store *ps, const recommend_call *call,
                          int64_t now_ms, recommend_answer *out, char *err, size_t errlen) {
    recommend_user u;
    recommend_popular pp = {.c = c, .ps = ps, .now_ms = now_ms, .degrade = 1, .answer = out};
    recommend_trending tr = {0};
    rank_filter f;
    uint32_t *served = NULL;
    size_t n_served = 0;
    hotfile_ref *sc, *rl;
    hotfile *scf;
    const scorer *scr;
    uint64_t fp;
    int rc, limit;

    memset(out, 0, sizeof(*out));
    memset(&u, 0, sizeof(u));
    scr = recommend_scorer_take(call, now_ms, &scf, &sc);
    rl = hotfile_take(&recommend_rules_file, now_ms);
    if ((rc = recommend_check(c, scr, call, err, errlen)) != AISLE_OK) goto fail;
    fp = recommend_fingerprint(call);
    if (*call->page_token && (rc = pagetoken_read(call->page_token, fp, now_ms, &served,
                                                  &n_served, err, errlen)) != AISLE_OK)
        goto fail;
    if (*call->user_id) {
        rc = recommend_user_load(ps, call->user_id, now_ms, &u, err, errlen);
        if (rc == AISLE_EIO || rc == AISLE_EUNAVAIL) {
            recommend_degrade(out, err);
            u.now_ms = now_ms;
        } else if (rc != AISLE_OK) {
            goto fail;
        }
    }
    limit = call->limit ? call->limit : RECOMMEND_DEFAULT_LIMIT;
    const char *surface = call->similar ? "similar" : call->surface;
    const rank_settings *settings = scorer_surface(scr, surface);
    size_t n_rules;
    const rank_rule *surface_rules = rules_for(hotfile_data(rl), surface, &n_rules);
    rank_settings changed;
    if (call->overrides && settings) settings = recommend_override(settings, call->overrides, &changed);
    recommend_popular_read(&pp);
    recommend_trending_read(c, ps, &u.view, settings, out, now_ms, &tr);
    rank_request rq = {
        .profile = &u.view,
        .popular = recommend_popular_get,
        .popular_arg = &pp,
        .limit = limit,
        .filter = recommend_filter(call->filter, &f) ? &f : NULL,
        .settings = settings,
        .query = call->query,
        .query_vector = call->n_query_vector ? call->query_vector : NULL,
        .context_item_id = call->context_item_id,
        .served = served,
        .n_served = n_served,
        .model = call->overrides ? call->overrides->model : NULL,
        .creators = RECOMMEND_INDEX_CREATORS,
        .trending = tr.lists,
        .n_trending = tr.n,
        .rules = surface_rules,
        .n_rules = n_rules,
    };
    if ((rc = rank_recommend(c, &rq, &out->rr, err, errlen)) != AISLE_OK) goto fail;
    recommend_creators(&out->rr, &u.view, out);
    recommend_index_creators(&out->rr, out);
    if ((rc = recommend_next_token(fp, now_ms, served, n_served, &out->rr, (size_t)limit,
                                   &out->next_page_token)) != AISLE_OK) {
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    rc = AISLE_OK;
fail:
    recommend_trending_drop(&tr);
    listcache_drop(pp.set);
    hotfile_drop(scf, sc);
    hotfile_drop(&recommend_rules_file, rl);
    free(served);
    recommend_user_clear(&u);
    return rc;
}

void recommend_answer_clear(recommend_answer *a) {
    rank_result_free(&a->rr);
    free(a->next_page_token);
    memset(a, 0, sizeof(*a));
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
    out->creator_name = (char *)rank_creator_label(&h->item);
    out->category = h->item.category;
    out->price_cents = h->item.price_cents;
    out->brand = h->item.brand;
    out->sources = (char **)h->source_names;
    out->n_sources = (size_t)h->n_sources;
}

void recommend_response(recommend_answer *a, const char *request_id, recommend_msgs *m,
                        Aisle__V1__RecommendResponse *out) {
    aisle__v1__recommend_response__init(out);
    for (size_t i = 0; i < a->rr.n; i++) {
        recommend_scored_item(&m->items[i], &a->rr.hits[i]);
        m->ptrs[i] = &m->items[i];
    }
    for (size_t k = 0; k < a->n_creators; k++) {
        recommend_creator *c = &a->creators[k];
        Aisle__V1__ScoredCreator *sc = &m->creators[k];
        aisle__v1__scored_creator__init(sc);
        /* protobuf-c's fields are not const; packing only reads. */
        sc->creator_id = (char *)c->id;
        sc->name = (char *)c->name;
        sc->score = c->score;
        for (int r = 0; r < c->n_reasons; r++) c->reason_ptrs[r] = c->reasons[r];
        sc->reasons = c->reason_ptrs;
        sc->n_reasons = (size_t)c->n_reasons;
        m->creator_ptrs[k] = sc;
    }
    out->items = m->ptrs;
    out->n_items = a->rr.n;
    out->creators = m->creator_ptrs;
    out->n_creators = a->n_creators;
    out->request_id = (char *)request_id;
    out->next_page_token = a->next_page_token ? a->next_page_token : "";
    out->degraded = a->degraded;
    out->degraded_reason = a->degraded_reason;
}
