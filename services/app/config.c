/* config: the key table, the YAML walk, and the file turned into flags. */
#include "services/app/config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "services/app/cli.h"
#include "services/base/buf.h"
#include "services/base/status.h"

enum { CONFIG_SERVE = 1, CONFIG_INGEST = 2, CONFIG_CTL = 4, CONFIG_SYNTH = 8, CONFIG_DEMO = 16 };

/* One key of the file: the flag it stands for in each command it applies
 * to. def is the flag's default as the command has it (the example shows
 * it); a key without one (a path, a size a snapshot may set) is shown
 * commented out with sample. list: a sequence, one flag per element. */
typedef struct config_key {
    const char *key;
    unsigned cmds;
    const char *flag;
    const char *def;
    const char *sample;
    int list;
    const char *help;
} config_key;

#define SI (CONFIG_SERVE | CONFIG_INGEST)
static const config_key config_keys[] = {
    {"kafka.brokers", SI | CONFIG_CTL | CONFIG_SYNTH, "kafka-brokers", "localhost:9092", NULL, 0,
     "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...] (required)"},
    {"redis.address", SI, "redis", "localhost:6379", NULL, 0,
     "Redis with the profiles: a standalone server or any node of a Redis Cluster (required)"},
    {"profile.half_life_s", SI, "half-life-s", "604800", NULL, 0,
     "decay half-life of profile weights, seconds (give serve and ingest the same profile)"},
    {"profile.max_items", SI, "max-items", "500", NULL, 0, "profile items kept per user"},
    {"profile.kind_weights", SI, "kind-weights",
     "view=1,click=2,add_to_cart=4,purchase=8,like=3,follow_creator=5,dismiss=4", NULL, 0,
     "weight of each signal kind"},
    {"profile.ttl_days", SI, "profile-ttl-days", "0", NULL, 0,
     "forget users inactive this many days (0: never)"},
    {"log.level", SI | CONFIG_DEMO, "log-level", "info", NULL, 0,
     "debug, info, warn or error (the demo's own default is warn)"},
    {"log.format", SI, "log-format", "json", NULL, 0,
     "json (one object per line) or text (for a terminal)"},
    {"serve.listen", CONFIG_SERVE, "listen", "127.0.0.1:50051", NULL, 0,
     "gRPC address; port 0 picks a free one"},
    {"serve.http.listen", CONFIG_SERVE, "http-listen", "127.0.0.1:9464", NULL, 0,
     "/metrics, /healthz and /readyz; port 0 picks a free one"},
    {"serve.threads", CONFIG_SERVE, "threads", "4", NULL, 0, "gRPC worker threads for unary calls"},
    {"serve.kafka_options", CONFIG_SERVE, "kafka-opt", NULL, "security.protocol=ssl", 1,
     "librdkafka settings KEY=VALUE for every client serve makes (secrets come from the "
     "environment)"},
    {"serve.ranker.model_file", CONFIG_SERVE, "ranker-model", NULL,
     "/var/lib/aisle/models/ltr.model", 0,
     "learned ranker ('aisle rank train') to score with, reloaded when it changes; unset: the "
     "hand weights (an experiment's ranker.model_file overrides it)"},
    {"serve.exposure_queue", CONFIG_SERVE, "exposure-queue", "65536", NULL, 0,
     "served pages waiting for the exposure log's Kafka producer at most (more are dropped "
     "and counted in aisle_exposures_total)"},
    {"serve.stream_threads", CONFIG_SERVE, "stream-threads", "4", NULL, 0,
     "workers for Shop streams: at most this many run at once"},
    {"serve.tls.cert", CONFIG_SERVE, "tls-cert", NULL, "/etc/aisle-tls/tls.crt", 0,
     "PEM certificate chain: gRPC over TLS (re-read on SIGHUP)"},
    {"serve.tls.key", CONFIG_SERVE, "tls-key", NULL, "/etc/aisle-tls/tls.key", 0,
     "PEM private key of the certificate"},
    {"serve.tls.client_ca", CONFIG_SERVE, "tls-client-ca", NULL, "/etc/aisle-tls/ca.crt", 0,
     "require client certificates that chain to this PEM CA (mTLS)"},
    {"serve.insecure", CONFIG_SERVE, "insecure", "false", NULL, 0,
     "true: serve plaintext gRPC without a certificate (a trusted network only)"},
    {"serve.tokens_file", CONFIG_SERVE, "tokens-file", NULL, "/etc/aisle-tokens/tokens", 0,
     "bearer tokens, a line each: ROLE SHA256-HEX (roles app, admin); unset: no access control"},
    {"serve.scorer_file", CONFIG_SERVE, "scorer", NULL, "/etc/aisle/scorer.txt", 0,
     "surfaces' source budgets, feature weights, MMR and caps ('aisle-scorer 1', ranker/scorer.h),"
     " read again when it changes (unset: the AISLE_SCORER file, else the built-in ones)"},
    {"serve.rules_file", CONFIG_SERVE, "rules", NULL, "/etc/aisle/rules.txt", 0,
     "pinned and boosted items per surface ('aisle-rules 1', ranker/rules.h), read again when "
     "it changes; refused with its line"},
    {"serve.chat_template", CONFIG_SERVE, "chat-template", NULL, "chatml", 0,
     "chat template of the model: chatml, llama3, zephyr, mistral, gemma, phi3 (default: the "
     "GGUF file's own)"},
    {"serve.grace_ms", CONFIG_SERVE, "grace-ms", "10000", NULL, 0,
     "time in-flight calls get at shutdown, milliseconds"},
    {"serve.catalog_topic", CONFIG_SERVE, "catalog-topic", "aisle.catalog", NULL, 0,
     "catalog topic, read whole by every replica"},
    {"serve.ingest_group", CONFIG_SERVE, "ingest-group", "aisle-ingest", NULL, 0,
     "the ingest consumer group whose lag /metrics and the console report (\"\": none)"},
    {"serve.signal_topic", CONFIG_SERVE, "signal-topic", "aisle.signals", NULL, 0,
     "that group's signal topic"},
    {"serve.dim", CONFIG_SERVE, "dim", NULL, "32", 0,
     "embedding length of catalog items (default 32; a snapshot sets it when unset)"},
    {"serve.snapshots", CONFIG_SERVE, "snapshots", NULL, "/var/lib/aisle/snapshots", 0,
     "directory of embedding snapshots: the newest valid one is served, and reloaded on "
     "'aisle ctl index reload'"},
    {"serve.ivf_threshold", CONFIG_SERVE, "ivf-threshold", "20000", NULL, 0,
     "catalog size at which the exact index becomes IVF (0 keeps it exact)"},
    {"serve.nprobe", CONFIG_SERVE, "nprobe", NULL, "16", 0,
     "IVF lists searched per query (default lists/16, at least 8)"},
    {"serve.max_neighbors", CONFIG_SERVE, "max-neighbors", "0", NULL, 0,
     "entries kept of each snapshot item's neighbour list, the heaviest (0: all)"},
    {"serve.model", CONFIG_SERVE, "model", NULL, "/var/lib/aisle/models/shop.gguf", 0,
     "language model (llama2.c or GGUF) that writes Shop answers; unset: the composer"},
    {"serve.tokenizer", CONFIG_SERVE, "tokenizer", NULL, "/var/lib/aisle/models/tokenizer.bin",
     0, "llama2.c tokenizer.bin for the model (a GGUF model may carry its own)"},
    {"serve.model_threads", CONFIG_SERVE, "model-threads", "1", NULL, 0,
     "threads per model step"},
    {"ingest.http.listen", CONFIG_INGEST, "http-listen", "127.0.0.1:9465", NULL, 0,
     "/metrics, /healthz and /readyz; port 0 picks a free one"},
    {"ingest.redis_write", CONFIG_INGEST, "redis-write", "module", NULL, 0,
     "module: AISLE.APPLY where Redis loads aisle_redis.so, else the Lua script; script: the "
     "script always (managed Redis without modules)"},
    {"ingest.group", CONFIG_INGEST, "group", "aisle-ingest", NULL, 0, "consumer group"},
    {"ingest.topic", CONFIG_INGEST, "topic", "aisle.signals", NULL, 0, "signal topic"},
    {"ingest.dlq_topic", CONFIG_INGEST, "dlq-topic", "aisle.signals.dlq", NULL, 0,
     "dead-letter topic"},
    {"ingest.catalog_topic", CONFIG_INGEST, "catalog-topic", "aisle.catalog", NULL, 0,
     "where item categories and brands are learned"},
    {"ingest.batch", CONFIG_INGEST, "batch", "500", NULL, 0, "most messages per batch"},
    {"ingest.kafka_options", CONFIG_INGEST, "kafka-opt", NULL, "session.timeout.ms=6000", 1,
     "librdkafka settings KEY=VALUE for every client ingest makes (secrets come from the "
     "environment)"},
    {"ctl.server", CONFIG_CTL, "server", "127.0.0.1:50051", NULL, 0,
     "the serve replica ctl's gRPC commands talk to"},
    {"ctl.http", CONFIG_CTL, "http", "127.0.0.1:9464", NULL, 0,
     "that replica's HTTP address, for index status and catalog get"},
    {"ctl.timeout_ms", CONFIG_CTL, "timeout-ms", "10000", NULL, 0, "deadline of each call"},
    {"ctl.tls.ca", CONFIG_CTL, "tls-ca", NULL, "/etc/aisle-tls/ca.crt", 0,
     "PEM roots serve's certificate must chain to: gRPC over TLS (unset: plaintext)"},
    {"ctl.tls.cert", CONFIG_CTL, "tls-cert", NULL, "/etc/aisle-tls/client.crt", 0,
     "PEM client certificate, for a serve that requires one (mTLS)"},
    {"ctl.tls.key", CONFIG_CTL, "tls-key", NULL, "/etc/aisle-tls/client.key", 0,
     "PEM private key of the client certificate"},
    {"ctl.tls.server_name", CONFIG_CTL, "tls-server-name", NULL, "aisle-serve", 0,
     "name serve's certificate carries, when it is not ctl.server's host"},
    {"ctl.kafka_options", CONFIG_CTL, "kafka-opt", NULL, "security.protocol=ssl", 1,
     "librdkafka settings KEY=VALUE for ctl's Kafka clients (secrets come from the "
     "environment)"},
    {"ctl.control_topic", CONFIG_CTL, "control-topic", "aisle.control", NULL, 0,
     "control topic that every serve replica reads"},
    {"ctl.signal_topic", CONFIG_CTL, "signal-topic", "aisle.signals", NULL, 0,
     "where 'ctl track' sends signals"},
    {"synth.items", CONFIG_SYNTH, "items", "5000", NULL, 0, "catalog items produced (0: none)"},
    {"synth.creators", CONFIG_SYNTH, "creators", "200", NULL, 0, "creators of the generated shop"},
    {"synth.users", CONFIG_SYNTH, "users", "200", NULL, 0, "shoppers"},
    {"synth.signals_per_user", CONFIG_SYNTH, "signals-per-user", "30", NULL, 0,
     "signals produced per shopper (0: none)"},
    {"synth.dim", CONFIG_SYNTH, "dim", "32", NULL, 0, "embedding length"},
    {"synth.seed", CONFIG_SYNTH, "seed", "1", NULL, 0, "generator seed: the same seed, the same shop"},
    {"demo.listen", CONFIG_DEMO, "listen", "127.0.0.1:50051", NULL, 0, "the demo's gRPC address"},
    {"demo.http.listen", CONFIG_DEMO, "http-listen", "127.0.0.1:9464", NULL, 0,
     "the demo's metrics and console"},
    {"demo.items", CONFIG_DEMO, "items", "5000", NULL, 0, "catalog items"},
    {"demo.users", CONFIG_DEMO, "users", "200", NULL, 0, "shoppers"},
    {"demo.signals_per_user", CONFIG_DEMO, "signals-per-user", "30", NULL, 0,
     "signals per shopper"},
    {"demo.dim", CONFIG_DEMO, "dim", "32", NULL, 0, "embedding length"},
    {"demo.seed", CONFIG_DEMO, "seed", "1", NULL, 0, "generator seed"},
};
#undef SI
enum { CONFIG_N_KEYS = sizeof(config_keys) / sizeof(config_keys[0]) };

static const struct {
    const char *name;
    unsigned bit;
} config_cmds[] = {{"serve", CONFIG_SERVE}, {"ingest", CONFIG_INGEST}, {"ctl", CONFIG_CTL},
                   {"synth", CONFIG_SYNTH}, {"demo", CONFIG_DEMO}};

/* A value the file gave, in file order. */
typedef struct config_entry {
    const config_key *key;
    char *value;
    int line; /* 1-based */
} config_entry;

struct config {
    char *path;
    config_entry *entries;
    size_t n, cap;
    /* What config_argv handed out (strings, arrays), freed with the config. */
    void **allocs;
    size_t n_allocs, cap_allocs;
};

static const config_key *config_find(const char *key) {
    for (size_t i = 0; i < CONFIG_N_KEYS; i++)
        if (strcmp(config_keys[i].key, key) == 0) return &config_keys[i];
    return NULL;
}

/* Whether key is a section some keys live under ("serve", "serve.http"). */
static int config_is_section(const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < CONFIG_N_KEYS; i++)
        if (strncmp(config_keys[i].key, key, n) == 0 && config_keys[i].key[n] == '.') return 1;
    return 0;
}

/* A librdkafka setting that holds a secret. */
static int config_is_secret(const char *s) {
    return strstr(s, "password") || strstr(s, "secret");
}

static int config_add(config *c, const config_key *k, const char *value, int line) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        config_entry *p = realloc(c->entries, cap * sizeof(*p));
        if (!p) return AISLE_ENOMEM;
        c->entries = p;
        c->cap = cap;
    }
    if (!(c->entries[c->n].value = strdup(value))) return AISLE_ENOMEM;
    c->entries[c->n].key = k;
    c->entries[c->n++].line = line;
    return AISLE_OK;
}

static int config_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

/* A scalar for key k at node v (a list element when in_list). */
static int config_scalar(config *c, const config_key *k, const char *key, yaml_node_t *v,
                         int in_list, char *err, size_t errlen) {
    const char *s = (const char *)v->data.scalar.value;
    if (v->type != YAML_SCALAR_NODE)
        return status_fail(AISLE_EINVAL, err, errlen, "%s:%d: %s wants %s, not a %s", c->path,
                           config_line(v), key, in_list ? "a KEY=VALUE string" : "one value",
                           v->type == YAML_MAPPING_NODE ? "mapping" : "list");
    if (!*s && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "%s:%d: %s has no value (give one or remove the line)", c->path,
                           config_line(v), key);
    if (k->list && config_is_secret(s))
        return status_fail(AISLE_EINVAL, err, errlen,
                           "%s:%d: %s: secrets do not belong in the file; set %s and %s in the "
                           "environment",
                           c->path, config_line(v), key, CONFIG_ENV_SASL_USERNAME,
                           CONFIG_ENV_SASL_PASSWORD);
    if (config_add(c, k, s, config_line(v)) != AISLE_OK)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

/* The value of key k at node v: a scalar, or a list of them. */
static int config_value(config *c, yaml_document_t *doc, const config_key *k, const char *key,
                        yaml_node_t *v, char *err, size_t errlen) {
    int rc;
    if (v->type != YAML_SEQUENCE_NODE || !k->list)
        return config_scalar(c, k, key, v, 0, err, errlen);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++)
        if ((rc = config_scalar(c, k, key, yaml_document_get_node(doc, *it), 1, err, errlen)))
            return rc;
    return AISLE_OK;
}

/* The mapping at node m, whose keys live under prefix ("" at the root). */
static int config_walk(config *c, yaml_document_t *doc, yaml_node_t *m, const char *prefix,
                       char *err, size_t errlen) {
    char key[256];
    int rc;
    /* A section whose keys are all commented out ("tls:" alone) is empty. */
    if (*prefix && m->type == YAML_SCALAR_NODE && m->data.scalar.length == 0) return AISLE_OK;
    if (m->type != YAML_MAPPING_NODE)
        return status_fail(AISLE_EINVAL, err, errlen, "%s:%d: %s should be a mapping of keys",
                           c->path, config_line(m), *prefix ? prefix : "the file");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const config_key *k;
        if (kn->type != YAML_SCALAR_NODE)
            return status_fail(AISLE_EINVAL, err, errlen, "%s:%d: a key must be a plain word",
                               c->path, config_line(kn));
        snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *)kn->data.scalar.value);
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++)
            if (strcmp((const char *)yaml_document_get_node(doc, q->key)->data.scalar.value,
                       (const char *)kn->data.scalar.value) == 0)
                return status_fail(AISLE_EINVAL, err, errlen, "%s:%d: %s is given twice",
                                   c->path, config_line(kn), key);
        if ((k = config_find(key)))
            rc = config_value(c, doc, k, key, vn, err, errlen);
        else if (config_is_section(key))
            rc = config_walk(c, doc, vn, key, err, errlen);
        else if (config_is_secret(key))
            rc = status_fail(AISLE_EINVAL, err, errlen,
                             "%s:%d: %s: secrets do not belong in the file; set %s and %s in "
                             "the environment",
                             c->path, config_line(kn), key, CONFIG_ENV_SASL_USERNAME,
                             CONFIG_ENV_SASL_PASSWORD);
        else
            rc = status_fail(AISLE_EINVAL, err, errlen,
                             "%s:%d: unknown key %s ('aisle config example' lists them all)",
                             c->path, config_line(kn), key);
        if (rc) return rc;
    }
    return AISLE_OK;
}

/* Parses the open file f into c. */
static int config_parse(config *c, FILE *f, char *err, size_t errlen) {
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    int rc = AISLE_OK;

    if (!yaml_parser_initialize(&parser)) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: not YAML: %s%s%s", c->path,
                         (int)parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "syntax error",
                         parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    /* An empty file is a valid file that sets nothing. */
    if ((root = yaml_document_get_root_node(&doc))) rc = config_walk(c, &doc, root, "", err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int config_load(const char *path, config **out, char *err, size_t errlen) {
    config *c = calloc(1, sizeof(*c));
    FILE *f = NULL;
    int rc;

    *out = NULL;
    if (!c || !(c->path = strdup(path))) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    if (!(f = fopen(path, "r"))) {
        rc = status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = config_parse(c, f, err, errlen)) != AISLE_OK) goto fail;
    fclose(f);
    *out = c;
    return AISLE_OK;
fail:
    if (f) fclose(f);
    config_free(c);
    return rc;
}

void config_free(config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->entries[i].value);
    for (size_t i = 0; i < c->n_allocs; i++) free(c->allocs[i]);
    free(c->entries);
    free(c->allocs);
    free(c->path);
    free(c);
}

/* Keeps p (owned) for the config's lifetime and returns it; NULL when p
 * is NULL or the list cannot grow (p is freed). */
static void *config_keep(config *c, void *p) {
    if (p && c->n_allocs == c->cap_allocs) {
        size_t cap = c->cap_allocs ? 2 * c->cap_allocs : 32;
        void **q = realloc(c->allocs, cap * sizeof(*q));
        if (!q) {
            free(p);
            return NULL;
        }
        c->allocs = q;
        c->cap_allocs = cap;
    }
    if (p) c->allocs[c->n_allocs++] = p;
    return p;
}

static char *config_printf(config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *config_printf(config *c, const char *fmt, ...) {
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return config_keep(c, s);
}

static unsigned config_cmd_bit(const char *cmd) {
    for (size_t i = 0; i < sizeof(config_cmds) / sizeof(config_cmds[0]); i++)
        if (strcmp(cmd, config_cmds[i].name) == 0) return config_cmds[i].bit;
    return 0;
}

/* The flags for cmd from the file and from the environment's secrets,
 * with their origins, into argv/origins (room for c->n + 2 more). */
static int config_flags(config *c, unsigned bit, char **argv, const char **origins, int *n) {
    static const struct {
        const char *env, *opt;
    } secrets[] = {{CONFIG_ENV_SASL_USERNAME, "sasl.username"},
                   {CONFIG_ENV_SASL_PASSWORD, "sasl.password"}};
    for (size_t i = 0; i < c->n; i++) {
        const config_entry *e = &c->entries[i];
        if (!(e->key->cmds & bit)) continue;
        argv[*n] = config_printf(c, "--%s=%s", e->key->flag, e->value);
        origins[*n] = config_printf(c, "%s:%d: %s", c->path, e->line, e->key->key);
        if (!argv[*n] || !origins[(*n)++]) return AISLE_ENOMEM;
    }
    for (size_t i = 0; bit == CONFIG_INGEST && i < 2; i++) {
        const char *v = getenv(secrets[i].env);
        if (!v) continue;
        argv[*n] = config_printf(c, "--kafka-opt=%s=%s", secrets[i].opt, v);
        origins[(*n)++] = secrets[i].env;
        if (!argv[*n - 1]) return AISLE_ENOMEM;
    }
    return AISLE_OK;
}

/* argv[0], the flags of c (may be an empty config) for cmd, then rest. */
static int config_build(config *c, const char *cmd, char *argv0, int n_rest, char **rest,
                        int *argc, char ***argv, const char ***origins) {
    size_t room = 1 + c->n + 2 + (size_t)n_rest + 1; /* argv0, file, secrets, rest, NULL */
    char **av = config_keep(c, calloc(room, sizeof(char *)));
    const char **org = config_keep(c, calloc(room, sizeof(char *)));
    int n = 0;
    if (!av || !org) return AISLE_ENOMEM;
    av[n++] = argv0;
    if (config_flags(c, config_cmd_bit(cmd), av, org, &n) != AISLE_OK) return AISLE_ENOMEM;
    for (int i = 0; i < n_rest; i++) av[n++] = rest[i];
    av[n] = NULL;
    *argc = n;
    *argv = av;
    *origins = org;
    return AISLE_OK;
}

int config_argv(const config *c, const char *cmd, int *argc, char ***argv,
                const char ***origins) {
    static char name[] = "aisle";
    /* Handing out strings the config keeps is not a change of its settings. */
    return config_build((config *)c, cmd, name, 0, NULL, argc, argv, origins);
}

/* The FILE of --config FILE or --config=FILE in argv, removed from it. */
static const char *config_take_flag(int *argc, char **argv) {
    for (int i = 1; i < *argc; i++) {
        const char *path = NULL;
        int used = 0;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < *argc) {
            path = argv[i + 1];
            used = 2;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
            used = 1;
        } else if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (used) {
            memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof(char *));
            *argc -= used;
            return path;
        }
    }
    return NULL;
}

int config_apply(const char *cmd, int *argc, char ***argv) {
    /* Lives as long as the process: the parsed settings point into it. */
    static config *applied;
    static config empty;
    const char *path = config_take_flag(argc, *argv), **origins;
    char err[1024];
    config *c = &empty;

    if (path) {
        if (config_load(path, &applied, err, sizeof(err)) != AISLE_OK) {
            fprintf(stderr, "aisle %s: %s\n", cmd, err);
            return CLI_EXIT_USAGE;
        }
        c = applied;
    }
    if (config_build(c, cmd, (*argv)[0], *argc - 1, *argv + 1, argc, argv, &origins) !=
        AISLE_OK) {
        fprintf(stderr, "aisle %s: out of memory\n", cmd);
        return 1;
    }
    cli_set_origins(origins, *argc);
    return 0;
}

/* Prints the section headers between the key before (NULL at the start)
 * and key, YAML-indented; returns the indentation of key's leaf. */
static int config_sections(FILE *out, const char *before, const char *key) {
    size_t common = 0, i = 0;
    int depth = 0;
    /* Sections shared with the previous key are open already. */
    while (before && before[i] && before[i] == key[i]) {
        if (key[i] == '.') common = i + 1;
        i++;
    }
    for (i = 0; key[i]; i++) {
        if (key[i] != '.') continue;
        if (i >= common) {
            size_t start = i;
            while (start > 0 && key[start - 1] != '.') start--;
            fprintf(out, "%s%*s%.*s:\n", depth == 0 ? "\n" : "", 2 * depth, "",
                    (int)(i - start), key + start);
        }
        depth++;
    }
    return 2 * depth;
}

static const char *config_leaf(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

void config_print_example(FILE *out) {
    fputs("# Aisle configuration: every setting of aisle serve, ingest, ctl, synth and\n"
          "# demo, with its default. Flags given on the command line override the file.\n"
          "# Secrets never go here: AISLE_KAFKA_SASL_USERNAME, AISLE_KAFKA_SASL_PASSWORD and\n"
          "# AISLE_PAGE_SECRET (the page-token key) come from the environment. Use with\n"
          "# 'aisle serve --config FILE'; check a file with 'aisle config check FILE'.\n",
          out);
    for (size_t i = 0; i < CONFIG_N_KEYS; i++) {
        const config_key *k = &config_keys[i];
        int ind = config_sections(out, i ? config_keys[i - 1].key : NULL, k->key);
        fprintf(out, "%*s# %s [--%s]\n", ind, "", k->help, k->flag);
        if (k->list)
            fprintf(out, "%*s# %s:\n%*s#   - %s\n", ind, "", config_leaf(k->key), ind, "",
                    k->sample);
        else if (k->def)
            fprintf(out, "%*s%s: %s\n", ind, "", config_leaf(k->key), k->def);
        else
            fprintf(out, "%*s# %s: %s\n", ind, "", config_leaf(k->key), k->sample);
    }
}

void config_print_effective(const config *c, FILE *out) {
    fprintf(out, "# effective configuration of %s\n", c->path);
    for (size_t i = 0; i < CONFIG_N_KEYS; i++) {
        const config_key *k = &config_keys[i];
        int ind = config_sections(out, i ? config_keys[i - 1].key : NULL, k->key);
        const config_entry *last = NULL;
        if (k->list) fprintf(out, "%*s%s:\n", ind, "", config_leaf(k->key));
        for (size_t j = 0; j < c->n; j++) {
            if (c->entries[j].key != k) continue;
            last = &c->entries[j];
            if (k->list) fprintf(out, "%*s  - %s  # line %d\n", ind, "", last->value, last->line);
        }
        if (k->list && !last)
            fprintf(out, "%*s  []  # none\n", ind, "");
        else if (last && !k->list)
            fprintf(out, "%*s%s: %s  # line %d\n", ind, "", config_leaf(k->key), last->value,
                    last->line);
        else if (!k->list)
            fprintf(out, "%*s%s%s: %s  # %s\n", ind, "", k->def ? "" : "# ",
                    config_leaf(k->key), k->def ? k->def : k->sample,
                    k->def ? "default" : "not set");
    }
    fprintf(out, "\n# secrets from the environment (never shown):\n# %s: %s\n# %s: %s\n",
            CONFIG_ENV_SASL_USERNAME, getenv(CONFIG_ENV_SASL_USERNAME) ? "set" : "not set",
            CONFIG_ENV_SASL_PASSWORD, getenv(CONFIG_ENV_SASL_PASSWORD) ? "set" : "not set");
}
