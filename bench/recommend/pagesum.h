/* A digest of ranked pages for the ranker benches (rank, snaprank): each
 * page's item ids and reasons in order, folded into one 64-bit sum, so a
 * speed change can be shown not to change what the ranker answers. */
#ifndef AISLE_BENCH_PAGESUM_H
#define AISLE_BENCH_PAGESUM_H

#include <stdint.h>

#include "ranker/rank.h"

/* sum folded with r's items and their reasons, in page order. */
uint64_t pagesum_add(uint64_t sum, const rank_result *r);

#endif
