/* snapscore: the learned snapshot's scoring path inside a rank call (the
 * profile source with the neighbour sums and their pruning, and bounded
 * scoring of the pool), over rank.c's per-call state. */
#ifndef AISLE_RANKER_SNAPSCORE_H
#define AISLE_RANKER_SNAPSCORE_H

#include <stddef.h>

#include "ranker/rank_state.h"

/* The profile source: the index's top hits for st->u, then every item in
 * a profile item's neighbour list, with Σ_i w_i·N_i(j) into st->ns (taken
 * from the thread's scratch; snapscore_release gives it back). AISLE_OK
 * or a negative AISLE_* code with err set. */
int snapscore_source_profile(rank_state *st, char *err, size_t errlen);
/* Whether the page is the pool's top hand scores with a search floor, so
 * snapscore_score_bounded may score the pool. */
int snapscore_can_bound(const rank_state *st);
/* Scores the pool when snapscore_can_bound holds, dropping the
 * neighbour-only candidates that cannot reach the page. */
int snapscore_score_bounded(rank_state *st, char *err, size_t errlen);
/* Zeroes and gives back the neighbour sums' scratch, frees st->touched. */
void snapscore_release(rank_state *st);

#endif
