/* lag: metadata for the partitions, one committed-offsets request for the
 * group, one watermark query per partition. */
#include "services/app/lag.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/kafka/kafka.h"
#include "services/obs/metrics.h"

enum { LAG_TIMEOUT_MS = 2000, LAG_MAX_OPT = 512 };

struct lag {
    rd_kafka_t *rk;
    char *topic;
};

/* "key=value" onto conf. */
static int lag_conf_opt(rd_kafka_conf_t *conf, const char *opt, char *err, size_t errlen) {
    char key[LAG_MAX_OPT];
    const char *eq = strchr(opt, '=');
    if (!eq || (size_t)(eq - opt) >= sizeof(key))
        return status_fail(AISLE_EINVAL, err, errlen, "kafka option '%s' is not KEY=VALUE", opt);
    memcpy(key, opt, (size_t)(eq - opt));
    key[eq - opt] = '\0';
    return kafka_conf_set(conf, key, eq + 1, err, errlen) ? AISLE_EINVAL : AISLE_OK;
}

int lag_new(const ingest_config *cfg, lag **out, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, err, errlen);
    lag *l = calloc(1, sizeof(*l));
    char why[512];
    int rc = AISLE_EINVAL;

    *out = NULL;
    if (!conf || !l || !(l->topic = strdup(cfg->topic))) {
        rc = conf ? status_fail(AISLE_ENOMEM, err, errlen, "out of memory") : AISLE_EINVAL;
        goto fail;
    }
    if (kafka_conf_set(conf, "group.id", cfg->group, err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen))
        goto fail;
    for (size_t i = 0; i < cfg->n_kafka_opts; i++)
        if (lag_conf_opt(conf, cfg->kafka_opts[i], err, errlen) != AISLE_OK) goto fail;
    if (!(l->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
        rc = status_fail(AISLE_EINVAL, err, errlen, "kafka client for the lag: %s", why);
        goto fail;
    }
    *out = l;
    return AISLE_OK;
fail:
    if (conf && !(l && l->rk)) rd_kafka_conf_destroy(conf);
    lag_free(l);
    return rc;
}

/* The topic's partitions with the group's committed offsets, or NULL. */
static rd_kafka_topic_partition_list_t *lag_committed(lag *l) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(l->rk, l->topic, NULL);
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (t && rd_kafka_metadata(l->rk, 0, t, &md, LAG_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err) {
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            rd_kafka_topic_partition_list_add(parts, l->topic, md->topics[0].partitions[i].id);
        if (rd_kafka_committed(l->rk, parts, LAG_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_topic_partition_list_destroy(parts);
            parts = NULL;
        }
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (t) rd_kafka_topic_destroy(t);
    return parts;
}

void lag_collect(lag *l) {
    metrics_family *g = metrics_gauge(
        "aisle_ingest_consumer_lag_messages",
        "Messages of the signal topic the consumer group has not committed yet, by partition "
        "(the group's lag: the same from every worker)",
        "partition");
    metrics_family *done_g = metrics_gauge(
        "aisle_ingest_consumer_committed_offset",
        "The consumer group's committed offset in the signal topic, by partition (its rate is "
        "the group's throughput in messages per second)",
        "partition");
    int64_t deadline = clock_mono_ms() + LAG_TIMEOUT_MS;
    rd_kafka_topic_partition_list_t *parts = lag_committed(l);
    char id[16];

    metrics_clear(g);
    metrics_clear(done_g);
    if (!parts) {
        log_debug("ingest", "lag of %s unknown: Kafka did not answer in time", l->topic);
        return;
    }
    /* One budget for all the partitions, so a slow broker cannot hold a
     * scrape past Prometheus's timeout. */
    for (int i = 0; i < parts->cnt && clock_mono_ms() < deadline; i++) {
        int64_t lo, hi, done = parts->elems[i].offset;
        if (rd_kafka_query_watermark_offsets(l->rk, l->topic, parts->elems[i].partition, &lo, &hi,
                                             (int)(deadline - clock_mono_ms())) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        /* Nothing committed yet: the group starts from the oldest message. */
        if (done < 0) done = lo;
        snprintf(id, sizeof(id), "%d", parts->elems[i].partition);
        metrics_set(g, (const char *const[]){id}, (double)(hi > done ? hi - done : 0));
        metrics_set(done_g, (const char *const[]){id}, (double)done);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

void lag_free(lag *l) {
    if (!l) return;
    if (l->rk) rd_kafka_destroy(l->rk);
    free(l->topic);
    free(l);
}
