/* Fuzz target: every unary request body through its handler's decoding
 * and validation, as a client could send it. The first byte picks the
 * method. The profile store points at a port nobody listens on, so a
 * request that passes validation ends in the store's error path (which
 * must be UNAVAILABLE, never a crash) without a server. */
#include <stdint.h>
#include <stdlib.h>

#include "services/base/status.h"
#include "services/serve/recommender.h"

typedef struct request_fuzz {
    catalog *cat;
    profile_store *ps;
    server_config sc;
    recommender_config rc;
} request_fuzz;

static request_fuzz *request_fuzz_setup(void) {
    static request_fuzz f;
    catalog_config cc;
    profile_config pc;
    char err[256];
    if (f.cat) return &f;
    catalog_config_default(&cc);
    cc.dim = 2;
    profile_config_default(&pc);
    if (catalog_new(&cc, &f.cat, err, sizeof(err)) != AISLE_OK ||
        profile_store_open("127.0.0.1:1", &pc, &f.ps, err, sizeof(err)) != AISLE_OK)
        abort();
    recommender_methods(&f.sc, &f.rc);
    return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    request_fuzz *f = request_fuzz_setup();
    const server_method *m;
    server_reply *rep;
    const char *msg;
    if (size == 0) return 0;
    m = &f->sc.methods[data[0] % f->sc.n_methods];
    if (!m->unary) return 0;
    if (!(rep = server_reply_new())) return 0;
    server_call_ctx ctx = {f->cat, f->ps, m->arg, INT64_MAX, "fuzz"};
    m->unary(&ctx, data + 1, size - 1, rep);
    /* Internal errors mean a handler did not expect what it got. */
    if (server_reply_status(rep, &msg) == 13) abort();
    server_reply_free(rep);
    return 0;
}
