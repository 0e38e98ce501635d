/* http: libmicrohttpd with an internal polling thread; every answer is
 * built whole in a buf and handed to the library, which frees it. */
#include "services/obs/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "services/base/status.h"
#include "services/obs/metrics.h"

struct obs_http {
    obs_http_config cfg;
    struct MHD_Daemon *d;
    int port;
};

/* A live request (conn), or a stream's copy of its query arguments. */
struct obs_http_request {
    struct MHD_Connection *conn;
    char **args; /* name, value, name, value ... (owned) */
    size_t n_args;
    char *bearer; /* a stream's copy of the bearer token (owned), or NULL */
};

/* The token after "Bearer " in the Authorization header of conn, or NULL. */
static const char *obs_http_conn_bearer(struct MHD_Connection *conn) {
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncasecmp(v, "Bearer ", 7) != 0) return NULL;
    for (v += 7; *v == ' '; v++) {
    }
    return *v ? v : NULL;
}

const char *obs_http_bearer(obs_http_request *r) {
    return r->conn ? obs_http_conn_bearer(r->conn) : r->bearer;
}

const char *obs_http_query(obs_http_request *r, const char *name) {
    if (r->conn) return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    for (size_t i = 0; i + 1 < r->n_args; i += 2)
        if (strcmp(r->args[i], name) == 0) return r->args[i + 1];
    return NULL;
}

/* A streamed answer: the handler's thread writes into one end of a socket
 * pair, libmicrohttpd's reader callback reads the other. Closing the
 * reader's end (the client went) makes the writer's sends fail. */
struct obs_http_stream {
    const obs_http_route *route;
    obs_http_request req;
    int fds[2]; /* [0] read by libmicrohttpd, [1] written by the handler */
    pthread_t thread;
};

int obs_http_write(obs_http_stream *st, const char *data, size_t n) {
    while (n) {
        ssize_t w = send(st->fds[1], data, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static enum MHD_Result obs_http_copy_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value) {
    obs_http_request *r = cls;
    char **args = realloc(r->args, (r->n_args + 2) * sizeof(char *));
    (void)kind;
    if (!args) return MHD_NO;
    r->args = args;
    args[r->n_args] = strdup(key);
    args[r->n_args + 1] = strdup(value ? value : "");
    r->n_args += 2;
    return args[r->n_args - 2] && args[r->n_args - 1] ? MHD_YES : MHD_NO;
}

static void obs_http_args_free(obs_http_request *r) {
    for (size_t i = 0; i < r->n_args; i++) free(r->args[i]);
    free(r->args);
    if (r->bearer) memset(r->bearer, 0, strlen(r->bearer)); /* no token lingers */
    free(r->bearer);
}

static void *obs_http_stream_main(void *arg) {
    obs_http_stream *st = arg;
    st->route->stream(st->route->arg, &st->req, st);
    close(st->fds[1]); /* the end of the body */
    return NULL;
}

static ssize_t obs_http_stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    obs_http_stream *st = cls;
    ssize_t n = read(st->fds[0], out, max);
    (void)pos;
    if (n > 0) return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void obs_http_stream_free(void *cls) {
    obs_http_stream *st = cls;
    close(st->fds[0]); /* a handler still writing now fails and returns */
    pthread_join(st->thread, NULL);
    obs_http_args_free(&st->req);
    free(st);
}

/* Starts route's handler on its thread and queues the streamed response. */
static enum MHD_Result obs_http_start_stream(struct MHD_Connection *conn,
                                             const obs_http_route *route) {
    obs_http_stream *st = calloc(1, sizeof(*st));
    struct MHD_Response *resp;
    enum MHD_Result rc;

    if (!st) return MHD_NO;
    st->route = route;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st->fds) != 0) {
        free(st);
        return MHD_NO;
    }
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, obs_http_copy_arg, &st->req);
    if (obs_http_conn_bearer(conn) && !(st->req.bearer = strdup(obs_http_conn_bearer(conn)))) {
        close(st->fds[0]);
        close(st->fds[1]);
        obs_http_args_free(&st->req);
        free(st);
        return MHD_NO;
    }
    if (pthread_create(&st->thread, NULL, obs_http_stream_main, st) != 0) {
        close(st->fds[0]);
        close(st->fds[1]);
        obs_http_args_free(&st->req);
        free(st);
        return MHD_NO;
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, obs_http_stream_read, st,
                                             obs_http_stream_free);
    if (!resp) {
        obs_http_stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, route->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

static int obs_http_metrics(void *arg, obs_http_request *r, buf *body) {
    (void)arg;
    (void)r;
    return metrics_render(body) == AISLE_OK ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static int obs_http_healthz(void *arg, obs_http_request *r, buf *body) {
    (void)arg;
    (void)r;
    buf_puts(body, "ok\n");
    return MHD_HTTP_OK;
}

static const obs_http_route obs_http_builtin[] = {
    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", obs_http_metrics, NULL, NULL, 0},
    {"/healthz", "text/plain; charset=utf-8", obs_http_healthz, NULL, NULL, 0},
};

static const obs_http_route *obs_http_find(const obs_http *h, const char *url) {
    for (size_t i = 0; i < sizeof(obs_http_builtin) / sizeof(obs_http_builtin[0]); i++)
        if (strcmp(url, obs_http_builtin[i].path) == 0) return &obs_http_builtin[i];
    for (size_t i = 0; i < h->cfg.n_routes; i++)
        if (strcmp(url, h->cfg.routes[i].path) == 0) return &h->cfg.routes[i];
    return NULL;
}

/* Queues body (taken over) with status and content type. */
static enum MHD_Result obs_http_send(struct MHD_Connection *conn, int status,
                                     const char *type, buf *body) {
    size_t len = body->len;
    char *data = buf_take(body);
    struct MHD_Response *resp;
    enum MHD_Result rc;

    if (!data) return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A guarded route refused: 401 asks for a bearer token, 403 says the
 * token's role is too low. */
static enum MHD_Result obs_http_refuse(struct MHD_Connection *conn, int status) {
    static const char unauth[] = "{\"error\":\"a bearer token is required (Authorization: "
                                 "Bearer TOKEN)\",\"code\":\"UNAUTHENTICATED\"}\n",
                      denied[] = "{\"error\":\"this token's role may not use this path\","
                                 "\"code\":\"PERMISSION_DENIED\"}\n";
    const char *text = status == MHD_HTTP_FORBIDDEN ? denied : unauth;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                               MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status != MHD_HTTP_FORBIDDEN)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    rc = MHD_queue_response(conn, status == MHD_HTTP_FORBIDDEN ? MHD_HTTP_FORBIDDEN
                                                               : MHD_HTTP_UNAUTHORIZED, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result obs_http_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload, size_t *upload_len, void **state) {
    obs_http *h = cls;
    const obs_http_route *route;
    obs_http_request req = {conn, NULL, 0, NULL};
    buf body = {0};
    int status;

    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        buf_puts(&body, "only GET and HEAD\n");
        return obs_http_send(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", &body);
    }
    if (!(route = obs_http_find(h, url))) {
        buf_printf(&body, "no such path: %s\n", url);
        return obs_http_send(conn, MHD_HTTP_NOT_FOUND, "text/plain", &body);
    }
    if (route->need && h->cfg.guard &&
        (status = h->cfg.guard(h->cfg.guard_arg, obs_http_conn_bearer(conn), route->need)) != 0)
        return obs_http_refuse(conn, status);
    if (route->stream) return obs_http_start_stream(conn, route);
    status = route->fn(route->arg, &req, &body);
    return obs_http_send(conn, status, route->content_type, &body);
}

/* HOST:PORT into an IPv4 socket address. */
static int obs_http_addr(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen) {
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char host[256], *end;
    long port;

    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        return status_fail(AISLE_EINVAL, err, errlen, "http listen address '%s' is not HOST:PORT",
                           listen);
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535)
        return status_fail(AISLE_EINVAL, err, errlen, "http listen address '%s': bad port",
                           listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "http listen address '%s': cannot resolve '%s'", listen, host);
    memcpy(sa, ai->ai_addr, sizeof(*sa));
    freeaddrinfo(ai);
    sa->sin_port = htons((uint16_t)port);
    return AISLE_OK;
}

int obs_http_start(const obs_http_config *cfg, obs_http **out, char *err, size_t errlen) {
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    obs_http *h;
    int rc;

    *out = NULL;
    if ((rc = obs_http_addr(cfg->listen, &sa, err, errlen)) != AISLE_OK) return rc;
    if (!(h = calloc(1, sizeof(*h)))) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    h->cfg = *cfg;
    /* A thread per connection: a slow readiness check (a Redis ping that
     * times out) must not hold up a scrape. */
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, obs_http_answer, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned int)30, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return status_fail(AISLE_EINVAL, err, errlen,
                           "cannot listen for http on %s (address in use or not local)",
                           cfg->listen);
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    *out = h;
    return AISLE_OK;
}

int obs_http_port(const obs_http *h) { return h->port; }

void obs_http_stop(obs_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
