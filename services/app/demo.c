/* demo: wires every part together in one process and shows it working. */
#include "services/app/demo.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/app/cli.h"
#include "services/app/config.h"
#include "services/app/ops.h"
#include "services/base/clock.h"
#include "services/app/runtime.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/devtools/redisproc.h"
#include "services/ingest/ingest.h"
#include "services/kafka/kafka.h"
#include "services/recommend/recommend.h"
#include "services/shop/shop.h"

#define DEMO_WAIT_MS 120000

static int demo_flush(rd_kafka_t *rk, char *err, size_t errlen) {
    if (rd_kafka_flush(rk, DEMO_WAIT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "Kafka did not acknowledge %d messages in time",
                 rd_kafka_outq_len(rk));
        return -1;
    }
    return 0;
}

int demo_produce_catalog(rd_kafka_t *rk, const synth_world *w, size_t n, char *err,
                         size_t errlen) {
    for (size_t i = 0; i < n && i < w->cfg.n_items; i++) {
        Aisle__V1__CatalogItem msg = AISLE__V1__CATALOG_ITEM__INIT;
        synth_catalog_item(w, i, &msg);
        if (kafka_produce_msg(rk, KAFKA_TOPIC_CATALOG, msg.item_id, &msg.base, err, errlen))
            return -1;
    }
    return demo_flush(rk, err, errlen);
}

int demo_produce_signals(rd_kafka_t *rk, const synth_world *w, size_t per_user,
                         uint64_t seed, char *err, size_t errlen) {
    uint64_t rng = seed ^ 0x5eed5eedULL;
    int64_t now = clock_wall_ms();
    char event_id[32];
    for (size_t k = 0; k < per_user; k++) {
        for (size_t u = 0; u < w->cfg.n_users; u++) {
            Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
            /* Older signals first, so each user's history reads in order. */
            int64_t ts = now - (int64_t)(per_user - k) * 86400000LL / (int64_t)(per_user + 1);
            synth_next_signal(w, u, &rng, ts, event_id, &s);
            if (kafka_produce_msg(rk, KAFKA_TOPIC_SIGNALS, s.user_id, &s.base, err, errlen))
                return -1;
        }
    }
    return demo_flush(rk, err, errlen);
}

typedef struct demo_ingest {
    ingest_config cfg;
    ingest_stats stats;
    atomic_int stop;
    pthread_t thread;
    int started;
} demo_ingest;

static void *demo_ingest_main(void *arg) {
    demo_ingest *di = arg;
    char err[512];
    if (ingest_run(&di->cfg, &di->stats, &di->stop, err, sizeof(err)) != 0)
        log_error("demo", "ingest: %s", err);
    return NULL;
}

static void demo_print_user(catalog *cat, profile_store *ps, const synth_world *w,
                            size_t u, int limit) {
    const synth_user *us = &w->users[u];
    rank_result rr;
    char err[256], creator[40];
    synth_creator_name(us->fav_creator, creator, sizeof(creator));
    printf("\n%s likes %s and %s (budget about $%lld), favourite creator %s (c%04zu)\n", us->id,
           synth_category(w, us->cats[0]), synth_category(w, us->cats[1]),
           (long long)us->budget_cents / 100, creator, us->fav_creator);
    if (recommend_for(cat, ps, us->id, limit, NULL, &rr, err, sizeof(err)) != 0) {
        printf("  (no recommendations: %s)\n", err);
        return;
    }
    for (size_t i = 0; i < rr.n; i++) {
        const rank_hit *h = &rr.hits[i];
        printf("  %zu. %-40s %-11s $%4lld.%02lld  score %.3f\n", i + 1, h->item.title,
               h->item.category, (long long)h->item.price_cents / 100,
               (long long)h->item.price_cents % 100, h->score);
        for (int j = 0; j < h->n_reasons; j++) printf("       - %s\n", h->reasons[j]);
    }
    rank_result_free(&rr);
}

/* Shows freshness: strong signals in a category new to user u, then the time
 * until that category leads u's recommendations. Returns the delay in ms, or
 * -1 when it did not happen within the wait. */
static int64_t demo_freshness(rd_kafka_t *rk, catalog *cat, profile_store *ps,
                              const synth_world *w, size_t u, int k) {
    uint64_t rng = 42;
    char event_id[32], err[256];
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < 6; i++) {
        Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
        synth_signal_in_category(w, u, k, &rng, clock_wall_ms(), event_id, &s);
        s.kind = AISLE__V1__SIGNAL_KIND__PURCHASE;
        s.weight = 20;
        if (kafka_produce_msg(rk, KAFKA_TOPIC_SIGNALS, s.user_id, &s.base, err, sizeof(err)))
            return -1;
    }
    rd_kafka_flush(rk, 5000);
    while (clock_mono_ms() - t0 < 10000) {
        rank_result rr;
        if (recommend_for(cat, ps, w->users[u].id, 1, NULL, &rr, err, sizeof(err)) == 0) {
            int hit = rr.n && strcmp(rr.hits[0].item.category, synth_category(w, k)) == 0;
            rank_result_free(&rr);
            if (hit) return clock_mono_ms() - t0;
        }
        clock_sleep_ms(2);
    }
    return -1;
}

static int demo_shop_send(void *ud, const Aisle__V1__ShopChunk *ch) {
    (void)ud;
    for (size_t i = 0; i < ch->n_agents; i++)
        printf("  [%s%s] %s\n", ch->agents[i]->agent, ch->agents[i]->used ? "" : ", unused",
               ch->agents[i]->summary);
    fputs(ch->text, stdout);
    return 0;
}

static int demo_shop_cancelled(void *ud) {
    (void)ud;
    return 0;
}

static void demo_shop_fail(void *ud, int code, const char *msg) {
    (void)ud;
    printf("  (no answer, %s: %s)\n", status_str(code), msg);
}

/* Asks Shop the same question for shopper u in both modes and prints the
 * answers as they stream. */
static void demo_shop_tour(shop *sh, catalog *cat, profile_store *ps, const synth_world *w,
                           size_t u) {
    const synth_user *us = &w->users[u];
    shop_sink sink = {demo_shop_send, demo_shop_cancelled, demo_shop_fail, NULL};
    shop_call call = {.cat = cat, .profiles = ps, .deadline_ms = clock_mono_ms() + 5000,
                      .request_id = "demo-shop"};
    Aisle__V1__ShopRequest req = AISLE__V1__SHOP_REQUEST__INIT;
    char query[128];

    snprintf(query, sizeof(query), "a gift for a %s fan under $%lld",
             synth_category(w, us->cats[0]), (long long)us->budget_cents / 100);
    req.user_id = (char *)us->id;
    req.query = query;
    req.limit = 3;
    printf("\nShop (fast): %s asks \"%s\"\n", us->id, query);
    shop_answer(sh, &call, &req, &sink);
    req.mode = AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING;
    call.deadline_ms = clock_mono_ms() + 5000;
    printf("\nShop (contemplating): the same request, from several angles at once\n");
    shop_answer(sh, &call, &req, &sink);
}

static const char demo_usage[] =
    "Usage: aisle demo [FLAGS]\n"
    "\n"
    "Runs Aisle end to end on embedded defaults: starts its own redis-server on a free\n"
    "loopback port and an in-process Kafka mock cluster, generates a shop (products and\n"
    "creators across categories, with embeddings) and shoppers with tastes, streams the\n"
    "catalog and their signals through Kafka, serves gRPC, prints a few shoppers'\n"
    "recommendations with reasons, and serves until Ctrl-C.\n"
    "\n"
    "  --listen HOST:PORT     gRPC address (default 127.0.0.1:50051; port 0 picks one)\n"
    "  --http-listen HOST:PORT  metrics, probes and the console at /console\n"
    "                         (default 127.0.0.1:9464; port 0 picks one; when the\n"
    "                         address is taken the demo goes on without it)\n"
    "  --items N              catalog items (default 5000)\n"
    "  --users N              shoppers (default 200)\n"
    "  --signals-per-user N   signals per shopper (default 30)\n"
    "  --dim N                embedding length (default 32)\n"
    "  --seed N               generator seed (default 1)\n"
    "  --once                 exit after the tour instead of serving on\n"
    "  --log-level LEVEL      debug, info, warn or error (default warn)\n"
    "  --config FILE          settings from a YAML file (flags given here override it)\n"
    "  -h, --help             show this help\n";

/* Everything the demo starts, stopped in reverse by demo_stop. */
typedef struct demo {
    synth_config wc;
    long long per_user;
    int once;
    const char *listen;
    const char *http;
    redisproc rp;
    kafka_mock *mock;
    synth_world *w;
    rd_kafka_t *rk;
    runtime *rt;
    ops *op; /* the HTTP endpoint, or NULL when its address was taken */
    profile_store *ps;
    demo_ingest *di;
    atomic_int *stop;
} demo;

/* Returns 0 to run, or the exit code (help printed, usage error). */
static int demo_flags(int argc, char **argv, demo *d) {
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},   {"items", required_argument, 0, 'i'},
        {"users", required_argument, 0, 'u'},    {"signals-per-user", required_argument, 0, 's'},
        {"dim", required_argument, 0, 'd'},      {"seed", required_argument, 0, 'S'},
        {"once", no_argument, 0, 'o'},           {"log-level", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {"http-listen", required_argument, 0, 'H'},
        {0, 0, 0, 0}};
    static const char *levels[] = {"debug", "info", "warn", "error"};
    int c, level = LOG_WARN;
    long long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': d->listen = optarg; break;
        case 'H': d->http = optarg; break;
        case 'i':
            if (cli_int("demo", "items", optarg, 1, 1000000, &v)) return CLI_EXIT_USAGE;
            d->wc.n_items = (size_t)v;
            break;
        case 'u':
            if (cli_int("demo", "users", optarg, 1, 100000, &v)) return CLI_EXIT_USAGE;
            d->wc.n_users = (size_t)v;
            break;
        case 's':
            if (cli_int("demo", "signals-per-user", optarg, 1, 10000, &d->per_user))
                return CLI_EXIT_USAGE;
            break;
        case 'd':
            if (cli_int("demo", "dim", optarg, 1, CATALOG_MAX_DIM, &v)) return CLI_EXIT_USAGE;
            d->wc.dim = (int)v;
            break;
        case 'S':
            if (cli_int("demo", "seed", optarg, 0, INT64_MAX, &v)) return CLI_EXIT_USAGE;
            d->wc.seed = (uint64_t)v;
            break;
        case 'o': d->once = 1; break;
        case 'L':
            for (level = 0; level < 4 && strcmp(optarg, levels[level]); level++) {
            }
            if (level == 4)
                return cli_usage_error("demo", "--log-level must be debug, info, warn or error");
            break;
        case 'h': fputs(demo_usage, stdout); return CLI_EXIT_HELP;
        default: return cli_usage_error("demo", "unknown or incomplete flag");
        }
    }
    cli_flags_done();
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    log_set_level(level);
    log_set_format(LOG_FORMAT_TEXT); /* a person reads the demo's terminal */
    return 0;
}

/* Redis, the Kafka mock, the generated world and a producer. */
static int demo_infra(demo *d, char *err, size_t errlen) {
    printf("Aisle demo: starting redis-server and a Kafka mock cluster...\n");
    fflush(stdout);
    if (redisproc_start(&d->rp, err, errlen) ||
        kafka_mock_start(1, 16, &d->mock, err, errlen) ||
        synth_world_new(&d->wc, &d->w, err, errlen) ||
        !(d->rk = kafka_producer_new(kafka_mock_bootstraps(d->mock), err, errlen)))
        return AISLE_EIO;
    printf("  redis %s, kafka %s\n", d->rp.addr, kafka_mock_bootstraps(d->mock));
    return AISLE_OK;
}

/* The operator's endpoint and the console, as `aisle serve` has them; a
 * demo without them is still a demo, so a taken address only warns. */
static void demo_http(demo *d) {
    ingest_config watch;
    char why[512];
    ingest_config_default(&watch);
    watch.brokers = kafka_mock_bootstraps(d->mock);
    if (ops_start_serve(d->http ? d->http : "127.0.0.1:9464", d->rp.addr, d->rt, &watch, &d->op,
                        why, sizeof(why)) != AISLE_OK)
        printf("  (no console: %s)\n", why);
}

/* Streams the catalog through Kafka and starts the serving stack on it. */
static int demo_serve(demo *d, char *err, size_t errlen) {
    runtime_config cfg;
    int64_t t0 = clock_mono_ms();
    int rc;
    runtime_config_default(&cfg);
    if (d->listen) cfg.server.listen = d->listen;
    cfg.server.redis = d->rp.addr;
    cfg.insecure = 1; /* a demo on loopback; it says so at start */
    cfg.catalog.dim = d->wc.dim;
    cfg.feed.brokers = kafka_mock_bootstraps(d->mock);
    if ((rc = demo_produce_catalog(d->rk, d->w, d->wc.n_items, err, errlen)) ||
        (rc = runtime_start(&cfg, &d->rt, err, errlen)))
        return rc;
    while (!runtime_ready(d->rt) && clock_mono_ms() - t0 < DEMO_WAIT_MS && !atomic_load(d->stop))
        clock_sleep_ms(20);
    if (!runtime_ready(d->rt)) return status_fail(AISLE_EIO, err, errlen, "the catalog did not load");
    demo_http(d);
    catalog_read_begin(runtime_catalog(d->rt));
    printf("Catalog: %zu products across 12 categories streamed through Kafka in %lld ms\n",
           catalog_count(runtime_catalog(d->rt)), (long long)(clock_mono_ms() - t0));
    catalog_read_end(runtime_catalog(d->rt));
    return profile_store_open(d->rp.addr, &cfg.server.profile, &d->ps, err, errlen);
}

/* An ingest worker on a thread, then the shoppers' signals through it. */
static int demo_ingest_signals(demo *d, char *err, size_t errlen) {
    uint64_t total = (uint64_t)d->per_user * d->wc.n_users;
    int64_t t0;
    if (!(d->di = calloc(1, sizeof(*d->di)))) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    ingest_config_default(&d->di->cfg);
    d->di->cfg.brokers = kafka_mock_bootstraps(d->mock);
    d->di->cfg.redis = d->rp.addr;
    if (pthread_create(&d->di->thread, NULL, demo_ingest_main, d->di) != 0)
        return status_fail(AISLE_ENOMEM, err, errlen, "cannot start the ingest thread");
    d->di->started = 1;
    t0 = clock_mono_ms();
    if (demo_produce_signals(d->rk, d->w, (size_t)d->per_user, d->wc.seed, err, errlen))
        return AISLE_EIO;
    while (atomic_load(&d->di->stats.committed) < total && clock_mono_ms() - t0 < DEMO_WAIT_MS &&
           !atomic_load(d->stop))
        clock_sleep_ms(20);
    printf("Signals: %llu from %zu shoppers applied to Redis profiles in %lld ms\n",
           (unsigned long long)atomic_load(&d->di->stats.applied), d->wc.n_users,
           (long long)(clock_mono_ms() - t0));
    return AISLE_OK;
}

/* Three shoppers' recommendations, freshness, and both Shop modes. */
static void demo_tour(demo *d) {
    catalog *cat = runtime_catalog(d->rt);
    const synth_world *w = d->w;
    for (size_t u = 0; u < 3 && u < d->wc.n_users; u++) demo_print_user(cat, d->ps, w, u, 5);
    if (d->wc.n_users > 0) {
        int k = 0;
        while (k == w->users[0].cats[0] || k == w->users[0].cats[1]) k++;
        int64_t ms = demo_freshness(d->rk, cat, d->ps, w, 0, k);
        if (ms >= 0)
            printf("\nFreshness: %s bought %s items; %s led their recommendations %lld ms later\n",
                   w->users[0].id, synth_category(w, k), synth_category(w, k), (long long)ms);
        else
            printf("\nFreshness: the new interest did not lead within 10 s\n");
        demo_print_user(cat, d->ps, w, 0, 3);
    }
    if (d->wc.n_users > 1) demo_shop_tour(runtime_shop(d->rt), cat, d->ps, w, 1);
    printf("\nServing aisle.v1.Recommender on %s (port %d). Try:\n"
           "  /usr/bin/python3 tests/integration/client.py 127.0.0.1:%d %s\n"
           "  bazel-bin/aisle ctl recommend %s --server 127.0.0.1:%d\n",
           d->listen ? d->listen : "127.0.0.1:50051", runtime_port(d->rt), runtime_port(d->rt),
           w->users[1 % d->wc.n_users].id, w->users[1 % d->wc.n_users].id, runtime_port(d->rt));
    if (d->op)
        printf("  the console: http://127.0.0.1:%d/console (metrics at /metrics)\n",
               ops_port(d->op));
}

static void demo_stop(demo *d) {
    ops_stop(d->op);
    runtime_stop(d->rt, 5000);
    if (d->di) {
        atomic_store(&d->di->stop, 1);
        if (d->di->started) pthread_join(d->di->thread, NULL);
        free(d->di);
    }
    profile_store_close(d->ps);
    if (d->rk) rd_kafka_destroy(d->rk);
    synth_world_free(d->w);
    kafka_mock_stop(d->mock);
    redisproc_stop(&d->rp);
}

int demo_check_flags(int argc, char **argv) {
    demo d = {.per_user = 30};
    synth_config_default(&d.wc);
    return demo_flags(argc, argv, &d);
}

int demo_main(int argc, char **argv) {
    demo d = {.per_user = 30};
    char err[512];
    int rc;

    if ((rc = config_apply("demo", &argc, &argv))) return rc;
    synth_config_default(&d.wc);
    if ((rc = demo_flags(argc, argv, &d))) return rc == CLI_EXIT_HELP ? 0 : rc;
    d.stop = cli_stop_flag();
    rc = demo_infra(&d, err, sizeof(err));
    if (rc == AISLE_OK) rc = demo_serve(&d, err, sizeof(err));
    if (rc == AISLE_OK) rc = demo_ingest_signals(&d, err, sizeof(err));
    if (rc == AISLE_OK) {
        demo_tour(&d);
        if (!d.once) printf("Press Ctrl-C to stop.\n");
        fflush(stdout);
        while (!d.once && !atomic_load(d.stop)) clock_sleep_ms(100);
    }
    if (rc != AISLE_OK) fprintf(stderr, "aisle demo: %s\n", err);
    demo_stop(&d);
    if (rc == AISLE_OK) printf("Stopped; redis-server and the Kafka mock cluster are gone.\n");
    return rc == AISLE_OK ? 0 : 1;
}
