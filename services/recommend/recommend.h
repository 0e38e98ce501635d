/* recommend: the Recommend use case, below any transport.
 *
 * Read the user's profile once, hand the ranker a plain view of it, let it
 * fill short lists from the popular list (read from Redis only when a
 * result needs it), and build the answer's messages. gRPC handlers, Shop's
 * sub-agents and the demo all go through here, so a profile read once per
 * call is seen the same by every part of that call. */
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

/* Points out's fields at h's (no copies: out is valid while h is). */
void recommend_scored_item(Aisle__V1__ScoredItem *out, const rank_hit *h);

/* A RecommendResponse over rr with request_id (both borrowed): items and
 * ptrs are arrays of rr->n the caller provides and keeps until the message
 * is packed. */
void recommend_response(const rank_result *rr, const char *request_id,
                        Aisle__V1__ScoredItem *items, Aisle__V1__ScoredItem **ptrs,
                        Aisle__V1__RecommendResponse *out);

#endif
