/* server: the gRPC transport on gRPC core's C API, knowing no method.
 *
 * A fixed pool of worker threads drains one completion queue. Each worker
 * owns its Redis connection, so a request never waits for another's I/O.
 * The methods come from the caller (services/serve/recommender.h has
 * Aisle's): unary handlers fill a server_reply, streaming handlers run on
 * the worker for the whole call and send as they go. A generic request is
 * always outstanding so any other method is answered UNIMPLEMENTED instead
 * of hanging. Handlers report failures with AISLE_* codes; the mapping to
 * gRPC status codes is grpcstatus_of, applied here once. Shutdown stops
 * accepting calls and lets in-flight calls finish, up to a grace period
 * after which the rest are cancelled. */
#ifndef AISLE_SERVER_H
#define AISLE_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "retrieval/catalog.h"
#include "services/profile/profile.h"

#define SERVER_MAX_METHODS 16
#define SERVER_REQUEST_ID_LEN 32
#define SERVER_DEFAULT_MAX_REQUEST (64 * 1024) /* bytes; gRPC's own limit is 4 MiB */

/* What a handler gets for one call. */
typedef struct server_call_ctx {
    catalog *cat;
    profile_store *profiles; /* the worker's own connection */
    void *arg;               /* the method's argument */
    int64_t deadline_ms;     /* clock_mono_ms() deadline; INT64_MAX if none */
    char request_id[SERVER_REQUEST_ID_LEN]; /* unique per call, for answers and logs */
} server_call_ctx;

typedef struct server_reply server_reply;
typedef struct server_stream server_stream;

/* A unary method: decode req, then server_reply_pack or server_reply_fail. */
typedef void (*server_unary_handler)(const server_call_ctx *ctx, const uint8_t *req,
                                     size_t len, server_reply *rep);
/* A server-streaming method: sends with server_stream_send and, on failure,
 * sets the status with server_stream_fail; returning ends the call. */
typedef void (*server_stream_handler)(const server_call_ctx *ctx, const uint8_t *req,
                                      size_t len, server_stream *st);

/* The answer is msg. */
void server_reply_pack(server_reply *rep, const ProtobufCMessage *msg);
/* The answer is len bytes of an already serialized message; the reply
 * takes body (malloc'ed). */
void server_reply_bytes(server_reply *rep, uint8_t *body, size_t len);
/* The call fails with the gRPC status for AISLE_* code and a message. */
void server_reply_fail(server_reply *rep, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A reply outside any call, to run a unary handler directly (tests and
 * fuzzing of the handlers' decoding and validation). */
server_reply *server_reply_new(void);
/* The gRPC status the handler set (0 = OK) and its message. */
int server_reply_status(const server_reply *rep, const char **msg);
void server_reply_free(server_reply *rep); /* NULL is a no-op */

/* Sends one message. Returns AISLE_OK, or AISLE_ECANCELED when the client
 * has gone or the call was cancelled (the handler should stop), or
 * AISLE_ENOMEM. */
int server_stream_send(server_stream *st, const ProtobufCMessage *msg);
/* Non-zero once the client has cancelled or gone; cheap to poll. */
int server_stream_cancelled(server_stream *st);
/* Ends the call with the gRPC status for AISLE_* code instead of OK. */
void server_stream_fail(server_stream *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct server_method {
    const char *path;             /* "/package.Service/Method" */
    server_unary_handler unary;   /* one of the two */
    server_stream_handler stream;
    void *arg;                    /* borrowed; handed to every call */
    int role;                     /* enum auth_role a caller needs (services/serve/auth.h) */
    size_t max_request;           /* largest request in bytes; 0: SERVER_DEFAULT_MAX_REQUEST */
} server_method;

typedef struct server_config {
    const char *listen; /* HOST:PORT; port 0 picks a free one */
    const char *redis;  /* HOST:PORT */
    int threads;        /* workers for unary calls; default 4 */
    int stream_threads; /* workers for streaming calls (Shop), which is also
                           how many run at once; default 4 */
    profile_config profile;
    struct tls *tls;    /* borrowed, outlives the server; NULL: plaintext */
    struct auth *auth;  /* borrowed; NULL: every caller may call every method */
    /* A Unix socket path for this host's own tools (the console), served
     * in plaintext under the same access control, so they need no TLS
     * client set-up; NULL: none. Its directory is the caller's to guard. */
    const char *local_socket;
    server_method methods[SERVER_MAX_METHODS];
    size_t n_methods;
} server_config;

typedef struct server server;

/* Starts serving. The catalog is borrowed and must outlive the server.
 * Returns AISLE_OK, or AISLE_EINVAL (bad address, port in use, too many
 * methods) or AISLE_ENOMEM with err set. Stop and free with server_stop. */
int server_start(const server_config *cfg, catalog *c, server **out, char *err,
                 size_t errlen);
/* The bound port (useful when listening on port 0). */
int server_port(const server *s);
/* Graceful stop: in-flight calls get up to grace_ms to finish. Frees s. */
void server_stop(server *s, int grace_ms);

#endif
