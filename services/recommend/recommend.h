/* recommend: the Recommend and SimilarItems use cases, below any transport.
 *
 * Check the request's bounds, read the user's profile once, hand the ranker
 * a plain view of it with the surface's settings, let it read the popular
 * list from Redis only when it needs it, page with signed tokens
 * (pagetoken.h), and build the answer's messages. When Redis cannot be
 * reached the answer is not an error: it is non-personalized (the popular
 * list last read, kept in memory, else any eligible items) and marked
 * degraded with the reason. gRPC handlers, Shop's sub-agents and the demo
 * all go through here, so a profile read once per call is seen the same by
 * every part of that call. */
#ifndef AISLE_RECOMMEND_H
#define AISLE_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/aisle.pb-c.h"
#include "ranker/rank.h"
#include "retrieval/catalog.h"
#include "services/profile/profile.h"

#define RECOMMEND_DEFAULT_LIMIT 10
#define RECOMMEND_POPULAR_ITEMS 200 /* popular list read when filling */
#define RECOMMEND_CACHE_MS 1000     /* how long calls share one read of it */
#define RECOMMEND_MAX_FILTER_VALUES 256 /* in one list of a Filter */
#define RECOMMEND_MAX_FILTER_TOTAL 1024 /* in all its lists together */
#define RECOMMEND_MAX_QUERY 1000        /* bytes of a request's words */

/* One user's profile as read at one moment, and the ranker's view of it.
 * Read-only once loaded, so threads working on one call may share it. */
typedef struct recommend_user {
    profile p;         /* owned; freed by recommend_user_clear */
    rank_entry *mem;   /* owned: the view's entries */
    rank_profile view; /* points into p and mem */
    int64_t now_ms;    /* the time it was read for */
} recommend_user;

/* Reads the whole profile of user_id (bounded by the store's settings) as
 * of now_ms into u. Returns AISLE_OK (an unknown user gives an empty
 * profile), AISLE_EINVAL (bad user_id), AISLE_EIO (Redis) or AISLE_ENOMEM,
 * with err set; u is then empty. Clear with recommend_user_clear. */
int recommend_user_load(profile_store *ps, const char *user_id, int64_t now_ms,
                        recommend_user *u, char *err, size_t errlen);
void recommend_user_clear(recommend_user *u);

/* Ranks for u over c, keeping items that pass filter (NULL = all); ps
 * supplies the popular list when the result needs filling. limit must be
 * 0 (the default) to RANK_MAX_LIMIT. Returns AISLE_OK, AISLE_EINVAL (limit),
 * AISLE_EIO (Redis while filling), AISLE_ENOMEM or AISLE_EINTERNAL, with err
 * set. The caller frees out with rank_result_free. */
int recommend_rank(catalog *c, profile_store *ps, const recommend_user *u, int limit,
                   const rank_filter *filter, rank_result *out, char *err, size_t errlen);

/* recommend_user_load, then recommend_rank, for a one-shot answer. */
int recommend_for(catalog *c, profile_store *ps, const char *user_id, int limit,
                  const rank_filter *filter, rank_result *out, char *err, size_t errlen);

/* Settings an experiment or a toggle changes for one call (-1, or a
 * negative lambda: keep the surface's). */
typedef struct recommend_overrides {
    float mmr_lambda;
    int cap_creator, cap_category;
    int budget[RANK_SRC_COUNT];
    ltr_model *model; /* the learned ranker to score with (borrowed); NULL: hand weights */
    /* A scorer file (ranker/scorer.h) to take the surfaces from instead of
     * the server's, loaded on first use and read again when it changes;
     * NULL, or a file that cannot be loaded: the server's. Borrowed. */
    const char *scorer_file;
} recommend_overrides;

/* Every field "keep the surface's". */
void recommend_overrides_none(recommend_overrides *o);

/* A Recommend or SimilarItems request as decoded (all borrowed). */
typedef struct recommend_call {
    const char *user_id; /* may be "" only when similar */
    int limit;           /* 0 = RECOMMEND_DEFAULT_LIMIT, else 1..RANK_MAX_LIMIT */
    const Aisle__V1__Filter *filter; /* NULL = none */
    const char *query;
    const float *query_vector;
    size_t n_query_vector;
    const char *context_item_id;
    const char *surface;
    const char *page_token;
    int similar; /* SimilarItems: context_item_id is the item */
    const recommend_overrides *overrides; /* NULL: the surface as it is */
} recommend_call;

#define RECOMMEND_PAGE_CREATORS 5  /* the page's own creators listed beside it */
#define RECOMMEND_INDEX_CREATORS 3 /* then the creator index's new ones */
#define RECOMMEND_MAX_CREATORS (RECOMMEND_PAGE_CREATORS + RECOMMEND_INDEX_CREATORS)

/* A creator suggested beside a page: one of the page's (its items by them
 * and whether the user already engages with them), or one the creator
 * index finds near the user's tastes whom they do not engage with yet. */
typedef struct recommend_creator {
    const char *id;   /* borrowed from the answer's rank_result */
    const char *name; /* likewise: the display name, else the id */
    float score;      /* the page's: their items' summed scores; the index's:
                       * the profile vector · their mean item vector */
    int n_items;
    int engaged;
    char reasons[2][96];
    char *reason_ptrs[2]; /* into reasons, for the message */
    int n_reasons;
} recommend_creator;

typedef struct recommend_answer {
    rank_result rr;
    recommend_creator creators[RECOMMEND_MAX_CREATORS]; /* the page's (followed first,
                                                         * then best), then the index's */
    size_t n_creators;
    char *next_page_token; /* owned; NULL when there is no further page */
    int degraded;
    char degraded_reason[256];
} recommend_answer;

/* Names the scorer file (ranker/scorer.h; NULL or "": AISLE_SCORER names
 * it, as before) and the merchandising rules file (ranker/rules.h; NULL:
 * none) the calls use, and loads them now; both are read again when they
 * change, and a changed file that is refused leaves the one in use
 * (hotfile.h). Process-wide. Returns AISLE_OK, or AISLE_EIO, AISLE_EFORMAT
 * or AISLE_ENOMEM with err naming the file (and the line). */
int recommend_settings_files(const char *scorer_path, const char *rules_path, char *err,
                             size_t errlen);

/* Answers call over c as of now_ms. Returns AISLE_OK, AISLE_EINVAL (a bound
 * broken, a bad page token), AISLE_ENOTFOUND (the context or similar item
 * is not in the catalog), AISLE_ENOMEM or AISLE_EINTERNAL, with err set;
 * Redis failures degrade the answer instead. Clear out with
 * recommend_answer_clear (also after a failure). */
int recommend_answer_call(catalog *c, profile_store *ps, const recommend_call *call,
                          int64_t now_ms, recommend_answer *out, char *err, size_t errlen);
void recommend_answer_clear(recommend_answer *a);

/* Points out's fields at h's (no copies: out is valid while h is). */
void recommend_scored_item(Aisle__V1__ScoredItem *out, const rank_hit *h);

/* The messages a RecommendResponse points into, kept by the caller until
 * it is packed: items and ptrs are arrays of a->rr.n. */
typedef struct recommend_msgs {
    Aisle__V1__ScoredItem *items;
    Aisle__V1__ScoredItem **ptrs;
    Aisle__V1__ScoredCreator creators[RECOMMEND_MAX_CREATORS];
    Aisle__V1__ScoredCreator *creator_ptrs[RECOMMEND_MAX_CREATORS];
} recommend_msgs;

/* A RecommendResponse over a with request_id (both borrowed), its parts in
 * m. */
void recommend_response(recommend_answer *a, const char *request_id, recommend_msgs *m,
                        Aisle__V1__RecommendResponse *out);

#endif
