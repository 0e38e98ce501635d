/* admin: each endpoint reads the catalog under its read lock and writes
 * JSON with pbjson's string escaping. */
#include "services/app/admin.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/app/pbjson.h"
#include "services/base/status.h"
#include "services/serve/auth.h"

enum { ADMIN_SEARCH_MAX = 20 };

static const char admin_json[] = "application/json; charset=utf-8";

static int admin_index(void *arg, obs_http_request *r, buf *body) {
    runtime *rt = arg;
    catalog *c = runtime_catalog(rt);
    char version[128];
    feed_stats fs;
    size_t n;
    int lists, has;
    (void)r;
    catalog_read_begin(c);
    n = catalog_count(c);
    lists = catalog_ivf_lists(c);
    catalog_read_end(c);
    has = catalog_snapshot_version(c, version, sizeof(version));
    runtime_feed_stats(rt, &fs);
    buf_printf(body, "{\"kind\":\"%s\",\"items\":%zu,\"ivf_lists\":%d,\"dim\":%d,\"snapshot\":",
               lists ? "ivf" : "flat", n, lists, catalog_dim(c));
    if (has)
        pbjson_string(body, version);
    else
        buf_puts(body, "null");
    buf_printf(body,
               ",\"catalog_caught_up\":%s,\"updates_applied\":%" PRIu64
               ",\"updates_skipped\":%" PRIu64 "}\n",
               runtime_ready(rt) ? "true" : "false", fs.applied, fs.rejected);
    return 200;
}

static void admin_item(buf *out, const catalog_item *it, size_t slot) {
    buf_puts(out, "{\"item_id\":");
    pbjson_string(out, it->item_id);
    buf_puts(out, ",\"title\":");
    pbjson_string(out, it->title ? it->title : "");
    buf_puts(out, ",\"creator_id\":");
    pbjson_string(out, it->creator_id ? it->creator_id : "");
    buf_puts(out, ",\"creator_name\":");
    pbjson_string(out, it->creator_name ? it->creator_name : "");
    buf_puts(out, ",\"category\":");
    pbjson_string(out, it->category ? it->category : "");
    buf_puts(out, ",\"brand\":");
    pbjson_string(out, it->brand ? it->brand : "");
    buf_printf(out, ",\"price_cents\":%" PRId64 ",\"in_stock\":%s,\"slot\":%zu}", it->price_cents,
               it->in_stock ? "true" : "false", slot);
}

static int admin_error(buf *body, int status, const char *what, const char *detail) {
    buf_puts(body, "{\"error\":");
    pbjson_string(body, what);
    if (detail) {
        buf_puts(body, ",\"detail\":");
        pbjson_string(body, detail);
    }
    buf_puts(body, "}\n");
    return status;
}

static int admin_catalog_item(void *arg, obs_http_request *r, buf *body) {
    catalog *c = runtime_catalog(arg);
    const char *id = obs_http_query(r, "id");
    size_t slot;
    int status = 200;
    if (!id || !*id) return admin_error(body, 400, "the id parameter is required", NULL);
    catalog_read_begin(c);
    if (catalog_lookup(c, id, &slot) == AISLE_OK && catalog_at(c, slot)) {
        admin_item(body, catalog_at(c, slot), slot);
        buf_putc(body, '\n');
    } else {
        status = admin_error(body, 404, "no such item", id);
    }
    catalog_read_end(c);
    return status;
}

static int admin_matches(const catalog_item *it, const char *q) {
    const char *fields[] = {it->item_id, it->title, it->brand, it->category};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i] && strcasestr(fields[i], q)) return 1;
    return 0;
}

static int admin_catalog_search(void *arg, obs_http_request *r, buf *body) {
    catalog *c = runtime_catalog(arg);
    const char *q = obs_http_query(r, "q");
    size_t found = 0, limit;
    if (!q) return admin_error(body, 400, "the q parameter is required", NULL);
    buf_puts(body, "{\"items\":[");
    catalog_read_begin(c);
    limit = catalog_slot_limit(c);
    for (size_t s = 0; s < limit && found < ADMIN_SEARCH_MAX; s++) {
        const catalog_item *it = catalog_at(c, s);
        if (!it || !admin_matches(it, q)) continue;
        if (found++) buf_putc(body, ',');
        admin_item(body, it, s);
    }
    catalog_read_end(c);
    buf_puts(body, "]}\n");
    return 200;
}

int admin_routes(obs_http_config *cfg, runtime *rt) {
    const obs_http_route routes[] = {
        {"/api/index", admin_json, admin_index, rt, NULL, AUTH_ROLE_APP},
        {"/api/catalog/item", admin_json, admin_catalog_item, rt, NULL, AUTH_ROLE_APP},
        {"/api/catalog/search", admin_json, admin_catalog_search, rt, NULL, AUTH_ROLE_APP},
    };
    size_t n = sizeof(routes) / sizeof(routes[0]);
    if (cfg->n_routes + n > OBS_HTTP_MAX_ROUTES) return AISLE_EFULL;
    memcpy(&cfg->routes[cfg->n_routes], routes, sizeof(routes));
    cfg->n_routes += n;
    return AISLE_OK;
}
