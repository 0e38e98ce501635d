/* Fuzz target: a message value of aisle.signals as ingest decodes and
 * checks it. Anything must end as a valid signal or a reason for the
 * dead-letter topic, never a crash. */
#include <stdint.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/status.h"
#include "services/ingest/signal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Aisle__V1__Signal *s = NULL;
    char err[256];
    /* A fixed "now" keeps runs repeatable: 2026-01-01. */
    if (signal_decode(data, size, 1767225600000LL, &s, err, sizeof(err)) == AISLE_OK && s)
        aisle__v1__signal__free_unpacked(s, NULL);
    return 0;
}
