/* scratch: a thread's zeroed catalog-sized arrays for one rank call's
 * neighbour sums (a float and a mark byte by slot), so a call on a learned
 * snapshot does not calloc (and fault in) 41k-entry arrays for the few
 * thousand slots its profile's lists touch. The call that takes them
 * zeroes what it touched before it gives them back. */
#ifndef AISLE_RANKER_SCRATCH_H
#define AISLE_RANKER_SCRATCH_H

#include <stddef.h>

typedef struct rank_scratch {
    float *sum;          /* cap floats, all 0 when taken */
    unsigned char *mark; /* cap bytes, all 0 when taken */
    size_t cap;
    int busy;    /* taken (the thread's own) */
    int private; /* not the thread's own: freed when given back */
} rank_scratch;

/* Arrays of at least n entries, all zero: the thread's own, or when a
 * rank call on this thread holds those, private ones. NULL when out of
 * memory. */
rank_scratch *rank_scratch_take(size_t n);
/* Gives s (NULL: nothing) back; its arrays must be all zero again. */
void rank_scratch_give(rank_scratch *s);

#endif
