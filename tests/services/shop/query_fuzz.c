/* Fuzz target: the Shop query parser and the amount and phrase scanners
 * on any bytes, against a vocabulary with multi-word names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/shop/query.h"

static catalog *query_fuzz_catalog(void) {
    static catalog *c;
    static const char *names[][3] = {{"running", "Stride", "c1"}, {"coffee", "Crema Pro", "c2"},
                                     {"home audio", "Tone", "c3"}};
    catalog_config cfg;
    char err[256];
    if (c) return c;
    catalog_config_default(&cfg);
    cfg.dim = 2;
    if (catalog_new(&cfg, &c, err, sizeof(err)) != AISLE_OK) abort();
    for (int i = 0; i < 3; i++) {
        float v[2] = {1, (float)i};
        catalog_item it = {(char *)names[i][2], "t", (char *)names[i][2], (char *)names[i][0],
                           (char *)names[i][1], 100, 1, ""};
        if (catalog_upsert(c, &it, v, 2, err, sizeof(err)) != AISLE_OK) abort();
    }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    query_vocab *v = NULL;
    query_constraints q;
    query_filter qf;
    char *text, desc[256];
    if (size > QUERY_MAX_BYTES) return 0; /* the server refuses longer queries */
    if (!(text = malloc(size + 1))) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (query_vocab_build(query_fuzz_catalog(), &v) != AISLE_OK) abort();
    query_parse(text, v, &q);
    query_to_filter(&q, &qf);
    query_describe(&q, desc, sizeof(desc));
    query_parse(text, NULL, &q);
    for (size_t i = 0; i < size; i++) {
        query_amount a;
        if (query_amount_at(text, i, &a) == 0 && a.end <= i) abort(); /* must move on */
    }
    query_vocab_free(v);
    free(text);
    return 0;
}
