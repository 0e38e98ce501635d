/* rank: turns a user's profile into a ranked, filtered, explained list.
 *
 * The user vector is the weighted sum of the vectors of the items in the
 * profile, so a signal ingested a moment ago moves the very next answer.
 * Dismissed items pull it away. Candidates come from the catalog's
 * inner-product index; items the user already interacted with or dismissed,
 * and items out of stock, are left out; followed
 * creators get a small boost. Each result says why it is there: the profile
 * item it is most similar to, the creator, or its popularity. Users with no
 * usable profile get popular in-stock items. */
#ifndef AISLE_RANK_H
#define AISLE_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "retrieval/catalog.h"
#include "services/profile.h"

#define RANK_MAX_LIMIT 100
#define RANK_MAX_REASONS 3

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

/* Ranks for profile p (may be empty), falling back to the popular list
 * (heaviest first, may be empty) and then to any in-stock items. limit is
 * clamped to 1..RANK_MAX_LIMIT. Returns 0, or -1 with err set (out of
 * memory, index failure). The caller frees out with rank_result_free. */
int rank_recommend(catalog *c, const profile *p, const profile_entry *popular,
                   size_t n_popular, int limit, rank_result *out, char *err,
                   size_t errlen);
void rank_result_free(rank_result *r);

#endif
