/* http: the operator's HTTP endpoint (libmicrohttpd), beside gRPC.
 *
 * Serves GET /metrics (the registry in Prometheus text format 0.0.4) and
 * GET /healthz ("ok" while the process answers at all), plus the routes the
 * caller adds: /readyz with the caller's own checks, JSON for the console,
 * the last behind a guard that checks the request's bearer token.
 * Requests run on libmicrohttpd's threads; a route's handler must be
 * thread-safe. Anything else is 404, and methods other than GET and HEAD
 * are 405. */
#ifndef AISLE_OBS_HTTP_H
#define AISLE_OBS_HTTP_H

#include <stddef.h>

#include "services/base/buf.h"

#define OBS_HTTP_MAX_ROUTES 16

typedef struct obs_http_request obs_http_request;

/* A query parameter of the request ("user" in /x?user=u1), or NULL. */
const char *obs_http_query(obs_http_request *r, const char *name);
/* The token of an "Authorization: Bearer TOKEN" header, or NULL; valid
 * while the handler runs. Never log it. */
const char *obs_http_bearer(obs_http_request *r);

/* Writes the body into body and returns the HTTP status (200, 503, ...). */
typedef int (*obs_http_handler)(void *arg, obs_http_request *r, buf *body);

/* A streamed answer (status 200, chunked): the handler runs on a thread of
 * its own and writes the body piece by piece with obs_http_write, each
 * piece sent as soon as it is written. r is a copy of the request that
 * lives until the handler returns. */
typedef struct obs_http_stream obs_http_stream;
typedef void (*obs_http_stream_handler)(void *arg, obs_http_request *r, obs_http_stream *st);
/* Sends n bytes. Returns 0, or -1 once the client has gone (stop then). */
int obs_http_write(obs_http_stream *st, const char *data, size_t n);

typedef struct obs_http_route {
    const char *path;         /* exact match, "/readyz" */
    const char *content_type; /* "text/plain; charset=utf-8", ... */
    obs_http_handler fn;      /* one of fn and stream */
    void *arg;                /* borrowed; must outlive the server */
    obs_http_stream_handler stream;
    int need; /* 0: open to anyone; else the role the config's guard must grant */
} obs_http_route;

/* Whether a request with bearer (NULL when none) may use a route that
 * needs role need (> 0): 0 yes, else the HTTP status to refuse it with
 * (401 no or an unknown token, 403 a role too low). */
typedef int (*obs_http_guard)(void *arg, const char *bearer, int need);

typedef struct obs_http_config {
    const char *listen; /* HOST:PORT (IPv4 address or name); port 0 picks a free one */
    obs_http_route routes[OBS_HTTP_MAX_ROUTES];
    size_t n_routes;
    obs_http_guard guard; /* NULL: every route is open */
    void *guard_arg;      /* borrowed; must outlive the server */
} obs_http_config;

typedef struct obs_http obs_http;

/* Starts serving cfg (copied; the strings are borrowed). Returns AISLE_OK,
 * or AISLE_EINVAL (a bad address, the port in use) with err set. */
int obs_http_start(const obs_http_config *cfg, obs_http **out, char *err, size_t errlen);
int obs_http_port(const obs_http *h);
/* Stops taking requests, waits for those running, frees h. NULL is a no-op. */
void obs_http_stop(obs_http *h);

#endif
