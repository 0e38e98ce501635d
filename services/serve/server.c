/* server: gRPC core call handling for the Recommender service. */
#include "services/serve/server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/obs/hooks.h"
#include "services/serve/auth.h"
#include "services/serve/grpcstatus.h"
#include "services/serve/tls.h"

/* Calls that arrive while no request is posted wait in gRPC's pending list,
 * and shutdown cancels those instead of letting them finish; keeping many
 * requests posted means every call that arrived is matched and finishes. */
#define SERVER_REQUESTS_PER_METHOD 128

struct server_reply {
    grpc_status_code status;
    char msg[512];
    uint8_t *body; /* malloc'ed packed response, owned by the reply */
    size_t len;
};

typedef struct server_worker server_worker;

/* A method as registered: the caller's definition and gRPC's handle. */
typedef struct server_registered {
    server_method def;
    void *handle_grpc; /* from grpc_server_register_method */
} server_registered;

/* One call from request to completion; the tag of both of its batches. */
typedef struct server_call {
    int method; /* index into methods, or -1 for the generic request */
    int replied;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *response;
    grpc_slice status_msg;
    int cancelled;
    /* Streaming calls are bound to a queue of their own, so the worker that
     * runs the handler can wait for each send to complete. */
    grpc_completion_queue *call_cq;
} server_call;

struct server_stream {
    server_call *sc;
    server_reply rep;
    int sent_initial;
    int close_done; /* RECV_CLOSE_ON_SERVER completed: the client is done */
    char close_tag, send_tag;
};

struct server_worker {
    server *srv;
    grpc_completion_queue *cq; /* its pool's queue: unary calls, or streams */
    pthread_t thread;
    profile_store *profiles;
};

struct server {
    server_config cfg;
    catalog *cat;
    grpc_server *gs;
    /* Unary calls and streaming calls are matched on different queues, each
     * drained by its own workers, so long Shop streams never hold the
     * workers that Recommend and Health need. */
    grpc_completion_queue *cq, *stream_cq;
    int port;
    server_worker *workers; /* n_unary on cq, then the stream workers */
    int n_workers, n_unary;
    int n_threads; /* workers whose thread is running */
    server_registered methods[SERVER_MAX_METHODS];
    int n_methods;
    atomic_uint_fast64_t next_request_id;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int shutdown_done; /* the server's shutdown tag has arrived */
    int accepting;     /* keep re-posting requests */
};

static char server_shutdown_tag;

static void server_reply_vfail(server_reply *rep, grpc_status_code code, const char *fmt,
                               va_list ap) {
    rep->status = code;
    vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
}

/* The transport's own failures, which have a gRPC status but no AISLE code
 * (an unknown method). */
static void server_reply_grpc(server_reply *rep, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void server_reply_grpc(server_reply *rep, grpc_status_code code, const char *fmt,
                              ...) {
    va_list ap;
    va_start(ap, fmt);
    server_reply_vfail(rep, code, fmt, ap);
    va_end(ap);
}

void server_reply_fail(server_reply *rep, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    server_reply_vfail(rep, grpcstatus_of(code), fmt, ap);
    va_end(ap);
}

void server_reply_bytes(server_reply *rep, uint8_t *body, size_t len) {
    free(rep->body);
    rep->body = body;
    rep->len = len;
    rep->status = GRPC_STATUS_OK;
}

void server_reply_pack(server_reply *rep, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    rep->body = malloc(len ? len : 1);
    if (!rep->body) {
        server_reply_fail(rep, AISLE_ENOMEM, "out of memory");
        return;
    }
    rep->len = protobuf_c_message_pack(msg, rep->body);
    rep->status = GRPC_STATUS_OK;
}

server_reply *server_reply_new(void) { return calloc(1, sizeof(server_reply)); }

int server_reply_status(const server_reply *rep, const char **msg) {
    if (msg) *msg = rep->msg;
    return (int)rep->status;
}

void server_reply_free(server_reply *rep) {
    if (!rep) return;
    free(rep->body);
    free(rep);
}

static void server_request_id(server *s, char *buf, size_t len) {
    uint64_t n = atomic_fetch_add(&s->next_request_id, 1);
    snprintf(buf, len, "%08" PRIx64 "-%06" PRIx64,
             (uint64_t)clock_wall_ms() & 0xffffffffu, n & 0xffffff);
    log_set_request_id(buf); /* this worker's log lines name the call until obs_rpc_end */
}

static void server_call_free(server_call *sc);

/* Posts a request for the next call of method m (or a generic one). */
static int server_post_request(server *s, int m) {
    server_call *sc = calloc(1, sizeof(*sc));
    grpc_call_error e;
    if (!sc) return -1;
    sc->method = m;
    grpc_metadata_array_init(&sc->md);
    if (m >= 0 && s->methods[m].def.stream &&
        !(sc->call_cq = grpc_completion_queue_create_for_pluck(NULL))) {
        free(sc);
        return -1;
    }
    if (m >= 0) {
        grpc_completion_queue *notify = sc->call_cq ? s->stream_cq : s->cq;
        e = grpc_server_request_registered_call(
            s->gs, s->methods[m].handle_grpc, &sc->call, &sc->deadline, &sc->md,
            &sc->payload, sc->call_cq ? sc->call_cq : s->cq, notify, sc);
    } else {
        grpc_call_details_init(&sc->details);
        e = grpc_server_request_call(s->gs, &sc->call, &sc->details, &sc->md,
                                     s->cq, s->cq, sc);
    }
    if (e != GRPC_CALL_OK) {
        sc->call = NULL;
        server_call_free(sc);
        return -1;
    }
    return 0;
}

static void server_call_free(server_call *sc) {
    if (sc->call) grpc_call_unref(sc->call);
    grpc_metadata_array_destroy(&sc->md);
    if (sc->method < 0) grpc_call_details_destroy(&sc->details);
    if (sc->payload) grpc_byte_buffer_destroy(sc->payload);
    if (sc->response) grpc_byte_buffer_destroy(sc->response);
    if (sc->replied) grpc_slice_unref(sc->status_msg);
    if (sc->call_cq) {
        /* Every tag on it has been plucked, so it is empty. */
        grpc_completion_queue_shutdown(sc->call_cq);
        grpc_completion_queue_destroy(sc->call_cq);
    }
    free(sc);
}

/* Starts a batch on a streaming call and waits for it on the call's own
 * queue. Returns 0, or -1 when the batch failed (the client is gone). */
static int server_stream_batch(server_stream *st, const grpc_op *ops, size_t n,
                               void *tag) {
    grpc_event ev;
    if (grpc_call_start_batch(st->sc->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return AISLE_ECANCELED;
    ev = grpc_completion_queue_pluck(st->sc->call_cq, tag,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success ? AISLE_OK : AISLE_ECANCELED;
}

int server_stream_cancelled(server_stream *st) {
    if (!st->close_done) {
        grpc_event ev = grpc_completion_queue_pluck(st->sc->call_cq, &st->close_tag,
                                                    gpr_time_0(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_OP_COMPLETE) st->close_done = 1;
    }
    return st->close_done && st->sc->cancelled;
}

int server_stream_send(server_stream *st, const ProtobufCMessage *msg) {
    grpc_op ops[2];
    size_t n = 0, len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf;
    grpc_slice slice;
    grpc_byte_buffer *bb;
    int rc;

    if (server_stream_cancelled(st)) return AISLE_ECANCELED;
    buf = malloc(len ? len : 1);
    if (!buf) return AISLE_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    slice = grpc_slice_new(buf, len, free); /* the slice frees buf */
    bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    memset(ops, 0, sizeof(ops));
    if (!st->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        st->sent_initial = 1;
        obs_rpc_first_message();
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    rc = server_stream_batch(st, ops, n, &st->send_tag);
    grpc_byte_buffer_destroy(bb);
    return rc;
}

void server_stream_fail(server_stream *st, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    server_reply_vfail(&st->rep, grpcstatus_of(code), fmt, ap);
    va_end(ap);
}

/* The request's bytes into *body (the caller unrefs it); AISLE_OK, or
 * AISLE_EINVAL with rep failed. */
static int server_read_body(server_call *sc, grpc_slice *body, server_reply *rep) {
    grpc_byte_buffer_reader rd;
    if (!sc->payload) {
        server_reply_fail(rep, AISLE_EINVAL, "request carried no message");
        return AISLE_EINVAL;
    }
    if (!grpc_byte_buffer_reader_init(&rd, sc->payload)) {
        server_reply_fail(rep, AISLE_EINVAL, "request body could not be read");
        return AISLE_EINVAL;
    }
    *body = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    return AISLE_OK;
}

/* Time left before the call's deadline, in ms; INT64_MAX without one. */
static int64_t server_time_left(const server_call *sc) {
    gpr_timespec left;
    if (gpr_time_cmp(sc->deadline, gpr_inf_future(sc->deadline.clock_type)) == 0)
        return INT64_MAX;
    left = gpr_time_sub(gpr_convert_clock_type(sc->deadline, GPR_CLOCK_MONOTONIC),
                        gpr_now(GPR_CLOCK_MONOTONIC));
    return gpr_time_to_millis(left);
}

/* Reads the request and checks what the transport checks for every method:
 * a body within the method's size limit, credentials with the method's
 * role, time left before the deadline. AISLE_OK with *body set (the caller
 * unrefs it), or a code with rep failed and the handler not to be run. */
static int server_admit(server *s, server_call *sc, grpc_slice *body, server_reply *rep) {
    const server_method *m = &s->methods[sc->method].def;
    size_t max = m->max_request ? m->max_request : SERVER_DEFAULT_MAX_REQUEST;
    int rc;
    if ((rc = auth_check(s->cfg.auth, &sc->md, m->role)) != AISLE_OK) {
        server_reply_fail(rep, rc, rc == AISLE_EUNAUTH ? "a valid bearer token is required"
                                                       : "this token may not call %s",
                          m->path);
        return rc;
    }
    if (server_time_left(sc) <= 0) {
        server_reply_fail(rep, AISLE_ETIMEDOUT, "the deadline passed before the call started");
        return AISLE_ETIMEDOUT;
    }
    if ((rc = server_read_body(sc, body, rep)) != AISLE_OK) return rc;
    if (GRPC_SLICE_LENGTH(*body) > max) {
        server_reply_fail(rep, AISLE_EFULL, "request of %zu bytes; %s takes at most %zu",
                          (size_t)GRPC_SLICE_LENGTH(*body), m->path, max);
        grpc_slice_unref(*body);
        return AISLE_EFULL;
    }
    return AISLE_OK;
}

/* Runs a streaming method on this worker from start to status. */
static void server_run_stream(server_worker *w, server_call *sc) {
    server *s = w->srv;
    server_stream st;
    grpc_op ops[2];
    size_t n = 0;
    int64_t left = server_time_left(sc);
    grpc_slice body;
    server_call_ctx ctx = {s->cat, w->profiles, s->methods[sc->method].def.arg,
                           left == INT64_MAX ? INT64_MAX : clock_mono_ms() + left, ""};

    memset(&st, 0, sizeof(st));
    st.sc = sc;
    st.rep.status = GRPC_STATUS_OK;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &sc->cancelled;
    server_request_id(s, ctx.request_id, sizeof(ctx.request_id));
    if (grpc_call_start_batch(sc->call, ops, 1, &st.close_tag, NULL) != GRPC_CALL_OK) {
        log_error("server", "could not start a streaming call");
        server_call_free(sc);
        return;
    }
    /* A call refused here still ends through this stream's own queue: its
     * batches never reach the workers' queue. */
    if (server_admit(s, sc, &body, &st.rep) == AISLE_OK) {
        s->methods[sc->method].def.stream(&ctx, GRPC_SLICE_START_PTR(body),
                                          GRPC_SLICE_LENGTH(body), &st);
        grpc_slice_unref(body);
    }

    memset(ops, 0, sizeof(ops));
    if (!st.sent_initial) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    sc->status_msg = grpc_slice_from_copied_string(st.rep.msg);
    sc->replied = 1;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = st.rep.status;
    ops[n].data.send_status_from_server.status_details =
        st.rep.status == GRPC_STATUS_OK ? NULL : &sc->status_msg;
    n++;
    obs_rpc_end(st.rep.status); /* before the status leaves, as for unary calls */
    server_stream_batch(&st, ops, n, &st.send_tag);
    if (!st.close_done)
        grpc_completion_queue_pluck(sc->call_cq, &st.close_tag,
                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    server_call_free(sc);
}

/* Sends rep as the answer of a unary call: initial metadata, the message
 * when the status is OK, the status, and the close that tells whether the
 * client cancelled. The call is freed when the batch completes. */
static void server_send_reply(server_call *sc, server_reply *rep) {
    grpc_op ops[4];
    size_t nops = 0;

    memset(ops, 0, sizeof(ops));
    ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (rep->status == GRPC_STATUS_OK) {
        grpc_slice body = grpc_slice_from_copied_buffer((const char *)rep->body, rep->len);
        sc->response = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        ops[nops].op = GRPC_OP_SEND_MESSAGE;
        ops[nops++].data.send_message.send_message = sc->response;
    } else {
        log_debug("server", "call failed with status %d: %s", (int)rep->status, rep->msg);
    }
    sc->status_msg = grpc_slice_from_copied_string(rep->msg);
    sc->replied = 1;
    ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[nops].data.send_status_from_server.status = rep->status;
    ops[nops++].data.send_status_from_server.status_details =
        rep->status == GRPC_STATUS_OK ? NULL : &sc->status_msg;
    ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[nops++].data.recv_close_on_server.cancelled = &sc->cancelled;
    if (grpc_call_start_batch(sc->call, ops, nops, sc, NULL) != GRPC_CALL_OK) {
        log_error("server", "could not answer a call");
        server_call_free(sc);
    }
}

/* Runs the handler of the call's method and answers it. */
static void server_answer(server_worker *w, server_call *sc) {
    server *s = w->srv;
    server_reply rep = {GRPC_STATUS_OK, "", NULL, 0};
    grpc_slice body;

    obs_rpc_begin(sc->method < 0 ? NULL : s->methods[sc->method].def.path);
    if (sc->method < 0) {
        char *path = grpc_slice_to_c_string(sc->details.method);
        server_reply_grpc(&rep, GRPC_STATUS_UNIMPLEMENTED, "method %s is not implemented",
                          path);
        gpr_free(path);
    } else if (s->methods[sc->method].def.stream) {
        server_run_stream(w, sc);
        return;
    } else if (server_admit(s, sc, &body, &rep) == AISLE_OK) {
        const server_method *m = &s->methods[sc->method].def;
        server_call_ctx ctx = {s->cat, w->profiles, m->arg, INT64_MAX, ""};
        server_request_id(s, ctx.request_id, sizeof(ctx.request_id));
        m->unary(&ctx, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body), &rep);
        grpc_slice_unref(body);
    }
    /* Counted before the reply leaves, so a client that has its answer
     * finds the call in the metrics. */
    obs_rpc_end(rep.status);
    server_send_reply(sc, &rep);
    free(rep.body);
}

static void *server_worker_main(void *arg) {
    server_worker *w = arg;
    server *s = w->srv;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == &server_shutdown_tag) {
            pthread_mutex_lock(&s->lock);
            s->shutdown_done = 1;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        server_call *sc = ev.tag;
        if (sc->replied || !ev.success) {
            /* The answer went out, or the request ended with the server. */
            server_call_free(sc);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        int accepting = s->accepting;
        pthread_mutex_unlock(&s->lock);
        if (accepting && server_post_request(s, sc->method) != 0)
            log_error("server", "could not post a request for new calls");
        server_answer(w, sc);
    }
    return NULL;
}

int server_port(const server *s) { return s->port; }

/* Frees what server_alloc and server_open_workers made (no gRPC yet). */
static void server_free(server *s) {
    for (int i = 0; s->workers && i < s->n_workers; i++)
        profile_store_close(s->workers[i].profiles);
    free(s->workers);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

/* A server with its workers' Redis connections prepared. */
static int server_alloc(const server_config *cfg, catalog *c, server **out, char *err,
                        size_t errlen) {
    server *s;
    if (cfg->n_methods > SERVER_MAX_METHODS)
        return status_fail(AISLE_EINVAL, err, errlen, "%zu methods, at most %d",
                           cfg->n_methods, SERVER_MAX_METHODS);
    if (!(s = calloc(1, sizeof(*s)))) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    s->cfg = *cfg;
    s->cat = c;
    s->n_unary = cfg->threads > 0 ? cfg->threads : 4;
    s->n_workers = s->n_unary + (cfg->stream_threads > 0 ? cfg->stream_threads : 4);
    s->accepting = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    atomic_init(&s->next_request_id, 1);
    if (!(s->workers = calloc((size_t)s->n_workers, sizeof(*s->workers)))) {
        server_free(s);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    for (int i = 0; i < s->n_workers; i++) {
        int rc;
        s->workers[i].srv = s;
        rc = profile_store_open(cfg->redis, &cfg->profile, &s->workers[i].profiles, err,
                                errlen);
        if (rc != AISLE_OK) {
            server_free(s);
            return rc;
        }
    }
    *out = s;
    return AISLE_OK;
}

/* Shuts both queues down, drains what is left and destroys them. */
static void server_queues_destroy(server *s) {
    grpc_completion_queue *q[2] = {s->cq, s->stream_cq};
    for (int i = 0; i < 2; i++) {
        grpc_completion_queue_shutdown(q[i]);
        while (grpc_completion_queue_next(q[i], gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(q[i]);
    }
}

/* Creates the gRPC server, registers the methods and binds the address. */
/* The largest request any method takes: gRPC refuses bigger messages
 * before buffering them (its own default is 4 MiB). */
static size_t server_max_request(const server_config *cfg) {
    size_t max = 0;
    for (size_t i = 0; i < cfg->n_methods; i++) {
        size_t m = cfg->methods[i].max_request ? cfg->methods[i].max_request
                                               : SERVER_DEFAULT_MAX_REQUEST;
        if (m > max) max = m;
    }
    return max;
}

/* The plaintext Unix socket beside the network port. */
static int server_listen_local(server *s, char *err, size_t errlen) {
    char addr[PATH_MAX + 8];
    grpc_server_credentials *creds;
    int ok;
    if (snprintf(addr, sizeof(addr), "unix:%s", s->cfg.local_socket) >= (int)sizeof(addr))
        return status_fail(AISLE_EINVAL, err, errlen, "local socket path too long");
    creds = grpc_insecure_server_credentials_create();
    ok = grpc_server_add_http2_port(s->gs, addr, creds) != 0;
    grpc_server_credentials_release(creds);
    return ok ? AISLE_OK
              : status_fail(AISLE_EINVAL, err, errlen, "cannot listen on %s", addr);
}

static int server_listen(server *s, char *err, size_t errlen) {
    grpc_server_credentials *creds;
    grpc_arg arg = {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                    {.integer = (int)server_max_request(&s->cfg)}};
    grpc_channel_args args = {1, &arg};
    grpc_init();
    s->cq = grpc_completion_queue_create_for_next(NULL);
    s->stream_cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < s->n_workers; i++)
        s->workers[i].cq = i < s->n_unary ? s->cq : s->stream_cq;
    s->gs = grpc_server_create(&args, NULL);
    for (size_t i = 0; i < s->cfg.n_methods; i++) {
        server_registered *m = &s->methods[s->n_methods++];
        m->def = s->cfg.methods[i];
        assert(!m->def.unary != !m->def.stream);
        m->handle_grpc = grpc_server_register_method(
            s->gs, m->def.path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    grpc_server_register_completion_queue(s->gs, s->cq, NULL);
    grpc_server_register_completion_queue(s->gs, s->stream_cq, NULL);
    creds = s->cfg.tls ? tls_credentials(s->cfg.tls) : grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->gs, s->cfg.listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        status_fmt(err, errlen, "cannot listen on %s (bad address or port in use)",
                   s->cfg.listen);
        goto fail;
    }
    if (s->cfg.local_socket && server_listen_local(s, err, errlen) != AISLE_OK) goto fail;
    return AISLE_OK;
fail:
    grpc_server_destroy(s->gs);
    server_queues_destroy(s);
    grpc_shutdown();
    return AISLE_EINVAL;
}

/* Posts the requests every method keeps outstanding and starts the workers. */
static int server_run(server *s, char *err, size_t errlen) {
    for (int m = -1; m < s->n_methods; m++)
        for (int i = 0; i < SERVER_REQUESTS_PER_METHOD; i++)
            if (server_post_request(s, m) != 0)
                return status_fail(AISLE_ENOMEM, err, errlen, "cannot post requests for calls");
    for (int i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, server_worker_main, &s->workers[i]))
            return status_fail(AISLE_ENOMEM, err, errlen, "cannot start worker threads");
        s->n_threads++;
    }
    return AISLE_OK;
}

int server_start(const server_config *cfg, catalog *c, server **out, char *err,
                 size_t errlen) {
    server *s = NULL;
    int rc;
    *out = NULL;
    if ((rc = server_alloc(cfg, c, &s, err, errlen)) != AISLE_OK) return rc;
    if ((rc = server_listen(s, err, errlen)) != AISLE_OK) {
        server_free(s);
        return rc;
    }
    grpc_server_start(s->gs);
    if ((rc = server_run(s, err, errlen)) != AISLE_OK) {
        server_stop(s, 0);
        return rc;
    }
    *out = s;
    return AISLE_OK;
}

void server_stop(server *s, int grace_ms) {
    struct timespec until;
    int cancelled = 0;

    pthread_mutex_lock(&s->lock);
    s->accepting = 0;
    pthread_mutex_unlock(&s->lock);
    grpc_server_shutdown_and_notify(s->gs, s->cq, &server_shutdown_tag);

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += grace_ms / 1000;
    until.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (s->n_threads == 0) {
        /* No worker will see the tag: a failed start drains it here (the
         * posted stream requests end on their queue, freed below). */
        grpc_server_cancel_all_calls(s->gs);
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(
                s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.type != GRPC_OP_COMPLETE) continue;
            if (ev.tag == &server_shutdown_tag) break;
            server_call_free(ev.tag);
        }
        s->shutdown_done = 1;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->shutdown_done) {
        if (!cancelled &&
            pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0 &&
            !s->shutdown_done) {
            log_warn("server", "grace period over: cancelling calls in flight");
            grpc_server_cancel_all_calls(s->gs);
            cancelled = 1;
        } else if (cancelled) {
            pthread_cond_wait(&s->cond, &s->lock);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!cancelled) log_info("server", "stopped: every call in flight finished");

    grpc_server_destroy(s->gs);
    grpc_completion_queue_shutdown(s->cq);
    grpc_completion_queue_shutdown(s->stream_cq);
    for (int i = 0; i < s->n_threads; i++) pthread_join(s->workers[i].thread, NULL);
    if (s->n_threads == 0) {
        grpc_completion_queue *q[2] = {s->cq, s->stream_cq};
        for (int i = 0; i < 2; i++)
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(
                    q[i], gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
                /* a request posted on the stream queue ends here */
                if (ev.type == GRPC_OP_COMPLETE) server_call_free(ev.tag);
            }
    }
    grpc_completion_queue_destroy(s->cq);
    grpc_completion_queue_destroy(s->stream_cq);
    grpc_shutdown();
    server_free(s);
}
