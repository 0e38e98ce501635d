/* console: the page and its gRPC-backed endpoints (user, shop,
 * experiments), which call the server as the operator's own token. */
#include "services/app/console.h"

#include <stdlib.h>
#include <string.h>

#include "proto/aisle/v1/aisle.pb-c.h"
#include "services/app/pbjson.h"
#include "services/base/status.h"
#include "services/serve/auth.h"

enum { CONSOLE_TIMEOUT_MS = 10000 };

extern const char console_html[]; /* console_html.c, generated from console.html */

static const char console_json[] = "application/json; charset=utf-8";

static int console_page(void *arg, obs_http_request *r, buf *body) {
    (void)arg;
    (void)r;
    buf_puts(body, console_html);
    return 200;
}

/* {"error": msg, "code": NAME}, with the HTTP status for the gRPC code. */
static int console_error(buf *body, int code, const char *msg) {
    buf_reset(body);
    buf_puts(body, "{\"error\":");
    pbjson_string(body, msg);
    buf_printf(body, ",\"code\":\"%s\"}\n", rpc_code_name(code));
    switch (code) {
    case 3: return 400; /* INVALID_ARGUMENT */
    case RPC_NOT_FOUND: return 404;
    case RPC_UNAVAILABLE:
    case RPC_DEADLINE_EXCEEDED: return 503;
    default: return 500;
    }
}

static int console_user(void *arg, obs_http_request *r, buf *body) {
    rpc_client *rc = arg;
    const char *user = obs_http_query(r, "user");
    Aisle__V1__GetProfileRequest preq = AISLE__V1__GET_PROFILE_REQUEST__INIT;
    Aisle__V1__RecommendRequest rreq = AISLE__V1__RECOMMEND_REQUEST__INIT;
    ProtobufCMessage *profile = NULL, *recs = NULL;
    char msg[512];
    int code;

    preq.user_id = rreq.user_id = (char *)(user ? user : "");
    rreq.limit = 10;
    code = rpc_unary(rc, obs_http_bearer(r), "/aisle.v1.Recommender/GetProfile", &preq.base,
                     &aisle__v1__profile__descriptor, CONSOLE_TIMEOUT_MS, &profile, msg,
                     sizeof(msg));
    if (code == RPC_OK)
        code = rpc_unary(rc, obs_http_bearer(r), "/aisle.v1.Recommender/Recommend", &rreq.base,
                         &aisle__v1__recommend_response__descriptor, CONSOLE_TIMEOUT_MS, &recs,
                         msg, sizeof(msg));
    if (code == RPC_OK) {
        buf_puts(body, "{\"profile\":");
        pbjson_message(body, profile);
        buf_puts(body, ",\"recommendations\":");
        pbjson_message(body, recs);
        buf_puts(body, "}\n");
    }
    if (profile) protobuf_c_message_free_unpacked(profile, NULL);
    if (recs) protobuf_c_message_free_unpacked(recs, NULL);
    return code == RPC_OK ? 200 : console_error(body, code, msg);
}

/* The experiment set every replica applies, for the experiments panel. */
static int console_experiments(void *arg, obs_http_request *r, buf *body) {
    Aisle__V1__ListExperimentsRequest req = AISLE__V1__LIST_EXPERIMENTS_REQUEST__INIT;
    ProtobufCMessage *set = NULL;
    char msg[512];
    int code = rpc_unary(arg, obs_http_bearer(r), "/aisle.v1.Admin/ListExperiments", &req.base,
                         &aisle__v1__experiment_set__descriptor, CONSOLE_TIMEOUT_MS, &set, msg,
                         sizeof(msg));
    if (code != RPC_OK) return console_error(body, code, msg);
    pbjson_message(body, set);
    buf_putc(body, '\n');
    protobuf_c_message_free_unpacked(set, NULL);
    return 200;
}

/* Sends one chunk as a line; non-zero (cancel the call) once the browser
 * has gone. */
static int console_shop_chunk(void *arg, const ProtobufCMessage *m) {
    obs_http_stream *st = arg;
    buf line = {0};
    int gone;
    pbjson_message(&line, m);
    buf_putc(&line, '\n');
    gone = buf_status(&line) != AISLE_OK || obs_http_write(st, line.data, line.len) != 0;
    buf_free(&line);
    return gone;
}

static void console_shop(void *arg, obs_http_request *r, obs_http_stream *st) {
    rpc_client *rc = arg;
    const char *user = obs_http_query(r, "user"), *q = obs_http_query(r, "q"),
               *mode = obs_http_query(r, "mode");
    Aisle__V1__ShopRequest req = AISLE__V1__SHOP_REQUEST__INIT;
    buf tail = {0};
    char msg[512];
    int code;

    req.user_id = (char *)(user ? user : "");
    req.query = (char *)(q ? q : "");
    req.mode = mode && strcmp(mode, "contemplating") == 0
                   ? AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING
                   : AISLE__V1__SHOP_MODE__SHOP_MODE_FAST;
    code = rpc_stream(rc, obs_http_bearer(r), "/aisle.v1.Recommender/Shop", &req.base,
                      &aisle__v1__shop_chunk__descriptor, CONSOLE_TIMEOUT_MS, console_shop_chunk,
                      st, msg, sizeof(msg));
    if (code != RPC_OK) {
        console_error(&tail, code, msg);
        if (buf_status(&tail) == AISLE_OK) obs_http_write(st, tail.data, tail.len);
    }
    buf_free(&tail);
}

int console_routes(obs_http_config *cfg, rpc_client *rc) {
    const obs_http_route routes[] = {
        /* The page holds no data; what it shows comes from the guarded
         * paths, with the operator's own token forwarded to gRPC. */
        {"/console", "text/html; charset=utf-8", console_page, NULL, NULL, 0},
        {"/api/user", console_json, console_user, rc, NULL, AUTH_ROLE_APP},
        {"/api/shop", "application/x-ndjson; charset=utf-8", NULL, rc, console_shop, AUTH_ROLE_APP},
        {"/api/experiments", console_json, console_experiments, rc, NULL, AUTH_ROLE_ADMIN},
    };
    size_t n = sizeof(routes) / sizeof(routes[0]);
    if (cfg->n_routes + n > OBS_HTTP_MAX_ROUTES) return AISLE_EFULL;
    memcpy(&cfg->routes[cfg->n_routes], routes, sizeof(routes));
    cfg->n_routes += n;
    return AISLE_OK;
}
