/* runtime: the serving stack, wired once for `aisle serve` and the demo.
 *
 * A catalog (with the newest snapshot when a directory is given), the feed
 * that keeps it live, the Shop pipeline and the gRPC server with Aisle's
 * methods, started in that order and stopped in reverse. */
#ifndef AISLE_RUNTIME_H
#define AISLE_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "retrieval/catalog.h"
#include "services/serve/feed.h"
#include "services/serve/recommender.h"
#include "services/serve/server.h"
#include "services/serve/tls.h"
#include "services/shop/shop.h"

typedef struct runtime_config {
    server_config server;   /* listen, redis, threads, profile; methods added here */
    catalog_config catalog; /* dim is the snapshot's when one loads */
    int dim_set;            /* the caller fixed catalog.dim: a snapshot must agree */
    feed_config feed;       /* brokers, topics, snapshot_dir */
    shop_config shop;       /* redis and profile copied from server; engine may be set */
    tls_config tls;         /* cert and key set: gRPC over TLS (client_ca: mTLS) */
    int insecure;           /* plaintext gRPC, asked for explicitly */
    const char *tokens_file; /* bearer tokens and roles; NULL: no access control */
    size_t exposure_queue;   /* exposures waiting for Kafka at most; 0: EXPOSURE_QUEUE_DEFAULT */
    const char *model_file;  /* the learned ranker scored with by default; NULL: hand weights */
    const char *scorer_file; /* surfaces' settings (ranker/scorer.h); NULL: AISLE_SCORER's */
    const char *rules_file;  /* pinned and boosted items (ranker/rules.h); NULL: none */
} runtime_config;

typedef struct runtime runtime;

/* Defaults of every part (listen 127.0.0.1:50051, 4 threads, ...). */
void runtime_config_default(runtime_config *cfg);

/* Starts everything. Refuses (AISLE_EINVAL) to serve plaintext unless
 * cfg->insecure says so, and then warns. Returns AISLE_OK, or a negative
 * code with err set and nothing left running. Stop with runtime_stop. */
int runtime_start(const runtime_config *cfg, runtime **out, char *err, size_t errlen);

catalog *runtime_catalog(runtime *rt);
shop *runtime_shop(runtime *rt);
int runtime_port(const runtime *rt);
/* The gRPC target of the server's private Unix socket ("unix:PATH"), for
 * this process's own clients: plaintext, in a directory only this user may
 * enter, under the same tokens as the network port. */
const char *runtime_local_target(const runtime *rt);
/* The tokens the server checks, or NULL when it checks none. */
const struct auth *runtime_auth(const runtime *rt);
/* Whether the catalog has been read to the end of the topic once. */
int runtime_ready(runtime *rt);
/* The catalog feed's counters (events applied and skipped). */
void runtime_feed_stats(runtime *rt, feed_stats *out);
/* The exposure log's counters (queued, dropped, delivered, failed). */
void runtime_exposure_stats(runtime *rt, exposure_log_stats *out);

/* Reads the TLS files again before the next handshake (SIGHUP); a no-op
 * for a plaintext server. */
void runtime_reload_tls(runtime *rt);

/* Stops the server (in-flight calls get grace_ms), then the rest; frees rt. */
void runtime_stop(runtime *rt, int grace_ms);

#endif
