/* kafka: shared librdkafka set-up and the embedded mock cluster. */
#include "services/kafka/kafka.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/log.h"

struct kafka_mock {
    rd_kafka_t *rk; /* the handle that hosts the cluster */
    rd_kafka_mock_cluster_t *cluster;
};

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                      const char *buf) {
    (void)rk;
    /* syslog levels: 0..3 errors, 4 warnings, the rest chatter. */
    if (level <= 3)
        log_error("kafka", "%s: %s", fac, buf);
    else if (level == 4)
        log_warn("kafka", "%s: %s", fac, buf);
    else
        log_debug("kafka", "%s: %s", fac, buf);
}

/* Whether key's value is a secret: never echoed in a message. */
static int kafka_secret_key(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".key") ||
           strstr(key, "jaas") || strstr(key, "token");
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                   char *err, size_t errlen) {
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        /* librdkafka's reason may quote the value; say only the key then. */
        if (kafka_secret_key(key))
            return status_fail(AISLE_EINVAL, err, errlen, "kafka setting %s: refused", key);
        return status_fail(AISLE_EINVAL, err, errlen, "kafka setting %s=%s: %s", key, value,
                           why);
    }
    return AISLE_OK;
}

/* Settings every client of this process gets (security.protocol, SASL,
 * SSL ...): copied "key=value" strings, set once at start by the command. */
static struct {
    char **opts;
    size_t n;
} kafka_client;

int kafka_client_opts_set(const char *const *opts, size_t n, char *err, size_t errlen) {
    char **copy = calloc(n + 1, sizeof(*copy));
    if (!copy) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!strchr(opts[i], '=') || !(copy[i] = strdup(opts[i]))) {
            for (size_t j = 0; j < i; j++) free(copy[j]);
            free(copy);
            return status_fail(AISLE_EINVAL, err, errlen, "a kafka setting is KEY=VALUE");
        }
    for (size_t i = 0; i < kafka_client.n; i++) free(kafka_client.opts[i]);
    free(kafka_client.opts);
    kafka_client.opts = copy;
    kafka_client.n = n;
    return AISLE_OK;
}

/* The process-wide settings, then SASL credentials from the environment. */
static int kafka_conf_client(rd_kafka_conf_t *conf, char *err, size_t errlen) {
    static const struct {
        const char *env, *key;
    } secrets[] = {{"AISLE_KAFKA_SASL_USERNAME", "sasl.username"},
                   {"AISLE_KAFKA_SASL_PASSWORD", "sasl.password"}};
    for (size_t i = 0; i < kafka_client.n; i++) {
        char *eq = strchr(kafka_client.opts[i], '=');
        char key[256];
        size_t kl = (size_t)(eq - kafka_client.opts[i]);
        if (kl >= sizeof(key)) return status_fail(AISLE_EINVAL, err, errlen, "kafka setting key too long");
        memcpy(key, kafka_client.opts[i], kl);
        key[kl] = '\0';
        if (kafka_conf_set(conf, key, eq + 1, err, errlen) != AISLE_OK) return AISLE_EINVAL;
    }
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        const char *v = getenv(secrets[i].env);
        if (v && *v && kafka_conf_set(conf, secrets[i].key, v, err, errlen) != AISLE_OK)
            return AISLE_EINVAL;
    }
    return AISLE_OK;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        status_fmt(err, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    if ((brokers && kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen)) ||
        kafka_conf_set(conf, "client.id", "aisle", err, errlen) ||
        (brokers && kafka_conf_client(conf, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_conf_t *kafka_producer_conf(const char *brokers, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, errlen);
    if (!conf) return NULL;
    if (kafka_conf_set(conf, "acks", "all", err, errlen) ||
        kafka_conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        kafka_conf_set(conf, "linger.ms", "5", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *kafka_producer_new(const char *brokers, char *err, size_t errlen) {
    char why[512];
    rd_kafka_t *rk;
    rd_kafka_conf_t *conf = kafka_producer_conf(brokers, err, errlen);
    if (!conf) return NULL;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        status_fmt(err, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int kafka_produce_msg(rd_kafka_t *rk, const char *topic, const char *key,
                      const ProtobufCMessage *msg, char *err, size_t errlen) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    rd_kafka_resp_err_t e;
    if (!buf) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    protobuf_c_message_pack(msg, buf);
    for (;;) {
        /* F_FREE hands buf to librdkafka on success. */
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(rk, 50);
    }
    if (e) {
        free(buf);
        return status_fail(AISLE_EIO, err, errlen, "producing to %s: %s", topic,
                           rd_kafka_err2str(e));
    }
    rd_kafka_poll(rk, 0);
    return AISLE_OK;
}

int kafka_mock_start(int n, int partitions, kafka_mock **out, char *err,
                     size_t errlen) {
    const struct {
        const char *name;
        int partitions;
    } topics[] = {
        {KAFKA_TOPIC_SIGNALS, partitions},
        {KAFKA_TOPIC_CATALOG, partitions},
        {KAFKA_TOPIC_DLQ, 1},
        {KAFKA_TOPIC_CONTROL, 1},
        {KAFKA_TOPIC_EXPOSURES, 4},
    };
    char why[512];
    kafka_mock *m = calloc(1, sizeof(*m));
    rd_kafka_conf_t *conf = kafka_conf_new(NULL, err, errlen);
    int rc;

    *out = NULL;
    if (n < 1 || n > 16 || partitions < 1 || partitions > 1024) {
        rc = status_fail(AISLE_EINVAL, err, errlen,
                         "mock cluster: 1..16 brokers, 1..1024 partitions");
        goto fail;
    }
    if (!m || !conf) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!m->rk) {
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "kafka mock host: %s", why);
        goto fail;
    }
    conf = NULL;
    m->cluster = rd_kafka_mock_cluster_new(m->rk, n);
    if (!m->cluster) {
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "cannot start the Kafka mock cluster");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
            m->cluster, topics[i].name, topics[i].partitions, n < 3 ? n : 3);
        if (e) {
            rc = status_fail(AISLE_EINTERNAL, err, errlen, "creating topic %s: %s",
                             topics[i].name, rd_kafka_err2str(e));
            goto fail;
        }
    }
    *out = m;
    return AISLE_OK;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    kafka_mock_stop(m);
    return rc;
}

rd_kafka_mock_cluster_t *kafka_mock_cluster(kafka_mock *m) { return m->cluster; }

const char *kafka_mock_bootstraps(const kafka_mock *m) {
    return rd_kafka_mock_cluster_bootstraps(m->cluster);
}

void kafka_mock_stop(kafka_mock *m) {
    if (!m) return;
    if (m->cluster) rd_kafka_mock_cluster_destroy(m->cluster);
    if (m->rk) rd_kafka_destroy(m->rk);
    free(m);
}
