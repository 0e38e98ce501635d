/* server: gRPC core call handling for the Recommender service. */
#include "services/server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/aisle.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "ranker/rank.h"
#include "services/clock.h"
#include "services/log.h"

#define SERVER_POPULAR_ITEMS 200
/* Calls that arrive while no request is posted wait in gRPC's pending list,
 * and shutdown cancels those instead of letting them finish; keeping many
 * requests posted means every call that arrived is matched and finishes. */
#define SERVER_REQUESTS_PER_METHOD 128

typedef struct server_reply {
    grpc_status_code status;
    char msg[512];
    uint8_t *body; /* malloc'ed packed response, owned by the reply */
    size_t len;
} server_reply;

typedef struct server_worker server_worker;
typedef void (*server_handler)(server_worker *w, const uint8_t *req,
                               size_t len, server_reply *rep);

typedef struct server_method {
    const char *path;
    server_handler handle;        /* unary, or */
    server_stream_handler stream; /* server streaming */
    void *stream_arg;
    void *handle_grpc; /* from grpc_server_register_method */
} server_method;

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
    pthread_t thread;
    profile_store *profiles;
};

struct server {
    server_config cfg;
    catalog *cat;
    grpc_server *gs;
    grpc_completion_queue *cq;
    int port;
    server_worker *workers;
    int n_workers;
    int n_threads; /* workers whose thread is running */
    server_method methods[8];
    int n_methods;
    atomic_uint_fast64_t next_request_id;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int shutdown_done; /* the server's shutdown tag has arrived */
    int accepting;     /* keep re-posting requests */
};

static char server_shutdown_tag;

static void server_reply_error(server_reply *rep, grpc_status_code code,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void server_reply_error(server_reply *rep, grpc_status_code code,
                               const char *fmt, ...) {
    va_list ap;
    rep->status = code;
    va_start(ap, fmt);
    vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
    va_end(ap);
}

/* Packs msg into rep->body. */
static void server_reply_pack(server_reply *rep, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    rep->body = malloc(len ? len : 1);
    if (!rep->body) {
        server_reply_error(rep, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    rep->len = protobuf_c_message_pack(msg, rep->body);
    rep->status = GRPC_STATUS_OK;
}

static void server_request_id(server *s, char *buf, size_t len) {
    uint64_t n = atomic_fetch_add(&s->next_request_id, 1);
    snprintf(buf, len, "%08" PRIx64 "-%06" PRIx64,
             (uint64_t)clock_wall_ms() & 0xffffffffu, n & 0xffffff);
}

typedef struct server_popular_ctx {
    profile_store *ps;
    int64_t now_ms;
} server_popular_ctx;

/* The ranker's popular list: read from Redis only when a result needs it. */
static int server_popular(void *arg, profile_entry **out, char *err, size_t errlen) {
    const server_popular_ctx *pc = arg;
    return profile_popular(pc->ps, pc->now_ms, SERVER_POPULAR_ITEMS, out, err, errlen);
}

int server_recommend(catalog *c, profile_store *ps, const char *user_id, int limit,
                     const rank_filter *filter, rank_result *out, char *err,
                     size_t errlen) {
    profile p = {0};
    int rc;
    int64_t now = clock_wall_ms();
    server_popular_ctx pc = {ps, now};

    memset(out, 0, sizeof(*out));
    if (limit < 0 || limit > RANK_MAX_LIMIT) {
        snprintf(err, errlen, "limit %d is outside 0..%d", limit, RANK_MAX_LIMIT);
        return PROFILE_EINVAL;
    }
    /* The whole profile (bounded by the store's --max-items): every item
     * in it counts, and every item in it is left out of the answer. */
    rc = profile_get(ps, user_id, now, SIZE_MAX >> 1, &p, err, errlen);
    if (rc != 0) return rc;
    rank_request rq = {&p, server_popular, &pc, limit ? limit : SERVER_DEFAULT_LIMIT, filter};
    rc = rank_recommend(c, &rq, out, err, errlen);
    if (rc != 0 && rc != PROFILE_EIO) rc = SERVER_EINTERNAL;
    profile_clear(&p);
    return rc;
}

void server_scored_item(Aisle__V1__ScoredItem *out, const rank_hit *h) {
    aisle__v1__scored_item__init(out);
    out->item_id = h->item.item_id;
    out->score = h->score;
    /* protobuf-c's message fields are not const; packing only reads. */
    out->reasons = (char **)h->reasons;
    out->n_reasons = (size_t)h->n_reasons;
    out->title = h->item.title;
    out->creator_id = h->item.creator_id;
    out->category = h->item.category;
    out->price_cents = h->item.price_cents;
    out->brand = h->item.brand;
}

/* The gRPC status for a pipeline error code. */
static grpc_status_code server_status_of(int rc) {
    return rc == PROFILE_EINVAL ? GRPC_STATUS_INVALID_ARGUMENT
           : rc == PROFILE_EIO  ? GRPC_STATUS_UNAVAILABLE
                                : GRPC_STATUS_INTERNAL;
}

static void server_handle_recommend(server_worker *w, const uint8_t *req,
                                    size_t len, server_reply *rep) {
    Aisle__V1__RecommendRequest *in;
    Aisle__V1__RecommendResponse out = AISLE__V1__RECOMMEND_RESPONSE__INIT;
    Aisle__V1__ScoredItem *items = NULL, **ptrs = NULL;
    rank_result rr = {0};
    char err[256], rid[32];
    int rc;

    in = aisle__v1__recommend_request__unpack(NULL, len, req);
    if (!in) {
        server_reply_error(rep, GRPC_STATUS_INVALID_ARGUMENT,
                           "request body is not a valid RecommendRequest");
        return;
    }
    rc = server_recommend(w->srv->cat, w->profiles, in->user_id, in->limit, NULL, &rr,
                          err, sizeof(err));
    if (rc != 0) {
        server_reply_error(rep, server_status_of(rc), "%s", err);
        goto out;
    }
    items = calloc(rr.n ? rr.n : 1, sizeof(*items));
    ptrs = calloc(rr.n ? rr.n : 1, sizeof(*ptrs));
    if (!items || !ptrs) {
        server_reply_error(rep, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rr.n; i++) {
        server_scored_item(&items[i], &rr.hits[i]);
        ptrs[i] = &items[i];
    }
    server_request_id(w->srv, rid, sizeof(rid));
    out.items = ptrs;
    out.n_items = rr.n;
    out.request_id = rid;
    server_reply_pack(rep, &out.base);
    log_debug("server", "recommend request_id=%s user=%s items=%zu", rid,
              in->user_id, rr.n);
out:
    free(items);
    free(ptrs);
    rank_result_free(&rr);
    aisle__v1__recommend_request__free_unpacked(in, NULL);
}

/* Views n profile entries as WeightedId messages in ids/ptrs (n long). */
static void server_weighted(const profile_entry *e, size_t n, Aisle__V1__WeightedId *ids,
                            Aisle__V1__WeightedId **ptrs) {
    for (size_t i = 0; i < n; i++) {
        aisle__v1__weighted_id__init(&ids[i]);
        ids[i].id = e[i].id;
        ids[i].weight = e[i].weight;
        ptrs[i] = &ids[i];
    }
}

/* Seen and purchased entries carry a time in ms as their weight. */
static void server_timed(const profile_entry *e, size_t n, Aisle__V1__TimedId *ids,
                         Aisle__V1__TimedId **ptrs) {
    for (size_t i = 0; i < n; i++) {
        aisle__v1__timed_id__init(&ids[i]);
        ids[i].id = e[i].id;
        ids[i].last_ms = (int64_t)e[i].weight;
        ptrs[i] = &ids[i];
    }
}

static void server_handle_get_profile(server_worker *w, const uint8_t *req,
                                      size_t len, server_reply *rep) {
    Aisle__V1__GetProfileRequest *in;
    Aisle__V1__Profile out = AISLE__V1__PROFILE__INIT;
    Aisle__V1__WeightedId *ids = NULL, **ptrs = NULL;
    Aisle__V1__TimedId *tids = NULL, **tptrs = NULL;
    profile p = {0};
    size_t nw, nt;
    char err[256];
    int rc;

    in = aisle__v1__get_profile_request__unpack(NULL, len, req);
    if (!in) {
        server_reply_error(rep, GRPC_STATUS_INVALID_ARGUMENT,
                           "request body is not a valid GetProfileRequest");
        return;
    }
    rc = profile_get(w->profiles, in->user_id, clock_wall_ms(), SIZE_MAX >> 1, &p,
                     err, sizeof(err));
    if (rc != 0) {
        server_reply_error(rep, server_status_of(rc), "%s", err);
        goto out;
    }
    nw = p.n_items + p.n_creators + p.n_dismissed + p.n_categories + p.n_brands;
    nt = p.n_seen + p.n_purchased;
    ids = calloc(nw + 1, sizeof(*ids));
    ptrs = calloc(nw + 1, sizeof(*ptrs));
    tids = calloc(nt + 1, sizeof(*tids));
    tptrs = calloc(nt + 1, sizeof(*tptrs));
    if (!ids || !ptrs || !tids || !tptrs) {
        server_reply_error(rep, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    out.user_id = in->user_id;
    out.last_active_ms = p.last_active_ms;
    nw = 0;
#define SERVER_WEIGHTED(field)                                                  \
    server_weighted(p.field, p.n_##field, ids + nw, ptrs + nw);                 \
    out.field = ptrs + nw;                                                      \
    out.n_##field = p.n_##field;                                                \
    nw += p.n_##field
    SERVER_WEIGHTED(items);
    SERVER_WEIGHTED(creators);
    SERVER_WEIGHTED(dismissed);
    SERVER_WEIGHTED(categories);
    SERVER_WEIGHTED(brands);
#undef SERVER_WEIGHTED
    server_timed(p.seen, p.n_seen, tids, tptrs);
    out.seen = tptrs;
    out.n_seen = p.n_seen;
    server_timed(p.purchased, p.n_purchased, tids + p.n_seen, tptrs + p.n_seen);
    out.purchased = tptrs + p.n_seen;
    out.n_purchased = p.n_purchased;
    server_reply_pack(rep, &out.base);
out:
    free(ids);
    free(ptrs);
    free(tids);
    free(tptrs);
    profile_clear(&p);
    aisle__v1__get_profile_request__free_unpacked(in, NULL);
}

static void server_handle_delete_profile(server_worker *w, const uint8_t *req,
                                         size_t len, server_reply *rep) {
    Aisle__V1__DeleteProfileRequest *in;
    Aisle__V1__DeleteProfileResponse out = AISLE__V1__DELETE_PROFILE_RESPONSE__INIT;
    char err[256];
    int rc;

    in = aisle__v1__delete_profile_request__unpack(NULL, len, req);
    if (!in) {
        server_reply_error(rep, GRPC_STATUS_INVALID_ARGUMENT,
                           "request body is not a valid DeleteProfileRequest");
        return;
    }
    rc = profile_delete(w->profiles, in->user_id, err, sizeof(err));
    if (rc < 0) {
        server_reply_error(rep, server_status_of(rc), "%s", err);
    } else {
        out.existed = rc == 1;
        server_reply_pack(rep, &out.base);
        log_info("server", "profile of user %s deleted on request", in->user_id);
    }
    aisle__v1__delete_profile_request__free_unpacked(in, NULL);
}

static void server_handle_health(server_worker *w, const uint8_t *req,
                                 size_t len, server_reply *rep) {
    Grpc__Health__V1__HealthCheckRequest *in;
    Grpc__Health__V1__HealthCheckResponse out =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    const server_config *cfg = &w->srv->cfg;

    in = grpc__health__v1__health_check_request__unpack(NULL, len, req);
    if (!in) {
        server_reply_error(rep, GRPC_STATUS_INVALID_ARGUMENT,
                           "request body is not a valid HealthCheckRequest");
        return;
    }
    if (in->service && *in->service && strcmp(in->service, "aisle.v1.Recommender")) {
        server_reply_error(rep, GRPC_STATUS_NOT_FOUND, "unknown service '%s'",
                           in->service);
    } else {
        out.status = !cfg->ready || cfg->ready(cfg->ready_arg)
                         ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                         : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        server_reply_pack(rep, &out.base);
    }
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

static void server_call_free(server_call *sc);

/* Posts a request for the next call of method m (or a generic one). */
static int server_post_request(server *s, int m) {
    server_call *sc = calloc(1, sizeof(*sc));
    grpc_call_error e;
    if (!sc) return -1;
    sc->method = m;
    grpc_metadata_array_init(&sc->md);
    if (m >= 0 && s->methods[m].stream &&
        !(sc->call_cq = grpc_completion_queue_create_for_pluck(NULL))) {
        free(sc);
        return -1;
    }
    if (m >= 0) {
        e = grpc_server_request_registered_call(
            s->gs, s->methods[m].handle_grpc, &sc->call, &sc->deadline, &sc->md,
            &sc->payload, sc->call_cq ? sc->call_cq : s->cq, s->cq, sc);
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
    if (grpc_call_start_batch(st->sc->call, ops, n, tag, NULL) != GRPC_CALL_OK) return -1;
    ev = grpc_completion_queue_pluck(st->sc->call_cq, tag,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : -1;
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

    if (server_stream_cancelled(st)) return -1;
    buf = malloc(len ? len : 1);
    if (!buf) return -1;
    protobuf_c_message_pack(msg, buf);
    slice = grpc_slice_new(buf, len, free); /* the slice frees buf */
    bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    memset(ops, 0, sizeof(ops));
    if (!st->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        st->sent_initial = 1;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    rc = server_stream_batch(st, ops, n, &st->send_tag);
    grpc_byte_buffer_destroy(bb);
    return rc;
}

void server_stream_fail(server_stream *st, grpc_status_code code, const char *fmt, ...) {
    va_list ap;
    st->rep.status = code;
    va_start(ap, fmt);
    vsnprintf(st->rep.msg, sizeof(st->rep.msg), fmt, ap);
    va_end(ap);
}

/* Runs a streaming method on this worker from start to status. */
static void server_run_stream(server_worker *w, server_call *sc, const uint8_t *req,
                              size_t len) {
    server *s = w->srv;
    server_stream st;
    grpc_op ops[2];
    size_t n = 0;
    gpr_timespec left;
    server_call_ctx ctx = {s->cat, w->profiles, s->methods[sc->method].stream_arg,
                           INT64_MAX};

    memset(&st, 0, sizeof(st));
    st.sc = sc;
    st.rep.status = GRPC_STATUS_OK;
    left = gpr_time_sub(gpr_convert_clock_type(sc->deadline, GPR_CLOCK_MONOTONIC),
                        gpr_now(GPR_CLOCK_MONOTONIC));
    if (gpr_time_cmp(sc->deadline, gpr_inf_future(sc->deadline.clock_type)) != 0)
        ctx.deadline_ms = clock_mono_ms() + gpr_time_to_millis(left);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &sc->cancelled;
    if (grpc_call_start_batch(sc->call, ops, 1, &st.close_tag, NULL) != GRPC_CALL_OK) {
        log_error("server", "could not start a streaming call");
        server_call_free(sc);
        return;
    }
    s->methods[sc->method].stream(&ctx, req, len, &st);

    memset(ops, 0, sizeof(ops));
    if (!st.sent_initial) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    sc->status_msg = grpc_slice_from_copied_string(st.rep.msg);
    sc->replied = 1;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = st.rep.status;
    ops[n].data.send_status_from_server.status_details =
        st.rep.status == GRPC_STATUS_OK ? NULL : &sc->status_msg;
    n++;
    server_stream_batch(&st, ops, n, &st.send_tag);
    if (!st.close_done)
        grpc_completion_queue_pluck(sc->call_cq, &st.close_tag,
                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    server_call_free(sc);
}

/* Runs the handler and starts the batch that answers the call. */
static void server_answer(server_worker *w, server_call *sc) {
    server *s = w->srv;
    server_reply rep = {GRPC_STATUS_OK, "", NULL, 0};
    grpc_op ops[4];
    size_t nops = 0;

    if (sc->method < 0) {
        char *path = grpc_slice_to_c_string(sc->details.method);
        server_reply_error(&rep, GRPC_STATUS_UNIMPLEMENTED,
                           "method %s is not implemented", path);
        gpr_free(path);
    } else if (!sc->payload) {
        server_reply_error(&rep, GRPC_STATUS_INVALID_ARGUMENT,
                           "request carried no message");
    } else {
        grpc_byte_buffer_reader rd;
        if (!grpc_byte_buffer_reader_init(&rd, sc->payload)) {
            server_reply_error(&rep, GRPC_STATUS_INVALID_ARGUMENT,
                               "request body could not be read");
        } else {
            grpc_slice body = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            if (s->methods[sc->method].stream) {
                server_run_stream(w, sc, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body));
                grpc_slice_unref(body);
                return;
            }
            s->methods[sc->method].handle(w, GRPC_SLICE_START_PTR(body),
                                          GRPC_SLICE_LENGTH(body), &rep);
            grpc_slice_unref(body);
        }
    }

    memset(ops, 0, sizeof(ops));
    ops[nops].op = GRPC_OP_SEND_INITIAL_METADATA;
    nops++;
    if (rep.status == GRPC_STATUS_OK) {
        grpc_slice body = grpc_slice_from_copied_buffer((const char *)rep.body, rep.len);
        sc->response = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        ops[nops].op = GRPC_OP_SEND_MESSAGE;
        ops[nops].data.send_message.send_message = sc->response;
        nops++;
    } else {
        log_debug("server", "call failed with status %d: %s", (int)rep.status, rep.msg);
    }
    free(rep.body);
    sc->status_msg = grpc_slice_from_copied_string(rep.msg);
    sc->replied = 1;
    ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[nops].data.send_status_from_server.status = rep.status;
    ops[nops].data.send_status_from_server.status_details =
        rep.status == GRPC_STATUS_OK ? NULL : &sc->status_msg;
    nops++;
    ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[nops].data.recv_close_on_server.cancelled = &sc->cancelled;
    nops++;
    if (grpc_call_start_batch(sc->call, ops, nops, sc, NULL) != GRPC_CALL_OK) {
        log_error("server", "could not answer a call");
        server_call_free(sc);
    }
}

static void *server_worker_main(void *arg) {
    server_worker *w = arg;
    server *s = w->srv;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
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

int server_start(const server_config *cfg, catalog *c, server **out, char *err,
                 size_t errlen) {
    server *s;
    grpc_server_credentials *creds;
    static const struct {
        const char *path;
        server_handler handle;
    } table[] = {
        {"/aisle.v1.Recommender/Recommend", server_handle_recommend},
        {"/aisle.v1.Recommender/GetProfile", server_handle_get_profile},
        {"/aisle.v1.Recommender/DeleteProfile", server_handle_delete_profile},
        {"/grpc.health.v1.Health/Check", server_handle_health},
    };

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->cat = c;
    s->n_workers = cfg->threads > 0 ? cfg->threads : 4;
    s->accepting = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    atomic_init(&s->next_request_id, 1);
    s->workers = calloc((size_t)s->n_workers, sizeof(*s->workers));
    if (!s->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_workers; i++) {
        s->workers[i].srv = s;
        if (profile_store_open(cfg->redis, &cfg->profile, &s->workers[i].profiles,
                               err, errlen) != 0)
            goto fail;
    }

    grpc_init();
    s->cq = grpc_completion_queue_create_for_next(NULL);
    s->gs = grpc_server_create(NULL, NULL);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        s->methods[i].path = table[i].path;
        s->methods[i].handle = table[i].handle;
        s->methods[i].handle_grpc = grpc_server_register_method(
            s->gs, table[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        s->n_methods++;
    }
    if (cfg->shop) {
        server_method *m = &s->methods[s->n_methods++];
        m->path = "/aisle.v1.Recommender/Shop";
        m->stream = cfg->shop;
        m->stream_arg = cfg->shop_arg;
        m->handle_grpc = grpc_server_register_method(
            s->gs, m->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    grpc_server_register_completion_queue(s->gs, s->cq, NULL);
    creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->gs, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        snprintf(err, errlen, "cannot listen on %s (bad address or port in use)",
                 cfg->listen);
        grpc_server_destroy(s->gs);
        s->gs = NULL;
        goto fail_grpc;
    }
    grpc_server_start(s->gs);
    for (int m = -1; m < s->n_methods; m++)
        for (int i = 0; i < SERVER_REQUESTS_PER_METHOD; i++)
            if (server_post_request(s, m) != 0) {
                snprintf(err, errlen, "cannot post requests for calls");
                goto fail_started;
            }
    for (int i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, server_worker_main,
                           &s->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            goto fail_started;
        }
        s->n_threads++;
    }
    *out = s;
    return 0;

fail_started:
    server_stop(s, 0);
    return -1;
fail_grpc:
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                      NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
    grpc_shutdown();
fail:
    for (int i = 0; s->workers && i < s->n_workers; i++)
        profile_store_close(s->workers[i].profiles);
    free(s->workers);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
    return -1;
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
        /* No worker will see the tag: a failed start drains it here. */
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
    for (int i = 0; i < s->n_threads; i++) pthread_join(s->workers[i].thread, NULL);
    if (s->n_threads == 0) {
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                          NULL).type != GRPC_QUEUE_SHUTDOWN) {
        }
    }
    grpc_completion_queue_destroy(s->cq);
    grpc_shutdown();
    for (int i = 0; i < s->n_workers; i++) profile_store_close(s->workers[i].profiles);
    free(s->workers);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
