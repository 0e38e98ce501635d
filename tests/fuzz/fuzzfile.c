/* fuzzfile: one scratch file per process and suffix, rewritten per input. */
#include "tests/fuzz/fuzzfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *fuzzfile_write(const uint8_t *data, size_t size, const char *suffix) {
    static char path[256];
    const char *dir = getenv("TEST_TMPDIR");
    FILE *f;
    snprintf(path, sizeof(path), "%s/aisle-fuzz-%d%s", dir ? dir : "/tmp", (int)getpid(), suffix);
    if (!(f = fopen(path, "wb"))) return NULL;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return NULL;
    }
    return fclose(f) == 0 ? path : NULL;
}
