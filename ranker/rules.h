/* rules: merchandising rules per surface from a versioned text file:
 * items pinned at a position of the first page they can appear on, and
 * items whose score is multiplied. The ranker applies them (rank.h:
 * rank_request.rules) after its filters, so a pinned item that the filter,
 * stock, the profile or an earlier page rules out is not shown; both say
 * "Featured" in their reasons.
 *
 * Format, version 1 (dirfile.h: '#' comments, FILE:LINE errors):
 *   aisle-rules 1               first line
 *   surface home                the rules that follow are home's
 *   pin ITEM POSITION           1..500: where on the page ITEM goes
 *   boost ITEM FACTOR           (0, 100]: its score is multiplied
 *   end                         last line: a file cut short is refused
 * An item may have a pin and a boost; two pins at one position, or an item
 * pinned twice, are refused. Surfaces are named as requests name them
 * ("similar" is SimilarItems'); the exact surface "" has no rules (it is
 * the ranking the quality bench measures), so it cannot be named. Pins
 * overrule the page's caps, never its filters. */
#ifndef AISLE_RULES_H
#define AISLE_RULES_H

#include <stddef.h>

#include "ranker/rank.h"

#define RULES_VERSION 1
#define RULES_MAX_SURFACES 16
#define RULES_MAX_PER_SURFACE 64

typedef struct rules_surface {
    char name[32];
    rank_rule rules[RULES_MAX_PER_SURFACE]; /* item ids owned by the rules */
    size_t n;
} rules_surface;

typedef struct rules {
    rules_surface surfaces[RULES_MAX_SURFACES];
    size_t n;
} rules;

/* Reads path into *out (free with rules_free). Returns AISLE_OK, AISLE_EIO
 * (cannot be read), AISLE_EFORMAT (refused, err names the line) or
 * AISLE_ENOMEM. */
int rules_load(const char *path, rules **out, char *err, size_t errlen);
void rules_free(rules *r);

/* The rules of surface name (NULL when r is NULL or has none), and how
 * many into *n. */
const rank_rule *rules_for(const rules *r, const char *name, size_t *n);

#endif
