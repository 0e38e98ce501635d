/* Fuzz target: the YAML configuration file. Any file must load or be
 * refused with its line and reason; one that loads must give every
 * command's flags without failing. */
#include <stdint.h>

#include "services/app/config.h"
#include "services/base/status.h"
#include "tests/fuzz/fuzzfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const cmds[] = {"serve", "ingest", "ctl", "synth", "demo"};
    const char *path = fuzzfile_write(data, size, ".yaml");
    config *c = NULL;
    char err[512];
    if (!path || config_load(path, &c, err, sizeof(err)) != AISLE_OK) return 0;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int argc;
        char **argv;
        const char **origins;
        config_argv(c, cmds[i], &argc, &argv, &origins);
    }
    config_free(c);
    return 0;
}
