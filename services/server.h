/* server: the Recommender gRPC service on gRPC's core C API.
 *
 * A fixed pool of worker threads drains one completion queue. Each worker
 * owns its Redis connection, so a request never waits for another's I/O.
 * Registered methods are Recommender/{Recommend,GetProfile} and
 * grpc.health.v1.Health/Check; a generic request is always outstanding so
 * any other method is answered UNIMPLEMENTED instead of hanging. Shutdown
 * stops accepting calls and lets in-flight calls finish, up to a grace
 * period after which the rest are cancelled. */
#ifndef AISLE_SERVER_H
#define AISLE_SERVER_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/aisle.pb-c.h"
#include "ranker/rank.h"
#include "retrieval/catalog.h"
#include "services/profile.h"

#define SERVER_DEFAULT_LIMIT 10

/* What a streaming handler gets for one call. */
typedef struct server_call_ctx {
    catalog *cat;
    profile_store *profiles; /* the worker's own connection */
    void *arg;               /* the handler's argument from the config */
    int64_t deadline_ms;     /* clock_mono_ms() deadline; INT64_MAX if none */
} server_call_ctx;

typedef struct server_stream server_stream;

/* A server-streaming method. It runs on a worker thread for the whole call,
 * sends messages with server_stream_send and, on failure, sets the status
 * with server_stream_fail; returning ends the call (OK unless failed). */
typedef void (*server_stream_handler)(const server_call_ctx *ctx, const uint8_t *req,
                                      size_t len, server_stream *st);

/* Sends one message. Returns 0, or -1 when the client has gone or the call
 * was cancelled: the handler should stop. */
int server_stream_send(server_stream *st, const ProtobufCMessage *msg);
/* Non-zero once the client has cancelled or gone; cheap to poll. */
int server_stream_cancelled(server_stream *st);
/* Ends the call with code and message instead of OK. */
void server_stream_fail(server_stream *st, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct server_config {
    const char *listen; /* HOST:PORT; port 0 picks a free one */
    const char *redis;  /* HOST:PORT */
    int threads;        /* workers; default 4 */
    profile_config profile;
    /* Health reports SERVING once ready(ready_arg) is non-zero (the catalog
     * has caught up); NULL means always ready. */
    int (*ready)(void *arg);
    void *ready_arg;
    /* Recommender/Shop; NULL leaves it unimplemented. */
    server_stream_handler shop;
    void *shop_arg;
} server_config;

typedef struct server server;

/* Starts serving. The catalog is borrowed and must outlive the server.
 * Returns 0, or -1 with err set (bad address, port in use, no memory). Stop
 * and free with server_stop. */
int server_start(const server_config *cfg, catalog *c, server **out, char *err,
                 size_t errlen);
/* The bound port (useful when listening on port 0). */
int server_port(const server *s);
/* The Recommend pipeline without the transport: profile and popularity
 * from Redis, then ranking over c, keeping items that pass filter (NULL =
 * all). limit 0 means the default. Returns 0, PROFILE_EINVAL (bad user_id
 * or limit), PROFILE_EIO (Redis), or SERVER_EINTERNAL, with err set. The
 * caller frees out with rank_result_free. */
#define SERVER_EINTERNAL (-3)
int server_recommend(catalog *c, profile_store *ps, const char *user_id, int limit,
                     const rank_filter *filter, rank_result *out, char *err,
                     size_t errlen);

/* Points out's fields at h's (no copies: out is valid while h is). */
void server_scored_item(Aisle__V1__ScoredItem *out, const rank_hit *h);

/* Graceful stop: in-flight calls get up to grace_ms to finish. Frees s. */
void server_stop(server *s, int grace_ms);

#endif
