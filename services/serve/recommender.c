/* recommender: decode, call the use case, encode; AISLE_* codes out. */
#include "services/serve/recommender.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/aisle.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/recommend/recommend.h"
#include "services/serve/auth.h"
#include "services/serve/variants.h"

/* Decodes req as a message of desc, or fails the call with
 * INVALID_ARGUMENT naming the type. The caller frees the message with
 * protobuf_c_message_free_unpacked. */
static void *recommender_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *req,
                                size_t len, server_reply *rep) {
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, req);
    if (!m)
        server_reply_fail(rep, AISLE_EINVAL, "request body is not a valid %s", desc->short_name);
    return m;
}

/* Leaves the page rr served for call on the exposure log. */
static void recommender_log_page(exposure_log *log, const variants_call *v, const char *request_id,
                                 const recommend_call *call, const rank_result *rr,
                                 int64_t now_ms) {
    const rank_hit **hits = log && rr->n ? malloc(rr->n * sizeof(*hits)) : NULL;
    if (!hits) return; /* not logged, as a full queue would drop it */
    for (size_t i = 0; i < rr->n; i++) hits[i] = &rr->hits[i];
    variants_page page = {request_id, call->user_id, call->similar ? "similar_items" : "recommend",
                          "", hits, rr->n, now_ms};
    variants_log_page(log, v, &page);
    free(hits);
}

/* Runs call and replies with its RecommendResponse, or the failure. */
static void recommender_answer(const server_call_ctx *ctx, const recommend_call *call,
                               server_reply *rep) {
    const recommender_config *cfg = ctx->arg;
    Aisle__V1__RecommendResponse out;
    recommend_msgs m = {0};
    recommend_answer a;
    variants_call v;
    recommend_call with = *call;
    char err[256];
    int64_t now = clock_wall_ms();
    int rc;

    variants_begin(cfg->experiments, cfg->models, cfg->model_file, call->user_id, &v);
    with.overrides = &v.ov;
    rc = recommend_answer_call(ctx->cat, ctx->profiles, &with, now, &a, err, sizeof(err));
    if (rc != AISLE_OK) {
        server_reply_fail(rep, rc, "%s", err);
        goto out;
    }
    m.items = calloc(a.rr.n ? a.rr.n : 1, sizeof(*m.items));
    m.ptrs = calloc(a.rr.n ? a.rr.n : 1, sizeof(*m.ptrs));
    if (!m.items || !m.ptrs) {
        server_reply_fail(rep, AISLE_ENOMEM, "out of memory");
        goto out;
    }
    recommend_response(&a, ctx->request_id, &m, &out);
    variants_respond(&v, &out);
    server_reply_pack(rep, &out.base);
    recommender_log_page(cfg->exposures, &v, ctx->request_id, call, &a.rr, now);
    /* Per call, so debug only: an outage is logged by the profile store. */
    log_debug("serve", "recommend request_id=%s user=%s items=%zu degraded=%d",
              ctx->request_id, call->user_id, a.rr.n, a.degraded);
out:
    free(m.items);
    free(m.ptrs);
    recommend_answer_clear(&a);
    variants_end(&v);
}

static void recommender_recommend(const server_call_ctx *ctx, const uint8_t *req, size_t len,
                                  server_reply *rep) {
    Aisle__V1__RecommendRequest *in =
        recommender_decode(&aisle__v1__recommend_request__descriptor, req, len, rep);
    if (!in) return;
    recommend_call call = {
        .user_id = in->user_id,
        .limit = in->limit,
        .filter = in->filter,
        .query = in->query,
        .query_vector = in->query_vector,
        .n_query_vector = in->n_query_vector,
        .context_item_id = in->context_item_id,
        .surface = in->surface,
        .page_token = in->page_token,
    };
    recommender_answer(ctx, &call, rep);
    protobuf_c_message_free_unpacked(&in->base, NULL);
}

static void recommender_similar(const server_call_ctx *ctx, const uint8_t *req, size_t len,
                                server_reply *rep) {
    Aisle__V1__SimilarItemsRequest *in =
        recommender_decode(&aisle__v1__similar_items_request__descriptor, req, len, rep);
    if (!in) return;
    recommend_call call = {
        .user_id = in->user_id,
        .limit = in->limit,
        .filter = in->filter,
        .query = "",
        .context_item_id = in->item_id,
        .surface = "",
        .page_token = in->page_token,
        .similar = 1,
    };
    recommender_answer(ctx, &call, rep);
    protobuf_c_message_free_unpacked(&in->base, NULL);
}

/* Views n profile entries as WeightedId messages in ids/ptrs (n long). */
static void recommender_weighted(const profile_entry *e, size_t n, Aisle__V1__WeightedId *ids,
                            Aisle__V1__WeightedId **ptrs) {
    for (size_t i = 0; i < n; i++) {
        aisle__v1__weighted_id__init(&ids[i]);
        ids[i].id = e[i].id;
        ids[i].weight = e[i].weight;
        ptrs[i] = &ids[i];
    }
}

/* Seen and purchased entries carry a time in ms as their weight. */
static void recommender_timed(const profile_entry *e, size_t n, Aisle__V1__TimedId *ids,
                         Aisle__V1__TimedId **ptrs) {
    for (size_t i = 0; i < n; i++) {
        aisle__v1__timed_id__init(&ids[i]);
        ids[i].id = e[i].id;
        ids[i].last_ms = (int64_t)e[i].weight;
        ptrs[i] = &ids[i];
    }
}

static void recommender_get_profile(const server_call_ctx *ctx, const uint8_t *req,
                                      size_t len, server_reply *rep) {
    Aisle__V1__GetProfileRequest *in;
    Aisle__V1__Profile out = AISLE__V1__PROFILE__INIT;
    Aisle__V1__WeightedId *ids = NULL, **ptrs = NULL;
    Aisle__V1__TimedId *tids = NULL, **tptrs = NULL;
    profile p = {0};
    size_t nw, nt;
    char err[256];
    int rc;

    in = recommender_decode(&aisle__v1__get_profile_request__descriptor, req, len, rep);
    if (!in) return;
    rc = profile_get(ctx->profiles, in->user_id, clock_wall_ms(), SIZE_MAX >> 1, &p,
                     err, sizeof(err));
    if (rc != 0) {
        server_reply_fail(rep, rc, "%s", err);
        goto out;
    }
    nw = p.n_items + p.n_creators + p.n_dismissed + p.n_categories + p.n_brands;
    nt = p.n_seen + p.n_purchased + p.n_follows;
    ids = calloc(nw + 1, sizeof(*ids));
    ptrs = calloc(nw + 1, sizeof(*ptrs));
    tids = calloc(nt + 1, sizeof(*tids));
    tptrs = calloc(nt + 1, sizeof(*tptrs));
    if (!ids || !ptrs || !tids || !tptrs) {
        server_reply_fail(rep, AISLE_ENOMEM, "out of memory");
        goto out;
    }
    out.user_id = in->user_id;
    out.last_active_ms = p.last_active_ms;
    nw = 0;
#define RECOMMENDER_WEIGHTED(field)                                                  \
    recommender_weighted(p.field, p.n_##field, ids + nw, ptrs + nw);                 \
    out.field = ptrs + nw;                                                      \
    out.n_##field = p.n_##field;                                                \
    nw += p.n_##field
    RECOMMENDER_WEIGHTED(items);
    RECOMMENDER_WEIGHTED(creators);
    RECOMMENDER_WEIGHTED(dismissed);
    RECOMMENDER_WEIGHTED(categories);
    RECOMMENDER_WEIGHTED(brands);
#undef RECOMMENDER_WEIGHTED
    recommender_timed(p.seen, p.n_seen, tids, tptrs);
    out.seen = tptrs;
    out.n_seen = p.n_seen;
    recommender_timed(p.purchased, p.n_purchased, tids + p.n_seen, tptrs + p.n_seen);
    out.purchased = tptrs + p.n_seen;
    out.n_purchased = p.n_purchased;
    recommender_timed(p.follows, p.n_follows, tids + p.n_seen + p.n_purchased,
                      tptrs + p.n_seen + p.n_purchased);
    out.follows = tptrs + p.n_seen + p.n_purchased;
    out.n_follows = p.n_follows;
    server_reply_pack(rep, &out.base);
out:
    free(ids);
    free(ptrs);
    free(tids);
    free(tptrs);
    profile_clear(&p);
    protobuf_c_message_free_unpacked(&in->base, NULL);
}

static void recommender_delete_profile(const server_call_ctx *ctx, const uint8_t *req,
                                         size_t len, server_reply *rep) {
    Aisle__V1__DeleteProfileRequest *in;
    Aisle__V1__DeleteProfileResponse out = AISLE__V1__DELETE_PROFILE_RESPONSE__INIT;
    char err[256];
    int rc;

    in = recommender_decode(&aisle__v1__delete_profile_request__descriptor, req, len, rep);
    if (!in) return;
    rc = profile_delete(ctx->profiles, in->user_id, err, sizeof(err));
    if (rc < 0) {
        server_reply_fail(rep, rc, "%s", err);
    } else {
        out.existed = rc == 1;
        server_reply_pack(rep, &out.base);
        log_info("serve", "profile of user %s deleted on request", in->user_id);
    }
    protobuf_c_message_free_unpacked(&in->base, NULL);
}

static void recommender_health(const server_call_ctx *ctx, const uint8_t *req,
                                 size_t len, server_reply *rep) {
    Grpc__Health__V1__HealthCheckRequest *in;
    Grpc__Health__V1__HealthCheckResponse out =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    const recommender_config *cfg = ctx->arg;

    in = recommender_decode(&grpc__health__v1__health_check_request__descriptor, req, len, rep);
    if (!in) return;
    if (in->service && *in->service && strcmp(in->service, "aisle.v1.Recommender")) {
        server_reply_fail(rep, AISLE_ENOTFOUND, "unknown service '%s'", in->service);
    } else {
        /* Serving means able to answer: the catalog caught up and Redis
         * reachable (without it, personal answers cannot be given). */
        char err[256];
        int ok = (!cfg->ready || cfg->ready(cfg->ready_arg)) &&
                 profile_ping(ctx->profiles, err, sizeof(err)) == AISLE_OK;
        out.status = ok ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                        : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        server_reply_pack(rep, &out.base);
    }
    protobuf_c_message_free_unpacked(&in->base, NULL);
}


static int recommender_stream_send(void *st, const Aisle__V1__ShopChunk *chunk) {
    return server_stream_send(st, &chunk->base);
}

static int recommender_stream_cancelled(void *st) { return server_stream_cancelled(st); }

static void recommender_stream_fail(void *st, int code, const char *msg) {
    server_stream_fail(st, code, "%s", msg);
}

/* A Shop call's answer, as the exposure log takes it. */
typedef struct recommender_shop_log {
    const recommender_config *cfg;
    const variants_call *v;
    const char *request_id, *user_id;
} recommender_shop_log;

static void recommender_shop_chosen(void *arg, const rank_hit *const *picks, size_t n, int mode) {
    const recommender_shop_log *sl = arg;
    variants_page page = {sl->request_id, sl->user_id, "shop",
                          mode == AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING ? "contemplating"
                                                                                : "fast",
                          picks, n, clock_wall_ms()};
    variants_log_page(sl->cfg->exposures, sl->v, &page);
}

static void recommender_shop(const server_call_ctx *ctx, const uint8_t *req, size_t len,
                             server_stream *st) {
    const recommender_config *cfg = ctx->arg;
    shop_sink o = {recommender_stream_send, recommender_stream_cancelled,
                   recommender_stream_fail, st};
    variants_call v;
    Aisle__V1__ShopRequest *in = aisle__v1__shop_request__unpack(NULL, len, req);
    if (!in) {
        server_stream_fail(st, AISLE_EINVAL, "request body is not a valid ShopRequest");
        return;
    }
    /* Shop ranks with the hand weights: no model is taken. */
    variants_begin(cfg->experiments, NULL, NULL, in->user_id, &v);
    recommender_shop_log sl = {cfg, &v, ctx->request_id, in->user_id};
    shop_call call = {.cat = ctx->cat,
                      .profiles = ctx->profiles,
                      .deadline_ms = ctx->deadline_ms,
                      .request_id = ctx->request_id,
                      .chosen = recommender_shop_chosen,
                      .chosen_arg = &sl};
    call.assignments = variants_assignments(&v, &call.n_assignments);
    call.composer_only = variants_shop_model_off(&v);
    in->mode = variants_shop_mode(&v, in->mode);
    shop_answer(cfg->shop, &call, in, &o);
    variants_end(&v);
    aisle__v1__shop_request__free_unpacked(in, NULL);
}

void recommender_methods(server_config *cfg, const recommender_config *rc) {
    void *arg = (void *)rc;
    /* Who may call what: shoppers' apps read and shop; erasing a profile
     * is for operators; health is open to probes. Shop's request is a
     * query of at most a kilobyte and a few fields. */
    const server_method table[] = {
        {"/aisle.v1.Recommender/Recommend", recommender_recommend, NULL, arg, AUTH_ROLE_APP, 0},
        {"/aisle.v1.Recommender/GetProfile", recommender_get_profile, NULL, arg, AUTH_ROLE_APP,
         4096},
        {"/aisle.v1.Recommender/DeleteProfile", recommender_delete_profile, NULL, arg,
         AUTH_ROLE_ADMIN, 4096},
        {"/aisle.v1.Recommender/SimilarItems", recommender_similar, NULL, arg, AUTH_ROLE_APP, 0},
        {"/grpc.health.v1.Health/Check", recommender_health, NULL, arg, AUTH_ROLE_NONE, 4096},
        {"/aisle.v1.Recommender/Shop", NULL, recommender_shop, arg, AUTH_ROLE_APP, 16384},
    };
    size_t n = sizeof(table) / sizeof(table[0]) - (rc->shop ? 0 : 1);
    assert(cfg->n_methods + n <= SERVER_MAX_METHODS);
    for (size_t i = 0; i < n; i++) cfg->methods[cfg->n_methods++] = table[i];
}
