/* Fuzz target: the grounding slot filter on any model output. Whatever
 * the model writes, what reaches the shopper must be text the filter
 * released, every "[n]" a real slot, and finishing must never fail but
 * for memory. The first byte picks how the text is cut into pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/shop/compose.h"

typedef struct emitted {
    size_t bytes;
} emitted;

static int compose_fuzz_emit(void *ud, const char *text, size_t len) {
    emitted *e = ud;
    (void)text;
    e->bytes += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rank_hit hits[2] = {
        {.item = {"i1", "Trail Runner 2", "c0001", "running", "Stride", 4999, 1, ""}, .score = 1.0f},
        {.item = {"i2", "Crema dripper", "c0002", "coffee", "Crema", 2500, 1, ""}, .score = 0.5f},
    };
    const rank_hit *items[2] = {&hits[0], &hits[1]};
    query_constraints q;
    compose_filter *f;
    emitted e = {0};
    size_t step;
    if (size == 0) return 0;
    step = (size_t)data[0] % 16 + 1;
    data++;
    size--;
    query_parse("running shoes under $60", NULL, &q);
    compose_input in = {&q, items, NULL, 2, COMPOSE_FIT};
    if (compose_filter_new(&in, NULL, compose_fuzz_emit, &e, &f) != AISLE_OK) return 0;
    for (size_t i = 0; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        if (compose_filter_feed(f, (const char *)data + i, n) < 0) break;
    }
    (void)compose_filter_finish(f);
    compose_filter_free(f);
    return 0;
}
