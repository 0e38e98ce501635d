/* creators: a vector for each creator, from their items, and a flat
 * inner-product index over them, so a profile vector finds the creators
 * whose work is like what the user engages with.
 *
 * A creator's vector is the normalized mean of their live items' index
 * vectors (the mean's direction is the sum's, so the sum is kept, in double
 * precision against drift). The catalog keeps the sums current as items
 * come, change creator or vector, and go: each event adds or subtracts one
 * item's vector, O(dim). A snapshot swap changes every covered item's
 * vector at once, so the catalog builds a fresh set from the new vectors
 * beside the old one and swaps it with the index.
 *
 * The index (the means side by side, scanned with retrieval/vec.h's
 * kernels: a few thousand products a search) is rebuilt lazily, by the
 * first search after a change: one event moves a creator's mean, so an
 * incremental index would redo that creator on every catalog event, while
 * the rebuild is one vector per creator (O(creators·dim), well under a
 * millisecond for thousands) paid at most once per burst of events. Writers (the
 * catalog, under its write lock) change the sums; searches (under the
 * catalog's read lock, so the sums stand still) search it shared; the
 * first to find it stale rebuilds it under the set's own mutex. */
#ifndef AISLE_CREATORS_H
#define AISLE_CREATORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct creators creators;

/* One creator found by creators_search; the strings are the set's, valid
 * while the catalog's read lock is held. */
typedef struct creators_hit {
    const char *id;
    const char *name; /* display name, "" when the catalog has none */
    float score;      /* inner product with the query */
    size_t n_items;   /* live items */
} creators_hit;

/* An empty set for dim-float vectors, or NULL when out of memory. Free
 * with creators_free. */
creators *creators_new(int dim);
void creators_free(creators *cr);

/* Adds (sign 1) or takes away (sign -1) one item, in catalog slot slot,
 * with its vector: the vector goes into (or out of) creator_id's sum, the
 * slot into (or out of) its item list; a non-empty name becomes the
 * creator's display name. An empty creator_id is ignored, and so is taking
 * away from an unknown creator. Returns AISLE_OK or AISLE_ENOMEM (the set
 * is then unchanged: that creator is only missing from suggestions and
 * the creators source). */
int creators_add(creators *cr, const char *creator_id, const char *name, const float *vec,
                 size_t slot, int sign);

/* The catalog slots of creator_id's live items, in no order, into *slots
 * (the set's; valid while the catalog's read lock is held); returns how
 * many (0 for an unknown or empty creator id). So the ranker's creators
 * source reads one creator's items instead of scanning the catalog. */
size_t creators_slots(const creators *cr, const char *creator_id, const uint32_t **slots);

/* Creators with live items. */
size_t creators_count(const creators *cr);

/* The k creators whose vectors have the largest inner product with q (dim
 * floats), best first (equal scores: the creator seen first), into out (k
 * long). Returns how many (≤ k), or AISLE_ENOMEM. */
int creators_search(creators *cr, const float *q, int k, creators_hit *out);

#endif
