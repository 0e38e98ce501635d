/* ctl: one flag parser for every subcommand, then a handler per command
 * that calls the server and prints a table or JSON. */
#include "services/app/ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proto/aisle/v1/aisle.pb-c.h"
#include "proto/aisle/v1/events.pb-c.h"
#include "services/app/cli.h"
#include "services/app/config.h"
#include "services/app/expctl.h"
#include "services/app/pbjson.h"
#include "services/app/rpc.h"
#include "services/base/buf.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/kafka/kafka.h"

static const char ctl_usage[] =
    "Usage: aisle ctl COMMAND [ARGS] [FLAGS]\n"
    "\n"
    "Talks to running servers. Tables by default, --json for scripts. Exit status:\n"
    "0 done, 1 the call failed, 2 bad usage, 3 unavailable (server or Redis down,\n"
    "deadline passed), 4 not found (no such user or item).\n"
    "\n"
    "Over gRPC to --server:\n"
    "  recommend USER             the user's recommendations, with reasons\n"
    "  similar ITEM [USER]        items like ITEM (USER's seen items left out)\n"
    "  profile get USER           what Aisle knows of the user, heaviest first\n"
    "  profile delete USER        erase every key Aisle keeps for the user\n"
    "  shop USER QUERY...         a shopping answer, streamed as it is written\n"
    "Over HTTP to --http (serve's --http-listen):\n"
    "  index status               the index kind, size, snapshot and catalog feed\n"
    "  catalog get ITEM           one catalog item's facts\n"
    "  catalog search TEXT...     items whose title, id, brand or category contains TEXT\n"
    "Experiments (their own flags: 'aisle ctl exp --help'):\n"
    "  exp --redis HOST:PORT set|list|delete|toggle|holdout|assign|params ...\n"
    "Over Kafka (--kafka-brokers):\n"
    "  track USER KIND ID         send a signal: KIND view, click, add_to_cart, purchase,\n"
    "                             like, dismiss (ID an item) or follow_creator (ID a creator)\n"
    "  index reload               load the newest valid snapshot from each replica's\n"
    "                             --snapshots directory; replicas keep serving during the\n"
    "                             swap, and one whose newest snapshot is corrupt keeps its\n"
    "                             current index\n"
    "\n"
    "  --config FILE           settings from a YAML file (flags given here override it)\n"
    "  --server HOST:PORT      serve's gRPC address (default 127.0.0.1:50051)\n"
    "  --http HOST:PORT        serve's HTTP address (default 127.0.0.1:9464)\n"
    "  --limit N               items for recommend (default 10) and shop (default 5)\n"
    "  --mode MODE             shop: fast (default) or contemplating\n"
    "  --timeout-ms MS         deadline of each call (default 10000)\n"
    "  --json                  JSON instead of tables\n"
    "  --tls-ca FILE           PEM roots to trust: gRPC over TLS (default: plaintext)\n"
    "  --tls-cert FILE         PEM client certificate for mTLS (with --tls-key)\n"
    "  --tls-key FILE          its PEM private key\n"
    "  --tls-server-name NAME  the name the server's certificate carries, when it is not\n"
    "                          --server's host\n"
    "  --kafka-brokers LIST    Kafka bootstrap servers (track, index reload)\n"
    "  --kafka-opt KEY=VALUE   a librdkafka setting (security.protocol, ssl.*, sasl.*);\n"
    "                          repeatable\n"
    "  --control-topic NAME    control topic (default aisle.control)\n"
    "  --signal-topic NAME     signal topic for track (default aisle.signals)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Secrets come from the environment, never flags: AISLE_TOKEN (a bearer token for\n"
    "a server with --tokens-file; admin for profile delete), AISLE_KAFKA_SASL_USERNAME\n"
    "and AISLE_KAFKA_SASL_PASSWORD.\n";

enum { CTL_MAX_KAFKA_OPTS = 64 };

typedef struct ctl_opts {
    const char *brokers, *control_topic, *signal_topic, *server, *http;
    long long limit, timeout_ms;
    int json, contemplating;
    rpc_options tls;
    const char *token; /* AISLE_TOKEN, or NULL */
    const char *kafka_opts[CTL_MAX_KAFKA_OPTS];
    size_t n_kafka_opts;
} ctl_opts;

/* The flags into o; the command words stay in argv[optind..]. */
static int ctl_flags(int argc, char **argv, ctl_opts *o) {
    static const struct option opts[] = {
        {"kafka-brokers", required_argument, 0, 'k'}, {"control-topic", required_argument, 0, 't'},
        {"server", required_argument, 0, 's'},        {"http", required_argument, 0, 'H'},
        {"limit", required_argument, 0, 'n'},         {"mode", required_argument, 0, 'm'},
        {"timeout-ms", required_argument, 0, 'T'},    {"json", no_argument, 0, 'j'},
        {"signal-topic", required_argument, 0, 'S'},  {"help", no_argument, 0, 'h'},
        {"tls-ca", required_argument, 0, 'C'},        {"tls-cert", required_argument, 0, 'c'},
        {"tls-key", required_argument, 0, 'K'},       {"tls-server-name", required_argument, 0, 'N'},
        {"kafka-opt", required_argument, 0, 'o'},     {0, 0, 0, 0}};
    const char *token = getenv("AISLE_TOKEN");
    int c;
    *o = (ctl_opts){.control_topic = KAFKA_TOPIC_CONTROL, .signal_topic = KAFKA_TOPIC_SIGNALS,
                    .server = "127.0.0.1:50051", .http = "127.0.0.1:9464", .timeout_ms = 10000,
                    .token = token && *token ? token : NULL};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': o->brokers = optarg; break;
        case 't': o->control_topic = optarg; break;
        case 'S': o->signal_topic = optarg; break;
        case 's': o->server = optarg; break;
        case 'H': o->http = optarg; break;
        case 'n':
            if (cli_int("ctl", "limit", optarg, 1, 100, &o->limit)) return CLI_EXIT_USAGE;
            break;
        case 'm':
            if (strcmp(optarg, "fast") && strcmp(optarg, "contemplating"))
                return cli_usage_error("ctl", "--mode must be fast or contemplating");
            o->contemplating = strcmp(optarg, "contemplating") == 0;
            break;
        case 'T':
            if (cli_int("ctl", "timeout-ms", optarg, 1, 3600000, &o->timeout_ms))
                return CLI_EXIT_USAGE;
            break;
        case 'j': o->json = 1; break;
        case 'C': o->tls.tls_ca = optarg; break;
        case 'c': o->tls.tls_cert = optarg; break;
        case 'K': o->tls.tls_key = optarg; break;
        case 'N': o->tls.server_name = optarg; break;
        case 'o':
            if (o->n_kafka_opts == CTL_MAX_KAFKA_OPTS)
                return cli_usage_error("ctl", "at most %d --kafka-opt flags", CTL_MAX_KAFKA_OPTS);
            if (!strchr(optarg, '=')) return cli_usage_error("ctl", "--kafka-opt takes KEY=VALUE");
            o->kafka_opts[o->n_kafka_opts++] = optarg;
            break;
        case 'h': fputs(ctl_usage, stdout); return CLI_EXIT_HELP;
        default: return cli_usage_error("ctl", "unknown or incomplete flag");
        }
    }
    cli_flags_done();
    if (!o->tls.tls_cert != !o->tls.tls_key)
        return cli_usage_error("ctl", "--tls-cert and --tls-key go together");
    if ((o->tls.tls_cert || o->tls.server_name) && !o->tls.tls_ca)
        return cli_usage_error("ctl", "--tls-cert and --tls-server-name need --tls-ca");
    return 0;
}

int ctl_check_flags(int argc, char **argv) {
    ctl_opts o;
    return ctl_flags(argc, argv, &o);
}

/* The exit status for a gRPC status, with the reason on stderr. */
static int ctl_rpc_exit(int code, const char *msg) {
    if (code == RPC_OK) return 0;
    fprintf(stderr, "aisle ctl: %s: %s\n", rpc_code_name(code), msg);
    if (code == RPC_UNAVAILABLE || code == RPC_DEADLINE_EXCEEDED) return CTL_EXIT_UNAVAILABLE;
    return code == RPC_NOT_FOUND ? CTL_EXIT_NOT_FOUND : CTL_EXIT_FAILED;
}

static void ctl_print_json(const ProtobufCMessage *m) {
    buf b = {0};
    pbjson_message(&b, m);
    puts(buf_str(&b));
    buf_free(&b);
}

static void ctl_price(char *out, size_t len, int64_t cents) {
    snprintf(out, len, "$%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
}

/* A table of items: rank, id, score, price, title, then the reasons. */
static void ctl_print_items(Aisle__V1__ScoredItem *const *items, size_t n) {
    char price[32];
    printf("%3s  %-14s %8s %10s  %s\n", "#", "ITEM", "SCORE", "PRICE", "TITLE (CATEGORY, BRAND)");
    for (size_t i = 0; i < n; i++) {
        const Aisle__V1__ScoredItem *it = items[i];
        ctl_price(price, sizeof(price), it->price_cents);
        printf("%3zu  %-14s %8.3f %10s  %s (%s, %s)\n", i + 1, it->item_id, it->score, price,
               it->title, it->category, it->brand);
        for (size_t r = 0; r < it->n_reasons; r++) printf("%29s- %s\n", "", it->reasons[r]);
    }
}

/* Calls path with req and prints its RecommendResponse. */
static int ctl_page(rpc_client *rc, const ctl_opts *o, const char *path,
                    const ProtobufCMessage *req) {
    Aisle__V1__RecommendResponse *resp;
    char msg[512];
    int code = rpc_unary(rc, o->token, path, req, &aisle__v1__recommend_response__descriptor,
                         (int)o->timeout_ms, (ProtobufCMessage **)&resp, msg, sizeof(msg));
    if (code != RPC_OK) return ctl_rpc_exit(code, msg);
    if (o->json) {
        ctl_print_json(&resp->base);
    } else {
        ctl_print_items(resp->items, resp->n_items);
        for (size_t i = 0; i < resp->n_assignments; i++)
            printf("experiment %s/%s: %s\n", resp->assignments[i]->layer,
                   resp->assignments[i]->experiment, resp->assignments[i]->variant);
        if (resp->degraded) printf("degraded: %s\n", resp->degraded_reason);
        printf("request %s\n", resp->request_id);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

static int ctl_recommend(rpc_client *rc, const ctl_opts *o, const char *user) {
    Aisle__V1__RecommendRequest req = AISLE__V1__RECOMMEND_REQUEST__INIT;
    req.user_id = (char *)user;
    req.limit = (int32_t)o->limit;
    return ctl_page(rc, o, "/aisle.v1.Recommender/Recommend", &req.base);
}

/* Items like item (for user, when given: what they have seen is left out). */
static int ctl_similar(rpc_client *rc, const ctl_opts *o, const char *item, const char *user) {
    Aisle__V1__SimilarItemsRequest req = AISLE__V1__SIMILAR_ITEMS_REQUEST__INIT;
    req.item_id = (char *)item;
    req.user_id = (char *)(user ? user : "");
    req.limit = (int32_t)o->limit;
    return ctl_page(rc, o, "/aisle.v1.Recommender/SimilarItems", &req.base);
}

static void ctl_print_weighted(const char *title, Aisle__V1__WeightedId *const *ids, size_t n) {
    if (!n) return;
    printf("%s\n", title);
    for (size_t i = 0; i < n; i++) printf("  %10.3f  %s\n", ids[i]->weight, ids[i]->id);
}

static void ctl_print_time(const char *label, int64_t ms) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char stamp[32];
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s%s\n", label, stamp);
}

static void ctl_print_profile(const Aisle__V1__Profile *p) {
    printf("user %s\n", p->user_id);
    ctl_print_time("last active ", p->last_active_ms);
    /* Weights are decayed to now: the log2 of the summed, halved-per-half-life signal weights. */
    ctl_print_weighted("items (weight, id)", p->items, p->n_items);
    ctl_print_weighted("creators", p->creators, p->n_creators);
    ctl_print_weighted("categories", p->categories, p->n_categories);
    ctl_print_weighted("brands", p->brands, p->n_brands);
    ctl_print_weighted("dismissed", p->dismissed, p->n_dismissed);
    printf("seen %zu items, purchased %zu, follows %zu creators\n", p->n_seen, p->n_purchased,
           p->n_follows);
}

static int ctl_profile_get(rpc_client *rc, const ctl_opts *o, const char *user) {
    Aisle__V1__GetProfileRequest req = AISLE__V1__GET_PROFILE_REQUEST__INIT;
    Aisle__V1__Profile *p;
    char msg[512];
    int code, empty;
    req.user_id = (char *)user;
    code = rpc_unary(rc, o->token, "/aisle.v1.Recommender/GetProfile", &req.base,
                     &aisle__v1__profile__descriptor, (int)o->timeout_ms, (ProtobufCMessage **)&p,
                     msg, sizeof(msg));
    if (code != RPC_OK) return ctl_rpc_exit(code, msg);
    empty = p->last_active_ms == 0 && p->n_items == 0 && p->n_dismissed == 0;
    if (o->json)
        ctl_print_json(&p->base);
    else if (empty)
        fprintf(stderr, "aisle ctl: no profile for user %s\n", user);
    else
        ctl_print_profile(p);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    return empty ? CTL_EXIT_NOT_FOUND : 0;
}

static int ctl_profile_delete(rpc_client *rc, const ctl_opts *o, const char *user) {
    Aisle__V1__DeleteProfileRequest req = AISLE__V1__DELETE_PROFILE_REQUEST__INIT;
    Aisle__V1__DeleteProfileResponse *resp;
    char msg[512];
    int code, existed;
    req.user_id = (char *)user;
    code = rpc_unary(rc, o->token, "/aisle.v1.Recommender/DeleteProfile", &req.base,
                     &aisle__v1__delete_profile_response__descriptor, (int)o->timeout_ms,
                     (ProtobufCMessage **)&resp, msg, sizeof(msg));
    if (code != RPC_OK) return ctl_rpc_exit(code, msg);
    existed = resp->existed;
    if (o->json)
        ctl_print_json(&resp->base);
    else
        printf(existed ? "deleted the profile of %s\n" : "no profile for %s: nothing deleted\n",
               user);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return existed ? 0 : CTL_EXIT_NOT_FOUND;
}

/* Prints each Shop chunk as it arrives. */
static int ctl_shop_chunk(void *arg, const ProtobufCMessage *m) {
    const ctl_opts *o = arg;
    const Aisle__V1__ShopChunk *ch = (const Aisle__V1__ShopChunk *)m;
    if (o->json) {
        ctl_print_json(m);
    } else {
        if (ch->n_items) {
            ctl_print_items(ch->items, ch->n_items);
            for (size_t i = 0; i < ch->n_agents; i++)
                printf("agent %-16s %s%s\n", ch->agents[i]->agent, ch->agents[i]->summary,
                       ch->agents[i]->used ? "" : " (unused)");
            printf("request %s\n\n", ch->request_id);
        }
        fputs(ch->text, stdout);
        if (ch->done) putchar('\n');
    }
    fflush(stdout); /* as it is written */
    return 0;
}

static int ctl_shop(rpc_client *rc, const ctl_opts *o, int nwords, char **words) {
    Aisle__V1__ShopRequest req = AISLE__V1__SHOP_REQUEST__INIT;
    buf query = {0};
    char msg[512];
    int code;
    for (int i = 1; i < nwords; i++) buf_printf(&query, "%s%s", i > 1 ? " " : "", words[i]);
    req.user_id = words[0];
    req.query = (char *)buf_str(&query);
    req.limit = (int32_t)o->limit;
    req.mode = o->contemplating ? AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING
                                : AISLE__V1__SHOP_MODE__SHOP_MODE_FAST;
    code = rpc_stream(rc, o->token, "/aisle.v1.Recommender/Shop", &req.base,
                      &aisle__v1__shop_chunk__descriptor, (int)o->timeout_ms, ctl_shop_chunk,
                      (void *)o, msg, sizeof(msg));
    buf_free(&query);
    return ctl_rpc_exit(code, msg);
}

/* GET path from the HTTP server at addr (HOST:PORT) into body with its
 * status, sending token (NULL: none) as a bearer token. Returns AISLE_OK,
 * or AISLE_EUNAVAIL with err set. */
static int ctl_http_get(const char *addr, const char *path, const char *token, int timeout_ms,
                        int *status, buf *body, char *err, size_t errlen) {
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char host[256], chunk[4096];
    buf raw = {0};
    ssize_t n;
    int fd = -1, rc = AISLE_EUNAVAIL;
    const char *sep;

    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return status_fail(AISLE_EINVAL, err, errlen, "--http %s is not HOST:PORT", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
        status_fmt(err, errlen, "cannot resolve %s", host);
        goto out;
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        status_fmt(err, errlen, "http %s: %s", addr, strerror(errno));
        goto out;
    }
    buf_printf(&raw, "GET %s HTTP/1.0\r\nHost: %s\r\n", path, addr);
    if (token) buf_printf(&raw, "Authorization: Bearer %s\r\n", token);
    buf_puts(&raw, "\r\n");
    if (write(fd, raw.data, raw.len) != (ssize_t)raw.len) {
        status_fmt(err, errlen, "http %s: %s", addr, strerror(errno));
        goto out;
    }
    buf_reset(&raw);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) buf_put(&raw, chunk, (size_t)n);
    if (n < 0 || sscanf(buf_str(&raw), "HTTP/%*s %d", status) != 1 ||
        !(sep = strstr(buf_str(&raw), "\r\n\r\n"))) {
        status_fmt(err, errlen, "http %s: no answer", addr);
        goto out;
    }
    buf_puts(body, sep + 4);
    rc = AISLE_OK;
out:
    if (ai) freeaddrinfo(ai);
    if (fd >= 0) close(fd);
    buf_free(&raw);
    return rc;
}

/* Prints a flat JSON object as "key  value" lines: the admin endpoints'
 * answers are flat, their strings escaped by pbjson. */
static void ctl_print_flat_json(const char *s) {
    int in_str = 0, key = 1;
    for (s = strchr(s, '{'); s && *++s && !(*s == '}' && !in_str);) {
        if (in_str) {
            if (*s == '\\' && s[1]) s++;
            else if (*s == '"') { in_str = 0; continue; }
            putchar(*s);
        } else if (*s == '"') {
            in_str = 1;
        } else if (*s == ':' && key) {
            fputs("  ", stdout);
            key = 0;
        } else if (*s == ',') {
            putchar('\n');
            key = 1;
        } else if (*s != ' ') {
            putchar(*s);
        }
    }
    putchar('\n');
}

/* The value of "key": in one flat JSON object s (up to its end), written
 * into out unquoted; "" when absent. */
static void ctl_json_field(const char *s, const char *end, const char *key, char *out,
                           size_t len) {
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    *out = '\0';
    if (!(p = strstr(s, pat)) || p >= end) return;
    p += strlen(pat);
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < len; p++) {
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p;
        }
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < len) out[n++] = *p++;
    }
    out[n] = '\0';
}

/* {"items":[{...},...]} as one line per item. */
static void ctl_print_item_list(const char *s) {
    char id[256], title[1024], cat[256], brand[256], cents[32], price[32];
    const char *obj = strchr(s, '[');
    printf("%-14s %10s  %s\n", "ITEM", "PRICE", "TITLE (CATEGORY, BRAND)");
    while (obj && (obj = strchr(obj + 1, '{'))) {
        const char *end = strchr(obj, '}');
        if (!end) break;
        ctl_json_field(obj, end, "item_id", id, sizeof(id));
        ctl_json_field(obj, end, "title", title, sizeof(title));
        ctl_json_field(obj, end, "category", cat, sizeof(cat));
        ctl_json_field(obj, end, "brand", brand, sizeof(brand));
        ctl_json_field(obj, end, "price_cents", cents, sizeof(cents));
        ctl_price(price, sizeof(price), atoll(cents));
        printf("%-14s %10s  %s (%s, %s)\n", id, price, title, cat, brand);
        obj = end;
    }
}

/* GETs path from serve's admin endpoints and prints it: as it is with
 * --json, else as a table (list: an {"items": [...]} answer). */
static int ctl_admin(const ctl_opts *o, const char *path, int list) {
    buf body = {0};
    char err[512];
    int status = 0, rc;
    if (ctl_http_get(o->http, path, o->token, (int)o->timeout_ms, &status, &body, err, sizeof(err))) {
        fprintf(stderr, "aisle ctl: %s\n", err);
        buf_free(&body);
        return CTL_EXIT_UNAVAILABLE;
    }
    rc = status == 200 ? 0 : status == 404 ? CTL_EXIT_NOT_FOUND : CTL_EXIT_FAILED;
    if (rc)
        fprintf(stderr, "aisle ctl: http %d: %s", status, buf_str(&body));
    else if (o->json)
        fputs(buf_str(&body), stdout);
    else if (list)
        ctl_print_item_list(buf_str(&body));
    else
        ctl_print_flat_json(buf_str(&body));
    buf_free(&body);
    return rc;
}

/* Appends s to b percent-encoded, for a query parameter. */
static void ctl_url_encode(buf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%02X", *p);
}

static int ctl_catalog_get(const ctl_opts *o, const char *item) {
    buf path = {0};
    int rc;
    buf_puts(&path, "/api/catalog/item?id=");
    ctl_url_encode(&path, item);
    rc = ctl_admin(o, buf_str(&path), 0);
    buf_free(&path);
    return rc;
}

static int ctl_catalog_search(const ctl_opts *o, int nwords, char **words) {
    buf path = {0}, q = {0};
    int rc;
    for (int i = 0; i < nwords; i++) buf_printf(&q, "%s%s", i ? " " : "", words[i]);
    buf_puts(&path, "/api/catalog/search?q=");
    ctl_url_encode(&path, buf_str(&q));
    rc = ctl_admin(o, buf_str(&path), 1);
    buf_free(&path);
    buf_free(&q);
    return rc;
}

/* A random event id: 32 hex digits. */
static void ctl_event_id(char *out, size_t len) {
    unsigned char r[16] = {0};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* Unique enough for one process's few signals: time and pid. */
        int64_t t = clock_wall_ms();
        memcpy(r, &t, sizeof(t));
        r[8] = (unsigned char)getpid();
    }
    for (size_t i = 0; i < sizeof(r) && 2 * i + 2 < len; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static int ctl_track(const ctl_opts *o, const char *user, const char *kind, const char *id) {
    Aisle__V1__Signal sig = AISLE__V1__SIGNAL__INIT;
    const ProtobufCEnumValue *k;
    char upper[32], event_id[40], err[512];
    rd_kafka_t *rk;
    size_t i;
    int rc = 0;

    for (i = 0; kind[i] && i + 1 < sizeof(upper); i++)
        upper[i] = (char)(kind[i] >= 'a' && kind[i] <= 'z' ? kind[i] - 32 : kind[i]);
    upper[i] = '\0';
    k = protobuf_c_enum_descriptor_get_value_by_name(&aisle__v1__signal_kind__descriptor, upper);
    if (!k || k->value == AISLE__V1__SIGNAL_KIND__SIGNAL_KIND_UNSPECIFIED)
        return cli_usage_error("ctl", "unknown signal kind '%s'", kind);
    if (!o->brokers) return cli_usage_error("ctl", "track needs --kafka-brokers");
    ctl_event_id(event_id, sizeof(event_id));
    sig.event_id = event_id;
    sig.user_id = (char *)user;
    sig.kind = (Aisle__V1__SignalKind)k->value;
    if (k->value == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR)
        sig.creator_id = (char *)id;
    else
        sig.item_id = (char *)id;
    sig.ts_ms = clock_wall_ms();
    if (!(rk = kafka_producer_new(o->brokers, err, sizeof(err)))) {
        fprintf(stderr, "aisle ctl: %s\n", err);
        return CTL_EXIT_UNAVAILABLE;
    }
    if (kafka_produce_msg(rk, o->signal_topic, user, &sig.base, err, sizeof(err)) ||
        rd_kafka_flush(rk, (int)o->timeout_ms)) {
        fprintf(stderr, "aisle ctl: sending to %s: %s\n", o->signal_topic,
                *err ? err : "not delivered in time");
        rc = CTL_EXIT_UNAVAILABLE;
    }
    rd_kafka_destroy(rk);
    if (rc) return rc;
    if (o->json)
        printf("{\"event_id\":\"%s\",\"topic\":\"%s\"}\n", event_id, o->signal_topic);
    else
        printf("sent %s by %s on %s (event %s)\n", kind, user, id, event_id);
    return 0;
}

static int ctl_index_reload(const ctl_opts *o) {
    static const char cmd[] = "index reload";
    rd_kafka_t *rk;
    rd_kafka_resp_err_t e;
    char err[512];
    if (!o->brokers) return cli_usage_error("ctl", "index reload needs --kafka-brokers");
    if (!(rk = kafka_producer_new(o->brokers, err, sizeof(err)))) {
        fprintf(stderr, "aisle ctl: %s\n", err);
        return CTL_EXIT_UNAVAILABLE;
    }
    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->control_topic),
                          RD_KAFKA_V_VALUE((void *)cmd, sizeof(cmd) - 1),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (!e) e = rd_kafka_flush(rk, (int)o->timeout_ms);
    rd_kafka_destroy(rk);
    if (e) {
        fprintf(stderr, "aisle ctl: sending to %s: %s\n", o->control_topic, rd_kafka_err2str(e));
        return CTL_EXIT_UNAVAILABLE;
    }
    printf("sent 'index reload' to %s\n", o->control_topic);
    return 0;
}

/* Whether the words are cmd[0] cmd[1]... with nargs arguments after
 * them (nargs < 0: at least -nargs). */
static int ctl_is(int n, char **w, const char *a, const char *b, int nargs) {
    int words = b ? 2 : 1;
    if (n < words || strcmp(w[0], a) || (b && strcmp(w[1], b))) return 0;
    return nargs >= 0 ? n - words == nargs : n - words >= -nargs;
}

/* The gRPC commands, with a channel open for them. */
static int ctl_grpc(const ctl_opts *o, int n, char **w) {
    rpc_client *rc;
    char err[512];
    int status;
    if (rpc_open(o->server, &o->tls, &rc, err, sizeof(err)) != AISLE_OK) {
        fprintf(stderr, "aisle ctl: %s\n", err);
        return CTL_EXIT_FAILED;
    }
    if (ctl_is(n, w, "recommend", NULL, 1))
        status = ctl_recommend(rc, o, w[1]);
    else if (ctl_is(n, w, "similar", NULL, 1) || ctl_is(n, w, "similar", NULL, 2))
        status = ctl_similar(rc, o, w[1], n == 3 ? w[2] : NULL);
    else if (ctl_is(n, w, "profile", "get", 1))
        status = ctl_profile_get(rc, o, w[2]);
    else if (ctl_is(n, w, "profile", "delete", 1))
        status = ctl_profile_delete(rc, o, w[2]);
    else
        status = ctl_shop(rc, o, n - 1, w + 1);
    rpc_close(rc);
    return status;
}

int ctl_main(int argc, char **argv) {
    ctl_opts o;
    char err[512];
    char **w;
    int n, rc;

    /* ctl exp ... is the experiments tool, with flags of its own. */
    if (argc >= 2 && strcmp(argv[1], "exp") == 0) return expctl_main(argc - 1, argv + 1);
    if ((rc = config_apply("ctl", &argc, &argv))) return rc;
    if ((rc = ctl_flags(argc, argv, &o))) return rc == CLI_EXIT_HELP ? 0 : rc;
    log_set_format(LOG_FORMAT_TEXT); /* a person reads what librdkafka or gRPC may say */
    if (kafka_client_opts_set(o.kafka_opts, o.n_kafka_opts, err, sizeof(err)) != AISLE_OK)
        return cli_usage_error("ctl", "%s", err);
    n = argc - optind;
    w = argv + optind;
    if (ctl_is(n, w, "recommend", NULL, 1) || ctl_is(n, w, "similar", NULL, 1) ||
        ctl_is(n, w, "similar", NULL, 2) || ctl_is(n, w, "profile", "get", 1) ||
        ctl_is(n, w, "profile", "delete", 1) || ctl_is(n, w, "shop", NULL, -2))
        return ctl_grpc(&o, n, w);
    if (ctl_is(n, w, "index", "status", 0)) return ctl_admin(&o, "/api/index", 0);
    if (ctl_is(n, w, "index", "reload", 0)) return ctl_index_reload(&o);
    if (ctl_is(n, w, "catalog", "get", 1)) return ctl_catalog_get(&o, w[2]);
    if (ctl_is(n, w, "catalog", "search", -1)) return ctl_catalog_search(&o, n - 2, w + 2);
    if (ctl_is(n, w, "track", NULL, 3)) return ctl_track(&o, w[1], w[2], w[3]);
    return cli_usage_error("ctl", "unknown command; the commands are recommend USER, similar "
                                  "ITEM [USER], profile get|delete USER, shop USER QUERY, track "
                                  "USER KIND ID, index status|reload, catalog get ITEM|search "
                                  "TEXT, exp ...");
}
