/* Page digests for the ranker benches: see pagesum.h. */
#include "bench/recommend/pagesum.h"

#include <string.h>

#include "services/base/strmap.h"

uint64_t pagesum_add(uint64_t sum, const rank_result *r) {
    for (size_t k = 0; k < r->n; k++) {
        const rank_hit *h = &r->hits[k];
        sum = sum * 31 + strmap_hash(h->item.item_id, strlen(h->item.item_id));
        for (int q = 0; q < h->n_reasons; q++)
            sum = sum * 31 + strmap_hash(h->reasons[q], strlen(h->reasons[q]));
    }
    return sum;
}
