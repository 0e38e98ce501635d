/* Fuzz target: messages of the catalog topic as the feed applies them.
 * The first byte says whether the message has a value (else a tombstone
 * whose key is the rest) and how long its key is. */
#include <stdint.h>
#include <stdlib.h>

#include "services/base/status.h"
#include "services/serve/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static catalog *c;
    catalog_config cc;
    char err[256];
    size_t key_len;
    if (!c) {
        catalog_config_default(&cc);
        cc.dim = 4;
        if (catalog_new(&cc, &c, err, sizeof(err)) != AISLE_OK) abort();
    }
    if (size == 0) return 0;
    key_len = (size_t)(data[0] >> 1) < size - 1 ? (size_t)(data[0] >> 1) : size - 1;
    if (data[0] & 1)
        feed_apply_message(c, data + 1, key_len, NULL, 0, err, sizeof(err));
    else
        feed_apply_message(c, data + 1, key_len, data + 1 + key_len, size - 1 - key_len, err,
                           sizeof(err));
    return 0;
}
