/* demo: wires every part together in one process and shows it working. */
#include "services/demo.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/cli.h"
#include "services/clock.h"
#include "services/feed.h"
#include "services/ingest.h"
#include "services/kafka.h"
#include "services/log.h"
#include "services/redisproc.h"
#include "services/server.h"
#include "services/shop.h"

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
    char err[256];
    printf("\n%s likes %s and %s (budget about $%lld), favourite creator c%04zu\n", us->id,
           synth_category(w, us->cats[0]), synth_category(w, us->cats[1]),
           (long long)us->budget_cents / 100, us->fav_creator);
    if (server_recommend(cat, ps, us->id, limit, NULL, &rr, err, sizeof(err)) != 0) {
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
        if (server_recommend(cat, ps, w->users[u].id, 1, NULL, &rr, err, sizeof(err)) == 0) {
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

static void demo_shop_fail(void *ud, grpc_status_code code, const char *msg) {
    (void)ud;
    printf("  (no answer, status %d: %s)\n", (int)code, msg);
}

/* Asks Shop the same question for shopper u in both modes and prints the
 * answers as they stream. */
static void demo_shop_tour(shop *sh, catalog *cat, profile_store *ps, const synth_world *w,
                           size_t u) {
    const synth_user *us = &w->users[u];
    shop_sink sink = {demo_shop_send, demo_shop_cancelled, demo_shop_fail, NULL};
    server_call_ctx ctx = {cat, ps, sh, clock_mono_ms() + 5000};
    Aisle__V1__ShopRequest req = AISLE__V1__SHOP_REQUEST__INIT;
    char query[128];

    snprintf(query, sizeof(query), "a gift for a %s fan under $%lld",
             synth_category(w, us->cats[0]), (long long)us->budget_cents / 100);
    req.user_id = (char *)us->id;
    req.query = query;
    req.limit = 3;
    printf("\nShop (fast): %s asks \"%s\"\n", us->id, query);
    shop_answer(sh, &ctx, &req, &sink);
    req.mode = AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING;
    ctx.deadline_ms = clock_mono_ms() + 5000;
    printf("\nShop (contemplating): the same request, from several angles at once\n");
    shop_answer(sh, &ctx, &req, &sink);
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
    "  --items N              catalog items (default 5000)\n"
    "  --users N              shoppers (default 200)\n"
    "  --signals-per-user N   signals per shopper (default 30)\n"
    "  --dim N                embedding length (default 32)\n"
    "  --seed N               generator seed (default 1)\n"
    "  --once                 exit after the tour instead of serving on\n"
    "  --log-level LEVEL      debug, info, warn or error (default warn)\n"
    "  -h, --help             show this help\n";

int demo_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},   {"items", required_argument, 0, 'i'},
        {"users", required_argument, 0, 'u'},    {"signals-per-user", required_argument, 0, 's'},
        {"dim", required_argument, 0, 'd'},      {"seed", required_argument, 0, 'S'},
        {"once", no_argument, 0, 'o'},           {"log-level", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    static const char *levels[] = {"debug", "info", "warn", "error"};
    server_config sc = {.listen = "127.0.0.1:50051", .threads = 4};
    shop_config shc;
    shop *sh = NULL;
    synth_config wc;
    catalog_config cc;
    feed_config fc;
    long long v, per_user = 30;
    int once = 0, c, rc = 1, level = LOG_WARN;
    redisproc rp = {0};
    kafka_mock *mock = NULL;
    synth_world *w = NULL;
    rd_kafka_t *rk = NULL;
    catalog *cat = NULL;
    feed *fd = NULL;
    server *srv = NULL;
    profile_store *ps = NULL;
    demo_ingest *di = NULL;
    atomic_int *stop;
    char err[512];
    int64_t t0;

    synth_config_default(&wc);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': sc.listen = optarg; break;
        case 'i':
            if (cli_int("demo", "items", optarg, 1, 1000000, &v)) return CLI_EXIT_USAGE;
            wc.n_items = (size_t)v;
            break;
        case 'u':
            if (cli_int("demo", "users", optarg, 1, 100000, &v)) return CLI_EXIT_USAGE;
            wc.n_users = (size_t)v;
            break;
        case 's':
            if (cli_int("demo", "signals-per-user", optarg, 1, 10000, &per_user))
                return CLI_EXIT_USAGE;
            break;
        case 'd':
            if (cli_int("demo", "dim", optarg, 1, CATALOG_MAX_DIM, &v)) return CLI_EXIT_USAGE;
            wc.dim = (int)v;
            break;
        case 'S':
            if (cli_int("demo", "seed", optarg, 0, INT64_MAX, &v)) return CLI_EXIT_USAGE;
            wc.seed = (uint64_t)v;
            break;
        case 'o': once = 1; break;
        case 'L':
            for (level = 0; level < 4 && strcmp(optarg, levels[level]); level++) {
            }
            if (level == 4)
                return cli_usage_error("demo", "--log-level must be debug, info, warn or error");
            break;
        case 'h': fputs(demo_usage, stdout); return 0;
        default: return cli_usage_error("demo", "unknown or incomplete flag");
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    log_set_level(level);
    stop = cli_stop_flag();
    profile_config_default(&sc.profile);

    printf("Aisle demo: starting redis-server and a Kafka mock cluster...\n");
    fflush(stdout);
    if (redisproc_start(&rp, err, sizeof(err)) ||
        kafka_mock_start(1, 16, &mock, err, sizeof(err)) ||
        synth_world_new(&wc, &w, err, sizeof(err)) ||
        !(rk = kafka_producer_new(kafka_mock_bootstraps(mock), err, sizeof(err))))
        goto out;
    printf("  redis %s, kafka %s\n", rp.addr, kafka_mock_bootstraps(mock));

    t0 = clock_mono_ms();
    catalog_config_default(&cc);
    cc.dim = wc.dim;
    feed_config_default(&fc);
    fc.brokers = kafka_mock_bootstraps(mock);
    if (demo_produce_catalog(rk, w, wc.n_items, err, sizeof(err)) ||
        catalog_new(&cc, &cat, err, sizeof(err)) ||
        feed_start(&fc, cat, &fd, err, sizeof(err)))
        goto out;
    while (!feed_ready(fd) && clock_mono_ms() - t0 < DEMO_WAIT_MS && !atomic_load(stop))
        clock_sleep_ms(20);
    if (!feed_ready(fd)) {
        snprintf(err, sizeof(err), "the catalog did not load");
        goto out;
    }
    catalog_read_begin(cat);
    printf("Catalog: %zu products across 12 categories streamed through Kafka in %lld ms\n",
           catalog_count(cat), (long long)(clock_mono_ms() - t0));
    catalog_read_end(cat);

    sc.redis = rp.addr;
    sc.ready = feed_ready;
    sc.ready_arg = fd;
    shop_config_default(&shc);
    shc.redis = rp.addr;
    shc.profile = sc.profile;
    if (shop_new(&shc, &sh, err, sizeof(err))) goto out;
    sc.shop = shop_handle;
    sc.shop_arg = sh;
    if (server_start(&sc, cat, &srv, err, sizeof(err))) goto out;

    di = calloc(1, sizeof(*di));
    if (!di) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    ingest_config_default(&di->cfg);
    di->cfg.brokers = kafka_mock_bootstraps(mock);
    di->cfg.redis = rp.addr;
    if (pthread_create(&di->thread, NULL, demo_ingest_main, di) != 0) {
        snprintf(err, sizeof(err), "cannot start the ingest thread");
        goto out;
    }
    di->started = 1;

    t0 = clock_mono_ms();
    if (demo_produce_signals(rk, w, (size_t)per_user, wc.seed, err, sizeof(err))) goto out;
    uint64_t total = (uint64_t)per_user * wc.n_users;
    while (atomic_load(&di->stats.committed) < total && clock_mono_ms() - t0 < DEMO_WAIT_MS &&
           !atomic_load(stop))
        clock_sleep_ms(20);
    printf("Signals: %llu from %zu shoppers applied to Redis profiles in %lld ms\n",
           (unsigned long long)atomic_load(&di->stats.applied), wc.n_users,
           (long long)(clock_mono_ms() - t0));

    if (profile_store_open(rp.addr, &sc.profile, &ps, err, sizeof(err))) goto out;
    for (size_t u = 0; u < 3 && u < wc.n_users; u++) demo_print_user(cat, ps, w, u, 5);

    if (wc.n_users > 0) {
        int k = 0;
        while (k == w->users[0].cats[0] || k == w->users[0].cats[1]) k++;
        int64_t ms = demo_freshness(rk, cat, ps, w, 0, k);
        if (ms >= 0)
            printf("\nFreshness: %s bought %s items; %s led their recommendations %lld ms later\n",
                   w->users[0].id, synth_category(w, k), synth_category(w, k), (long long)ms);
        else
            printf("\nFreshness: the new interest did not lead within 10 s\n");
        demo_print_user(cat, ps, w, 0, 3);
    }
    if (wc.n_users > 1) demo_shop_tour(sh, cat, ps, w, 1);

    printf("\nServing aisle.v1.Recommender on %s (port %d). Try:\n"
           "  /usr/bin/python3 tests/integration/client.py 127.0.0.1:%d %s\n",
           sc.listen, server_port(srv), server_port(srv), w->users[1 % wc.n_users].id);
    if (!once) printf("Press Ctrl-C to stop.\n");
    fflush(stdout);
    while (!once && !atomic_load(stop)) clock_sleep_ms(100);
    rc = 0;
out:
    if (rc) fprintf(stderr, "aisle demo: %s\n", err);
    if (srv) server_stop(srv, 5000);
    shop_free(sh);
    if (di) {
        atomic_store(&di->stop, 1);
        if (di->started) pthread_join(di->thread, NULL);
        free(di);
    }
    profile_store_close(ps);
    feed_stop(fd);
    catalog_free(cat);
    if (rk) rd_kafka_destroy(rk);
    synth_world_free(w);
    kafka_mock_stop(mock);
    redisproc_stop(&rp);
    if (!rc) printf("Stopped; redis-server and the Kafka mock cluster are gone.\n");
    return rc;
}
