/* rank: turns a user's profile into a ranked, filtered, explained list.
 *
 * The user vector is the weighted sum of the vectors of the items in the
 * profile, so a signal ingested a moment ago moves the very next answer.
 * Dismissed items pull it away. Candidates come from the catalog's
 * inner-product index; items the user already interacted with (seen,
 * bought) or dismissed, and items out of stock, are left out; followed
 * creators get a small boost. Each result says why it is there: the profile
 * item it is most similar to, the creator, or its popularity. Users with no
 * usable profile get popular in-stock items. */
#ifndef AISLE_RANK_H
#define AISLE_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "retrieval/catalog.h"
#include "services/base/status.h"

#define RANK_MAX_LIMIT 100
#define RANK_MAX_REASONS 3

/* Constraints a result must meet (a shopper's "under $50", "running"). */
typedef struct rank_filter {
    int64_t max_price_cents; /* 0 = no ceiling */
    const char *category;    /* NULL or "" = any */
    const char *brand;       /* NULL or "" = any */
    const char *creator_id;  /* NULL or "" = any */
    int64_t min_price_cents; /* 0 = no floor */
    /* Categories a result must not be in ("not coffee", or what a shopper
     * already knows when looking for something new); borrowed. */
    const char *const *exclude_categories;
    size_t n_exclude_categories;
} rank_filter;

/* One weighted id of a profile: an item, a creator ... */
typedef struct rank_entry {
    const char *id;
    double weight;
} rank_entry;

/* What the ranker needs of a user: a plain in-memory view, borrowed from
 * whoever read the profile (the ranker never talks to a store). Weighted
 * lists come heaviest first; seen and purchased need only their ids. */
typedef struct rank_profile {
    const rank_entry *items;
    size_t n_items;
    const rank_entry *creators;
    size_t n_creators;
    const rank_entry *dismissed; /* negative feedback */
    size_t n_dismissed;
    const rank_entry *seen;
    size_t n_seen;
    const rank_entry *purchased;
    size_t n_purchased;
} rank_profile;

/* Supplies the popular list, heaviest first, when a result needs filling;
 * a profile that fills the list never pays for it. Sets *out to a list the
 * callback's owner keeps (valid until rank_recommend returns) and *n to its
 * length; returns AISLE_OK or a negative AISLE_* code with err set, which
 * rank_recommend passes on. */
typedef int (*rank_popular_fn)(void *arg, const rank_entry **out, size_t *n, char *err,
                               size_t errlen);

typedef struct rank_request {
    const rank_profile *profile; /* NULL or empty: no personal part */
    rank_popular_fn popular;   /* NULL = no popular list */
    void *popular_arg;
    int limit;                 /* clamped to 1..RANK_MAX_LIMIT */
    const rank_filter *filter; /* NULL = none */
} rank_request;

typedef struct rank_hit {
    catalog_item item; /* copies; owned by the result */
    float score;
    char *reasons[RANK_MAX_REASONS];
    int n_reasons;
} rank_hit;

typedef struct rank_result {
    rank_hit *hits; /* best first */
    size_t n;
} rank_result;

/* Ranks for req->profile, falling back to the popular list and then to any
 * in-stock items, keeping only items that pass req->filter. Returns
 * AISLE_OK; AISLE_ENOMEM or AISLE_EINTERNAL (the index failed) with err
 * set; or the popular callback's code. The caller frees out with
 * rank_result_free (also after a failure). */
int rank_recommend(catalog *c, const rank_request *req, rank_result *out, char *err,
                   size_t errlen);

/* Whether item passes f (NULL passes everything). */
int rank_filter_pass(const rank_filter *f, const catalog_item *item);
void rank_result_free(rank_result *r);

#endif
