/* ops: readiness checks and collectors for serve and ingest. */
#include "services/app/ops.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "services/app/admin.h"
#include "services/app/console.h"
#include "services/app/lag.h"
#include "services/base/status.h"
#include "services/obs/hooks.h"
#include "services/obs/http.h"
#include "services/obs/metrics.h"
#include "services/profile/rcluster.h"
#include "services/serve/auth.h"

enum { OPS_PING_TIMEOUT_MS = 500 };

struct ops {
    obs_http *http;
    const char *redis;
    runtime *rt;          /* serve, or NULL */
    ingest_stats *stats;  /* ingest, or NULL */
    lag *lag;             /* the ingest group's lag: owned, or NULL */
    rpc_client *rpc;      /* serve: the console's client of its own server; owned */
    metrics_collector collect;
};

/* Whether the Redis at addr (HOST:PORT) answers PING within the timeout;
 * what went wrong into why otherwise. */
static int ops_redis_ping(const char *addr, buf *why) {
    const char *colon = strrchr(addr, ':');
    struct timeval tv = {0, OPS_PING_TIMEOUT_MS * 1000};
    char host[256];
    redisContext *c;
    redisReply *r = NULL;
    int ok = 0;

    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        buf_printf(why, "bad address %s", addr);
        return 0;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (c && !c->err) rcluster_guard_reader(c->reader);
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
        r = redisCommand(c, "PING");
    ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (!ok) buf_printf(why, "%s", c && c->err ? c->errstr : r ? "unexpected reply" : "no reply");
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return ok;
}

/* One check's line; returns ok so checks can be and-ed. */
static int ops_check(buf *body, const char *name, int ok, const char *detail) {
    buf_printf(body, "%s %s: %s\n", ok ? "ok  " : "FAIL", name, detail);
    return ok;
}

static int ops_check_redis(ops *o, buf *body) {
    buf detail = {0};
    int ok;
    buf_printf(&detail, "%s ", o->redis);
    ok = ops_redis_ping(o->redis, &detail);
    if (ok) buf_puts(&detail, "answers PING");
    ok = ops_check(body, "redis", ok, buf_str(&detail));
    buf_free(&detail);
    return ok;
}

static int ops_ready_serve(void *arg, obs_http_request *r, buf *body) {
    ops *o = arg;
    catalog *c = runtime_catalog(o->rt);
    char detail[128];
    size_t n;
    int ok = 1;
    (void)r;
    ok &= ops_check(body, "catalog", runtime_ready(o->rt),
                    runtime_ready(o->rt) ? "read to the end of the topic"
                                         : "still reading the topic");
    catalog_read_begin(c);
    n = catalog_count(c);
    catalog_read_end(c);
    snprintf(detail, sizeof(detail), "%zu items indexed", n);
    ok &= ops_check(body, "index", n > 0, detail);
    ok &= ops_check_redis(o, body);
    buf_puts(body, ok ? "ready\n" : "not ready\n");
    return ok ? 200 : 503;
}

static int ops_ready_ingest(void *arg, obs_http_request *r, buf *body) {
    ops *o = arg;
    int ok;
    (void)r;
    ok = ops_check_redis(o, body);
    buf_puts(body, ok ? "ready\n" : "not ready\n");
    return ok ? 200 : 503;
}

/* Resident memory, the sizing figure (process_* names are the ones every
 * Prometheus client library exports). */
static void ops_collect_process(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    metrics_set(metrics_gauge("process_resident_memory_bytes", "Resident memory size in bytes",
                              NULL),
                NULL, (double)resident * (double)sysconf(_SC_PAGESIZE));
}

/* The exposure log: what it took, dropped (queue full: the call went on
 * without waiting), and what Kafka confirmed or failed. */
static void ops_collect_exposures(runtime *rt) {
    exposure_log_stats s;
    metrics_family *ex = metrics_counter(
        "aisle_exposures_total",
        "Served pages for the exposure log by outcome: queued, dropped (the bounded queue was "
        "full or memory short; the call did not wait), delivered or failed (by Kafka)",
        "outcome");
    runtime_exposure_stats(rt, &s);
    metrics_set(ex, (const char *const[]){"queued"}, (double)s.submitted);
    metrics_set(ex, (const char *const[]){"dropped"}, (double)s.dropped);
    metrics_set(ex, (const char *const[]){"delivered"}, (double)s.delivered);
    metrics_set(ex, (const char *const[]){"failed"}, (double)s.failed);
    metrics_set(metrics_gauge("aisle_exposure_queue_length",
                              "Exposures waiting on the queue for the Kafka producer", NULL),
                NULL, (double)s.queued);
}

static void ops_collect_serve(void *arg) {
    ops *o = arg;
    catalog *c = runtime_catalog(o->rt);
    metrics_family *info = metrics_gauge(
        "aisle_index_info", "The vector index serving now: kind (flat or ivf) and snapshot "
                            "version (none: catalog embeddings only); always 1",
        "kind,snapshot");
    feed_stats fs;
    char version[128];
    size_t n;
    int lists;

    ops_collect_process();
    catalog_read_begin(c);
    n = catalog_count(c);
    lists = catalog_ivf_lists(c);
    catalog_read_end(c);
    if (!catalog_snapshot_version(c, version, sizeof(version))) strcpy(version, "none");
    metrics_set(metrics_gauge("aisle_catalog_items", "Live items in the catalog and its index",
                              NULL),
                NULL, (double)n);
    metrics_set(metrics_gauge("aisle_index_ivf_lists", "IVF lists of the index (0: exact)", NULL),
                NULL, lists);
    metrics_clear(info); /* the old kind or version must go */
    metrics_set(info, (const char *const[]){lists ? "ivf" : "flat", version}, 1);
    metrics_set(metrics_gauge("aisle_catalog_caught_up",
                              "1 once the catalog has been read to the end of its topic", NULL),
                NULL, runtime_ready(o->rt) ? 1 : 0);
    runtime_feed_stats(o->rt, &fs);
    metrics_family *upd = metrics_counter("aisle_catalog_updates_total",
                                          "Catalog events by outcome: applied (upserts and "
                                          "deletes) or skipped (invalid, with a logged reason)",
                                          "outcome");
    metrics_set(upd, (const char *const[]){"applied"}, (double)fs.applied);
    metrics_set(upd, (const char *const[]){"skipped"}, (double)fs.rejected);
    ops_collect_exposures(o->rt);
    if (o->lag) lag_collect(o->lag);
}

static void ops_collect_ingest(void *arg) {
    ops *o = arg;
    ingest_stats *s = o->stats;
    metrics_family *ev = metrics_counter(
        "aisle_ingest_events_total",
        "Signals by outcome: applied to a profile, duplicate (applied before), dead_lettered "
        "(invalid, sent to the dead-letter topic)",
        "outcome");
    ops_collect_process();
    metrics_set(ev, (const char *const[]){"applied"}, (double)atomic_load(&s->applied));
    metrics_set(ev, (const char *const[]){"duplicate"}, (double)atomic_load(&s->duplicates));
    metrics_set(ev, (const char *const[]){"dead_lettered"}, (double)atomic_load(&s->dead_lettered));
    metrics_set(metrics_counter("aisle_ingest_consumed_messages_total",
                                "Messages taken from the signal topic", NULL),
                NULL, (double)atomic_load(&s->consumed));
    metrics_set(metrics_counter("aisle_ingest_committed_messages_total",
                                "Messages whose offsets are committed", NULL),
                NULL, (double)atomic_load(&s->committed));
    metrics_set(metrics_counter("aisle_ingest_redis_retries_total",
                                "Batches retried while Redis failed", NULL),
                NULL, (double)atomic_load(&s->redis_retries));
    metrics_set(metrics_counter("aisle_ingest_commit_failures_total",
                                "Offset commits refused (the batch is replayed)", NULL),
                NULL, (double)atomic_load(&s->commit_failures));
    lag_collect(o->lag);
}

/* The HTTP paths behind a role take the same tokens as gRPC. */
static int ops_guard(void *arg, const char *bearer, int need) {
    const auth *a = runtime_auth(arg);
    int role;
    if (!a) return 0;
    if (!bearer) return 401;
    role = auth_role_of(a, bearer, strlen(bearer));
    if (role == AUTH_ROLE_NONE) return 401;
    return role >= need ? 0 : 403;
}

static int ops_start(ops *o, const char *listen, obs_http_handler ready, ops **out, char *err,
                     size_t errlen) {
    obs_http_config cfg = {.listen = listen,
                           .routes = {{"/readyz", "text/plain; charset=utf-8", ready, o, NULL, 0}},
                           .n_routes = 1,
                           .guard = o->rt ? ops_guard : NULL,
                           .guard_arg = o->rt};
    int rc;
    if (o->rt && ((rc = admin_routes(&cfg, o->rt)) != AISLE_OK ||
                  (rc = console_routes(&cfg, o->rpc)) != AISLE_OK)) {
        status_fmt(err, errlen, "too many http routes");
        goto fail;
    }
    obs_hooks_register(); /* every family is listed from the first scrape */
    if ((rc = metrics_collector_add(o->collect, o)) != AISLE_OK) {
        status_fmt(err, errlen, "too many metrics collectors");
        goto fail;
    }
    if ((rc = obs_http_start(&cfg, &o->http, err, errlen)) != AISLE_OK) goto fail;
    *out = o;
    return AISLE_OK;
fail:
    ops_stop(o);
    return rc;
}

static ops *ops_new(const char *redis, runtime *rt, ingest_stats *stats,
                    metrics_collector collect) {
    ops *o = calloc(1, sizeof(*o));
    if (o) *o = (ops){NULL, redis, rt, stats, NULL, NULL, collect};
    return o;
}

int ops_start_serve(const char *listen, const char *redis, runtime *rt,
                    const ingest_config *ingest, ops **out, char *err, size_t errlen) {
    ops *o = ops_new(redis, rt, NULL, ops_collect_serve);
    int rc;
    *out = NULL;
    if (!o) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = rpc_open(runtime_local_target(rt), NULL, &o->rpc, err, errlen)) != AISLE_OK ||
        (ingest && (rc = lag_new(ingest, &o->lag, err, errlen)) != AISLE_OK)) {
        ops_stop(o);
        return rc;
    }
    return ops_start(o, listen, ops_ready_serve, out, err, errlen);
}

int ops_start_ingest(const char *listen, const ingest_config *cfg, ingest_stats *stats,
                     ops **out, char *err, size_t errlen) {
    ops *o = ops_new(cfg->redis, NULL, stats, ops_collect_ingest);
    int rc;
    *out = NULL;
    if (!o) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = lag_new(cfg, &o->lag, err, errlen)) != AISLE_OK) {
        ops_stop(o);
        return rc;
    }
    return ops_start(o, listen, ops_ready_ingest, out, err, errlen);
}

int ops_port(const ops *o) { return obs_http_port(o->http); }

void ops_stop(ops *o) {
    if (!o) return;
    obs_http_stop(o->http); /* no request runs a check after this */
    metrics_collector_remove(o->collect, o);
    lag_free(o->lag);
    rpc_close(o->rpc);
    free(o);
}
