/* lexical: BM25 over the catalog's words, for a request's query.
 *
 * A document is an item's title, brand, category and creator id; words are
 * runs of letters and digits (any byte ≥ 0x80 counts as a letter, so UTF-8
 * words stay whole), compared case-blind, with a plural "s" dropped. The
 * catalog changes with every catalog event, so rather than keep a second
 * index in step with it, one call scans the live items once (document
 * lengths, term and document frequencies) and scores the matches: linear in
 * the catalog, paid only by calls that carry a query. */
#ifndef AISLE_LEXICAL_H
#define AISLE_LEXICAL_H

#include <stddef.h>

#include "retrieval/catalog.h"

#define LEXICAL_MAX_TERMS 16 /* distinct query words kept; the rest ignored */

/* BM25 (k1 1.2, b 0.75) of every live slot against query into scores
 * (catalog_slot_limit floats; 0 = no word matches). Needs the read lock.
 * Returns how many items match (0 when the query has no words), or
 * AISLE_ENOMEM. */
long lexical_score(const catalog *c, const char *query, float *scores);

#endif
