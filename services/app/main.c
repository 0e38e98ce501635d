/* main: the aisle binary. One executable carries every role (serve,
 * ingest, demo, tools), so a deployment ships and versions one file; each
 * subcommand parses its own flags and explains them under --help. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/blascore.h"
#include "embed/cli.h"
#include "model/cli.h"
#include "services/app/cli.h"
#include "services/app/config.h"
#include "services/app/ctl.h"
#include "services/base/clock.h"
#include "services/app/demo.h"
#include "services/app/expctl.h"
#include "services/app/runtime.h"
#include "services/app/serveprobe.h"
#include "services/ingest/ingest.h"
#include "services/kafka/kafka.h"
#include "services/base/log.h"
#include "services/app/mockctl.h"
#include "services/app/rank.h"
#include "services/app/report.h"
#include "services/app/ops.h"
#include "services/base/status.h"
#include "services/shop/shop.h"
#include "services/devtools/synth.h"

static const char main_usage[] =
    "Usage: aisle COMMAND [FLAGS]\n"
    "\n"
    "Aisle: real-time personalization and shopping recommendations.\n"
    "\n"
    "Commands:\n"
    "  serve       answer the Recommender gRPC service from the live catalog and profiles\n"
    "  ingest      apply user signals from Kafka to Redis profiles (consumer-group worker)\n"
    "  demo        run everything on embedded defaults with a generated shop\n"
    "  kafka-mock  run an in-process Kafka mock cluster for development and tests\n"
    "  synth       produce a generated catalog and shopper signals to Kafka\n"
    "  embed       offline embedding jobs: 'embed train', 'embed eval'\n"
    "  generate    write text with a llama2.c or GGUF model\n"
    "  model       model files: 'model convert|tokenize|logits|info'\n"
    "  ctl         talk to running servers: recommend, profile, shop, index, catalog\n"
    "  config      the YAML configuration file: 'config check FILE', 'config example'\n"
    "  exp         A/B experiments and run-time toggles: 'exp set', 'exp list', 'exp assign' ...\n"
    "  report      experiment results from exposures and signals\n"
    "  rank        learned ranker: 'rank train' (XGBoost LambdaMART), 'rank check MODEL'\n"
    "\n"
    "'aisle COMMAND --help' explains each command's flags.\n";

/* Flags every long-running role shares. */
static int main_log_level(const char *cmd, const char *s) {
    int level;
    if (log_parse_level(s, &level))
        return cli_usage_error(cmd, "--log-level must be debug, info, warn or error");
    log_set_level(level);
    return 0;
}

static int main_log_format(const char *cmd, const char *s) {
    int format;
    if (log_parse_format(s, &format)) return cli_usage_error(cmd, "--log-format must be json or text");
    log_set_format(format);
    return 0;
}

#define MAIN_LOG_USAGE                                                                  \
    "  --log-level LEVEL      debug, info, warn or error (default info)\n"              \
    "  --log-format FORMAT    json (one object per line, the default) or text\n"

#define MAIN_HTTP_USAGE(port, what)                                                      \
    "  --http-listen HOST:PORT  /metrics, /healthz, /readyz" what "\n"                      \
    "                         (default 127.0.0.1:" port "; port 0 picks a free one)\n"

static const char serve_usage[] =
    "Usage: aisle serve --kafka-brokers LIST --redis HOST:PORT [FLAGS]\n"
    "\n"
    "Answers the aisle.v1.Recommender gRPC service (and grpc.health.v1) from a live\n"
    "catalog read from Kafka and user profiles read from Redis.\n"
    "\n"
    "  --config FILE          settings from a YAML file ('aisle config example');\n"
    "                         the flags given here override it\n"
    "  --listen HOST:PORT     gRPC address (default 127.0.0.1:50051; port 0 picks a free one)\n"
    "  --kafka-brokers LIST   Kafka bootstrap servers, HOST:PORT[,HOST:PORT...] (required)\n"
    "  --redis HOST:PORT      Redis that holds the profiles (required)\n"
    "  --dim N                embedding length of catalog items (default 32)\n"
    "  --snapshots DIR        load the newest valid embedding snapshot from DIR at start\n"
    "                         (it sets the dimension) and on 'aisle ctl index reload'\n"
    "  --ivf-threshold N      catalog size at which the exact index becomes IVF\n"
    "                         (default 20000; 0 keeps it exact)\n"
    "  --nprobe N             IVF lists searched per query (default lists/16, at least 8)\n"
    "  --max-neighbors N      keep each snapshot item's N heaviest neighbours (default 0: all)\n"
    "  --threads N            gRPC worker threads for unary calls (default 4)\n"
    "  --stream-threads N     workers for Shop streams: at most N run at once (default 4)\n"
    "  --tls-cert FILE        PEM certificate chain: serve gRPC over TLS (with --tls-key)\n"
    "  --tls-key FILE         PEM private key of --tls-cert; both are read again on SIGHUP\n"
    "  --tls-client-ca FILE   require client certificates that chain to this PEM CA (mTLS)\n"
    "  --insecure[=true]      serve plaintext gRPC (only when asked for: it says so at start)\n"
    "  --tokens-file FILE     bearer tokens, a line each: ROLE SHA256-HEX (roles app, admin)\n"
    "  --scorer FILE          surfaces' budgets, weights, MMR and caps ('aisle-scorer 1' file,\n"
    "                         read again when it changes; default: AISLE_SCORER's file)\n"
    "  --rules FILE           pinned and boosted items per surface ('aisle-rules 1' file,\n"
    "                         read again when it changes)\n"
    "  --catalog-topic NAME   catalog topic (default aisle.catalog)\n"
    CLI_PROFILE_USAGE
    "  --grace-ms MS          time in-flight calls get at shutdown (default 10000)\n"
    "  --model PATH           language model (llama2.c or GGUF) that writes Shop answers;\n"
    "                         without it a deterministic composer writes them\n"
    "  --tokenizer PATH       llama2.c tokenizer.bin for --model (a GGUF model may carry its own)\n"
    "  --model-threads N      threads per model step (default 1)\n"
    "  --kafka-opt KEY=VALUE  a librdkafka setting for every client (catalog and control\n"
    "                         readers, exposure log), e.g. security.protocol=ssl (repeatable)\n"
    "  --exposure-queue N     served pages waiting for Kafka at most; past it they are\n"
    "                         dropped and counted, never waited for (default 65536)\n"
    "  --ranker-model FILE    score with this learned ranker ('aisle rank train'), reloaded\n"
    "                         when the file changes (a refused file keeps the one in use);\n"
    "                         a variant's ranker.model_file wins, 'none' means hand weights\n"
    "  --chat-template NAME   chatml, llama3, zephyr, mistral, gemma or phi3 (default: the\n"
    "                         GGUF file's own; llama2.c files take plain prompts)\n"
    "  --ingest-group NAME    the ingest consumer group whose lag /metrics and the console\n"
    "                         report (default aisle-ingest; \"\" reports none)\n"
    "  --signal-topic NAME    its signal topic (default aisle.signals)\n"
    MAIN_HTTP_USAGE("9464", ", the console at /console")
    MAIN_LOG_USAGE
    "  -h, --help             show this help\n";

/* serve's flags into cfg and the model settings. Returns 0 to run, or the
 * exit code (help printed, or a usage error). */
enum { MAIN_MAX_KAFKA_OPTS = 64 };

/* serve's --kafka-opt settings, for every Kafka client it makes. */
static const char *main_serve_kafka_opts[MAIN_MAX_KAFKA_OPTS];
static size_t main_serve_n_kafka_opts;

static int main_serve_flags(int argc, char **argv, runtime_config *cfg, const char **model,
                            const char **tok, const char **chat_template,
                            long long *model_threads, long long *grace, const char **http,
                            ingest_config *watch) {
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},      {"kafka-brokers", required_argument, 0, 'k'},
        {"redis", required_argument, 0, 'r'},       {"dim", required_argument, 0, 'd'},
        {"threads", required_argument, 0, 't'},     {"catalog-topic", required_argument, 0, 'c'},
        {"grace-ms", required_argument, 0, 'g'},    CLI_PROFILE_OPTIONS,
        {"log-level", required_argument, 0, 'L'},   {"help", no_argument, 0, 'h'},
        {"ivf-threshold", required_argument, 0, 'I'}, {"nprobe", required_argument, 0, 'P'},
        {"snapshots", required_argument, 0, 'S'},
        {"model", required_argument, 0, 'm'},       {"tokenizer", required_argument, 0, 'T'},
        {"model-threads", required_argument, 0, 'M'},
        {"tls-cert", required_argument, 0, 1100},   {"tls-key", required_argument, 0, 1101},
        {"tls-client-ca", required_argument, 0, 1102}, {"insecure", optional_argument, 0, 1103},
        {"tokens-file", required_argument, 0, 1104}, {"stream-threads", required_argument, 0, 1105},
        {"chat-template", required_argument, 0, 1106}, {"kafka-opt", required_argument, 0, 1107},
        {"exposure-queue", required_argument, 0, 1108},
        {"ranker-model", required_argument, 0, 1109},
        {"http-listen", required_argument, 0, 'H'}, {"log-format", required_argument, 0, 'F'},
        {"ingest-group", required_argument, 0, 1120}, {"signal-topic", required_argument, 0, 1121},
        {"scorer", required_argument, 0, 1110},     {"rules", required_argument, 0, 1111},
        {"max-neighbors", required_argument, 0, 1122},
        {0, 0, 0, 0}};
    long long v;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 1120: watch->group = optarg; break;
        case 1121: watch->topic = optarg; break;
        case 'l': cfg->server.listen = optarg; break;
        case 'k': cfg->feed.brokers = optarg; break;
        case 'r': cfg->server.redis = optarg; break;
        case 'S': cfg->feed.snapshot_dir = optarg; break;
        case 'd':
            if (cli_int("serve", "dim", optarg, 1, CATALOG_MAX_DIM, &v)) return CLI_EXIT_USAGE;
            cfg->catalog.dim = (int)v;
            cfg->dim_set = 1;
            break;
        case 'I':
            if (cli_int("serve", "ivf-threshold", optarg, 0, 1000000000, &v))
                return CLI_EXIT_USAGE;
            if (v && v < 1000)
                return cli_usage_error("serve", "--ivf-threshold must be 0 or at least 1000");
            cfg->catalog.ivf_threshold = (size_t)v;
            break;
        case 'P':
            if (cli_int("serve", "nprobe", optarg, 1, 65536, &v)) return CLI_EXIT_USAGE;
            cfg->catalog.nprobe = (int)v;
            break;
        case 1122:
            if (cli_int("serve", "max-neighbors", optarg, 0, 1000000, &v)) return CLI_EXIT_USAGE;
            cfg->catalog.max_neighbours = (size_t)v;
            break;
        case 't':
            if (cli_int("serve", "threads", optarg, 1, 256, &v)) return CLI_EXIT_USAGE;
            cfg->server.threads = (int)v;
            break;
        case 1100: cfg->tls.cert = optarg; break;
        case 1101: cfg->tls.key = optarg; break;
        case 1102: cfg->tls.client_ca = optarg; break;
        case 1103: /* bare, or =true / =false as the configuration file writes it */
            if (optarg && strcmp(optarg, "true") && strcmp(optarg, "false"))
                return cli_usage_error("serve", "--insecure takes true or false");
            cfg->insecure = !optarg || strcmp(optarg, "true") == 0;
            break;
        case 1104: cfg->tokens_file = optarg; break;
        case 1110: cfg->scorer_file = optarg; break;
        case 1111: cfg->rules_file = optarg; break;
        case 1106: *chat_template = optarg; break;
        case 1107:
            if (main_serve_n_kafka_opts == MAIN_MAX_KAFKA_OPTS)
                return cli_usage_error("serve", "at most %d --kafka-opt flags",
                                       MAIN_MAX_KAFKA_OPTS);
            if (!strchr(optarg, '='))
                return cli_usage_error("serve", "--kafka-opt takes KEY=VALUE");
            main_serve_kafka_opts[main_serve_n_kafka_opts++] = optarg;
            break;
        case 1105:
            if (cli_int("serve", "stream-threads", optarg, 1, 256, &v)) return CLI_EXIT_USAGE;
            cfg->server.stream_threads = (int)v;
            break;
        case 1108:
            if (cli_int("serve", "exposure-queue", optarg, 1, 1 << 24, &v)) return CLI_EXIT_USAGE;
            cfg->exposure_queue = (size_t)v;
            break;
        case 1109: cfg->model_file = optarg; break;
        case 'c': cfg->feed.topic = optarg; break;
        case 'g':
            if (cli_int("serve", "grace-ms", optarg, 0, 3600000, grace)) return CLI_EXIT_USAGE;
            break;
        case 'm': *model = optarg; break;
        case 'T': *tok = optarg; break;
        case 'M':
            if (cli_int("serve", "model-threads", optarg, 1, 256, model_threads))
                return CLI_EXIT_USAGE;
            break;
        case 'L':
            if (main_log_level("serve", optarg)) return CLI_EXIT_USAGE;
            break;
        case 'F':
            if (main_log_format("serve", optarg)) return CLI_EXIT_USAGE;
            break;
        case 'H': *http = optarg; break;
        case 'h': fputs(serve_usage, stdout); return CLI_EXIT_HELP;
        default:
            switch (cli_profile_option("serve", c, optarg, &cfg->server.profile)) {
            case 1: break;
            case 0: return cli_usage_error("serve", "unknown or incomplete flag");
            default: return CLI_EXIT_USAGE;
            }
        }
    }
    cli_flags_done();
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!cfg->feed.brokers) return cli_usage_error("serve", "--kafka-brokers is required");
    if (!cfg->server.redis) return cli_usage_error("serve", "--redis is required");
    if (*tok && !*model) return cli_usage_error("serve", "--tokenizer needs --model");
    if (*chat_template && !*model) return cli_usage_error("serve", "--chat-template needs --model");
    return 0;
}

static int main_serve(int argc, char **argv) {
    runtime_config cfg;
    ingest_config watch; /* the ingest group serve reports on */
    shop_engine engine = {0};
    const char *model_path = NULL, *tok_path = NULL, *chat_template = NULL;
    const char *http = "127.0.0.1:9464";
    long long model_threads = 1, grace = 10000;
    runtime *rt = NULL;
    ops *op = NULL;
    atomic_int *stop, *reload;
    char err[512];
    int rc;

    if ((rc = config_apply("serve", &argc, &argv))) return rc;
    runtime_config_default(&cfg);
    ingest_config_default(&watch);
    rc = main_serve_flags(argc, argv, &cfg, &model_path, &tok_path, &chat_template,
                          &model_threads, &grace, &http, &watch);
    if (rc) return rc == CLI_EXIT_HELP ? 0 : rc;
    /* Here, not with the flags: a configuration may leave TLS to the
     * deployment's flags ('config check' of the example passes). */
    if (!cfg.tls.cert && !cfg.insecure)
        return cli_usage_error("serve", "no TLS certificate: give --tls-cert and --tls-key, "
                                        "or --insecure to serve plaintext");
    if (kafka_client_opts_set(main_serve_kafka_opts, main_serve_n_kafka_opts, err,
                              sizeof(err)) != AISLE_OK)
        return cli_usage_error("serve", "%s", err);
    stop = cli_stop_flag();
    reload = cli_reload_flag();
    if (model_path) {
        if (shop_engine_load(model_path, tok_path, (int)model_threads, chat_template, &engine,
                             err, sizeof(err)) != AISLE_OK)
            goto fail;
        cfg.shop.engine = &engine;
        log_info("serve", "Shop answers written by %s", model_path);
    }
    if (runtime_start(&cfg, &rt, err, sizeof(err)) != AISLE_OK) goto fail;
    watch.brokers = cfg.feed.brokers;
    if (ops_start_serve(http, cfg.server.redis, rt, *watch.group ? &watch : NULL, &op, err,
                        sizeof(err)) != AISLE_OK)
        goto fail;
    /* The HTTP line first: a caller waiting for "listening" then has both. */
    printf("aisle serve: http on port %d\n", ops_port(op));
    printf("aisle serve: listening on port %d\n", runtime_port(rt));
    fflush(stdout);
    log_info("serve", "gRPC on %s (port %d), http on %s (port %d), catalog from %s, profiles in %s",
             cfg.server.listen, runtime_port(rt), http, ops_port(op), cfg.feed.topic,
             cfg.server.redis);
    while (!atomic_load(stop)) {
        if (atomic_exchange(reload, 0)) runtime_reload_tls(rt);
        clock_sleep_ms(100);
    }
    log_info("serve", "shutting down: in-flight calls get %lld ms", grace);
    ops_stop(op);
    runtime_stop(rt, (int)grace);
    shop_engine_free(&engine);
    return 0;
fail:
    log_error("serve", "%s", err);
    runtime_stop(rt, 0);
    shop_engine_free(&engine);
    return 1;
}

static const char ingest_usage[] =
    "Usage: aisle ingest --kafka-brokers LIST --redis HOST:PORT [FLAGS]\n"
    "\n"
    "Consumes user signals (topic aisle.signals) as a member of a consumer group and\n"
    "applies each to its user's profile in Redis, exactly once in effect. Messages\n"
    "that fail to parse or validate go to the dead-letter topic with the reason.\n"
    "Run several to share the partitions.\n"
    "\n"
    "  --config FILE          settings from a YAML file ('aisle config example');\n"
    "                         the flags given here override it\n"
    "  --kafka-brokers LIST   Kafka bootstrap servers (required)\n"
    "  --redis HOST:PORT      Redis that holds the profiles (required)\n"
    "  --redis-write HOW      module: the AISLE.APPLY command where Redis loads\n"
    "                         aisle_redis.so, else the Lua script (the default);\n"
    "                         script: the Lua script always\n"
    "  --group NAME           consumer group (default aisle-ingest)\n"
    "  --topic NAME           signal topic (default aisle.signals)\n"
    "  --dlq-topic NAME       dead-letter topic (default aisle.signals.dlq)\n"
    "  --batch N              most messages per batch (default 500)\n"
    "  --catalog-topic NAME   where item categories and brands are learned\n"
    "                         (default aisle.catalog)\n"
    "  --kafka-opt KEY=VALUE  a librdkafka setting for every client (consumer, dead-letter\n"
    "                         producer, catalog reader), e.g. security.protocol=sasl_ssl or\n"
    "                         session.timeout.ms=6000 (repeatable)\n"
    CLI_PROFILE_USAGE
    MAIN_HTTP_USAGE("9465", "")
    MAIN_LOG_USAGE
    "  -h, --help             show this help\n";


/* ingest's flags into cfg (kafka_opts: room for MAIN_MAX_KAFKA_OPTS) and
 * the HTTP address. Returns 0 to run, or the exit code as serve's does. */
static int main_ingest_flags(int argc, char **argv, ingest_config *cfg, const char **kafka_opts,
                             const char **http) {
    static const struct option opts[] = {
        {"kafka-brokers", required_argument, 0, 'k'}, {"redis", required_argument, 0, 'r'},
        {"group", required_argument, 0, 'g'},         {"topic", required_argument, 0, 't'},
        {"dlq-topic", required_argument, 0, 'D'},     {"batch", required_argument, 0, 'b'},
        {"catalog-topic", required_argument, 0, 'c'}, {"kafka-opt", required_argument, 0, 'o'},
        {"log-level", required_argument, 0, 'L'},     {"help", no_argument, 0, 'h'},
        {"http-listen", required_argument, 0, 'H'},   {"log-format", required_argument, 0, 'F'},
        {"redis-write", required_argument, 0, 'W'},   CLI_PROFILE_OPTIONS,
        {0, 0, 0, 0}};
    long long v;
    char err[512];
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': cfg->brokers = optarg; break;
        case 'r': cfg->redis = optarg; break;
        case 'g': cfg->group = optarg; break;
        case 't': cfg->topic = optarg; break;
        case 'D': cfg->dlq_topic = optarg; break;
        case 'b':
            if (cli_int("ingest", "batch", optarg, 1, 100000, &v)) return CLI_EXIT_USAGE;
            cfg->batch_max = (int)v;
            break;
        case 'c': cfg->catalog_topic = optarg; break;
        case 'o':
            if (cfg->n_kafka_opts == MAIN_MAX_KAFKA_OPTS)
                return cli_usage_error("ingest", "at most %d --kafka-opt flags",
                                       MAIN_MAX_KAFKA_OPTS);
            if (ingest_check_kafka_opt(optarg, err, sizeof(err)))
                return cli_usage_error("ingest", "--kafka-opt: %s", err);
            kafka_opts[cfg->n_kafka_opts++] = optarg;
            cfg->kafka_opts = kafka_opts;
            break;
        case 'L':
            if (main_log_level("ingest", optarg)) return CLI_EXIT_USAGE;
            break;
        case 'F':
            if (main_log_format("ingest", optarg)) return CLI_EXIT_USAGE;
            break;
        case 'H': *http = optarg; break;
        case 'W':
            if (strcmp(optarg, "module") && strcmp(optarg, "script"))
                return cli_usage_error("ingest", "--redis-write must be module or script");
            cfg->profile.use_module = strcmp(optarg, "module") == 0;
            break;
        case 'h': fputs(ingest_usage, stdout); return CLI_EXIT_HELP;
        default:
            switch (cli_profile_option("ingest", c, optarg, &cfg->profile)) {
            case 1: break;
            case 0: return cli_usage_error("ingest", "unknown or incomplete flag");
            default: return CLI_EXIT_USAGE;
            }
        }
    }
    cli_flags_done();
    if (optind < argc) return cli_usage_error("ingest", "unexpected argument '%s'", argv[optind]);
    if (!cfg->brokers) return cli_usage_error("ingest", "--kafka-brokers is required");
    if (!cfg->redis) return cli_usage_error("ingest", "--redis is required");
    return 0;
}

static int main_ingest(int argc, char **argv) {
    const char *kafka_opts[MAIN_MAX_KAFKA_OPTS], *http = "127.0.0.1:9465";
    ingest_config cfg;
    ingest_stats stats = {0};
    ops *op = NULL;
    char err[512];
    int rc;

    if ((rc = config_apply("ingest", &argc, &argv))) return rc;
    ingest_config_default(&cfg);
    if ((rc = main_ingest_flags(argc, argv, &cfg, kafka_opts, &http)))
        return rc == CLI_EXIT_HELP ? 0 : rc;
    /* The same settings for the dead-letter producer and the catalog
     * reader as for the consumer (security.protocol, SASL, SSL). */
    if (kafka_client_opts_set(kafka_opts, cfg.n_kafka_opts, err, sizeof(err)) != AISLE_OK)
        return cli_usage_error("ingest", "%s", err);
    if (ops_start_ingest(http, &cfg, &stats, &op, err, sizeof(err)) != AISLE_OK) {
        log_error("ingest", "%s", err);
        return 1;
    }
    printf("aisle ingest: http on port %d\n", ops_port(op));
    fflush(stdout);
    rc = ingest_run(&cfg, &stats, cli_stop_flag(), err, sizeof(err));
    ops_stop(op);
    if (rc != 0) log_error("ingest", "%s", err);
    return rc ? 1 : 0;
}

static const char synth_usage[] =
    "Usage: aisle synth --kafka-brokers LIST [FLAGS]\n"
    "\n"
    "Produces a generated shop to Kafka: catalog items (with embeddings) to\n"
    "aisle.catalog, then shoppers' signals to aisle.signals. The same seed gives\n"
    "the same shop. For demos, load tests and benchmarks.\n"
    "\n"
    "  --kafka-brokers LIST      Kafka bootstrap servers (required)\n"
    "  --items N                 catalog items (default 5000; 0 sends none)\n"
    "  --creators N              creators (default 200)\n"
    "  --users N                 shoppers (default 200)\n"
    "  --signals-per-user N      signals per shopper (default 30; 0 sends none)\n"
    "  --dim N                   embedding length (default 32)\n"
    "  --seed N                  generator seed (default 1)\n"
    "  --tastes FILE             also write each shopper's true tastes to FILE, a line each:\n"
    "                            USER CATEGORY1 CATEGORY2 CREATOR BUDGET_CENTS (simulations)\n"
    "  --config FILE             settings from a YAML file (flags given here override it)\n"
    "  -h, --help                show this help\n";

/* synth's flags into sc, the brokers, the items and the signals per user.
 * Returns 0 to run, or the exit code as serve's does. */
static int main_synth_flags(int argc, char **argv, synth_config *sc, const char **brokers,
                            long long *items, long long *per_user, const char **tastes) {
    static const struct option opts[] = {
        {"kafka-brokers", required_argument, 0, 'k'}, {"items", required_argument, 0, 'i'},
        {"creators", required_argument, 0, 'c'},      {"users", required_argument, 0, 'u'},
        {"signals-per-user", required_argument, 0, 's'}, {"dim", required_argument, 0, 'd'},
        {"seed", required_argument, 0, 'S'},          {"help", no_argument, 0, 'h'},
        {"tastes", required_argument, 0, 'T'},        {0, 0, 0, 0}};
    long long v;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': *brokers = optarg; break;
        case 'i':
            if (cli_int("synth", "items", optarg, 0, 10000000, items)) return CLI_EXIT_USAGE;
            break;
        case 'c':
            if (cli_int("synth", "creators", optarg, 1, 1000000, &v)) return CLI_EXIT_USAGE;
            sc->n_creators = (size_t)v;
            break;
        case 'u':
            if (cli_int("synth", "users", optarg, 0, 10000000, &v)) return CLI_EXIT_USAGE;
            sc->n_users = (size_t)v;
            break;
        case 's':
            if (cli_int("synth", "signals-per-user", optarg, 0, 100000, per_user))
                return CLI_EXIT_USAGE;
            break;
        case 'd':
            if (cli_int("synth", "dim", optarg, 1, CATALOG_MAX_DIM, &v)) return CLI_EXIT_USAGE;
            sc->dim = (int)v;
            break;
        case 'S':
            if (cli_int("synth", "seed", optarg, 0, INT64_MAX, &v)) return CLI_EXIT_USAGE;
            sc->seed = (uint64_t)v;
            break;
        case 'T': *tastes = optarg; break;
        case 'h': fputs(synth_usage, stdout); return CLI_EXIT_HELP;
        default: return cli_usage_error("synth", "unknown or incomplete flag");
        }
    }
    cli_flags_done();
    if (optind < argc) return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!*brokers) return cli_usage_error("synth", "--kafka-brokers is required");
    return 0;
}

/* Writes w's shoppers' tastes to path; 0, or -1 with err set. */
static int main_synth_tastes(const synth_world *w, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "w");
    int rc = f ? synth_write_tastes(w, f) : -1;
    if (f && fclose(f) != 0) rc = -1;
    if (rc) snprintf(err, errlen, "cannot write %s", path);
    return rc;
}

static int main_synth(int argc, char **argv) {
    synth_config sc;
    const char *brokers = NULL, *tastes = NULL;
    long long items = 5000, per_user = 30;
    synth_world *w = NULL;
    rd_kafka_t *rk = NULL;
    char err[512];
    int rc;

    if ((rc = config_apply("synth", &argc, &argv))) return rc;
    synth_config_default(&sc);
    if ((rc = main_synth_flags(argc, argv, &sc, &brokers, &items, &per_user, &tastes)))
        return rc == CLI_EXIT_HELP ? 0 : rc;
    rc = 1;
    /* The world always has items for signals to point at. */
    sc.n_items = items ? (size_t)items : 5000;
    if (synth_world_new(&sc, &w, err, sizeof(err)) ||
        !(rk = kafka_producer_new(brokers, err, sizeof(err))) ||
        demo_produce_catalog(rk, w, (size_t)items, err, sizeof(err)) ||
        demo_produce_signals(rk, w, (size_t)per_user, sc.seed, err, sizeof(err)) ||
        (tastes && main_synth_tastes(w, tastes, err, sizeof(err))))
        goto out;
    printf("produced %lld catalog items and %lld signals\n", items,
           per_user * (long long)sc.n_users);
    rc = 0;
out:
    if (rc) log_error("synth", "%s", err);
    if (rk) rd_kafka_destroy(rk);
    synth_world_free(w);
    return rc;
}

static const char config_usage[] =
    "Usage: aisle config check FILE\n"
    "       aisle config example\n"
    "\n"
    "  check FILE   validate FILE for serve, ingest, ctl, synth and demo and print the effective\n"
    "               configuration (each value, and whether the file or the default set\n"
    "               it); an error names the file, the line and the reason; exit 0 when\n"
    "               valid, 1 when not\n"
    "  example      print a commented file with every setting and its default\n";

/* Runs cmd's own flag parser over what c gives it. Returns 0 when valid. */
static int main_config_check_one(const config *c, const char *cmd) {
    const char *kafka_opts[MAIN_MAX_KAFKA_OPTS], *http = NULL, *model = NULL, *tok = NULL;
    const char **origins, *brokers = NULL, *chat_template = NULL, *tastes = NULL;
    long long model_threads, grace, items, per_user;
    synth_config scfg;
    runtime_config rcfg;
    ingest_config icfg;
    char **argv;
    int argc, rc;

    if (config_argv(c, cmd, &argc, &argv, &origins) != AISLE_OK) return 1;
    cli_set_origins(origins, argc);
    optind = 0; /* a fresh scan for each command */
    runtime_config_default(&rcfg);
    ingest_config_default(&icfg);
    synth_config_default(&scfg);
    if (strcmp(cmd, "serve") == 0)
        rc = main_serve_flags(argc, argv, &rcfg, &model, &tok, &chat_template, &model_threads,
                              &grace, &http, &icfg);
    else if (strcmp(cmd, "ingest") == 0)
        rc = main_ingest_flags(argc, argv, &icfg, kafka_opts, &http);
    else if (strcmp(cmd, "synth") == 0)
        rc = main_synth_flags(argc, argv, &scfg, &brokers, &items, &per_user, &tastes);
    else if (strcmp(cmd, "demo") == 0)
        rc = demo_check_flags(argc, argv);
    else
        rc = ctl_check_flags(argc, argv);
    cli_flags_done();
    return rc;
}

static int main_config(int argc, char **argv) {
    static const char *const cmds[] = {"serve", "ingest", "ctl", "synth", "demo"};
    config *c;
    char err[1024];
    int bad = 0;

    if (argc == 2 && strcmp(argv[1], "example") == 0) {
        config_print_example(stdout);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(config_usage, stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check"))
        return cli_usage_error("config", "the commands are 'check FILE' and 'example'");
    if (config_load(argv[2], &c, err, sizeof(err)) != AISLE_OK) {
        fprintf(stderr, "aisle config: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (main_config_check_one(c, cmds[i])) {
            fprintf(stderr, "aisle config: %s is not a valid configuration for '%s'\n", argv[2],
                    cmds[i]);
            bad = 1;
        }
    if (!bad) config_print_effective(c, stdout);
    config_free(c);
    return bad;
}

/* `aisle embed train|eval` and `aisle model convert`: argv[0] is the group
 * name; the module's entry point wants its own subcommand first. Train
 * chooses the snapshot's serving probe count through the server's path. */
static int main_embed(int argc, char **argv) {
    return embed_cli_main_probed(argc - 1, argv + 1, serveprobe_choose);
}

static int main_model(int argc, char **argv) { return model_cli_model(argc, argv); }

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        {"serve", main_serve},   {"ingest", main_ingest},         {"demo", demo_main},
        {"synth", main_synth},   {"kafka-mock", mockctl_main},
        {"embed", main_embed},   {"generate", model_cli_generate},
        {"model", main_model},   {"ctl", ctl_main},
        {"config", main_config}, {"report", report_main},
        {"exp", expctl_main},    {"rank", rank_main},
    };
    blascore_fix(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aisle: unknown command '%s'\n\n%s", argv[1], main_usage);
    return CLI_EXIT_USAGE;
}
