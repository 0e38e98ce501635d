/* tail: self-assigned whole-topic reader (see tail.h). */
#include "services/kafka/tail.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/base/clock.h"
#include "services/kafka/kafka.h"
#include "services/base/log.h"

#define TAIL_MAX_PARTITIONS 4096
#define TAIL_REFRESH_MS 30000

struct tail {
    rd_kafka_t *rk;
    char *topic;
    char *component;
    int64_t start;  /* offset for newly assigned partitions */
    int warned;     /* a missing topic is reported once, not every retry */
    int n_assigned; /* partitions 0..n_assigned-1 are assigned */
    int caught_up;
    int64_t next_refresh_ms;
    unsigned char at_end[TAIL_MAX_PARTITIONS]; /* partition reached EOF once */
};

/* Assigns partitions that appeared since the last call, from t->start;
 * partitions already assigned keep their positions. Returns AISLE_OK, or
 * AISLE_EIO when the topic's metadata could not be had (retried later). */
static int tail_assign(tail *t) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->rk, t->topic, NULL);
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e;
    int n, rc = AISLE_EIO;

    if (!rkt) return AISLE_ENOMEM;
    e = rd_kafka_metadata(t->rk, 0, rkt, &md, 5000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        if (!t->warned++)
            log_warn(t->component, "no metadata for topic %s yet (retrying): %s", t->topic,
                     rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
                                                            : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    n = md->topics[0].partition_cnt;
    if (n > TAIL_MAX_PARTITIONS) n = TAIL_MAX_PARTITIONS;
    rc = AISLE_OK;
    if (n <= t->n_assigned) goto out;
    parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset = t->start;
    if (t->n_assigned > 0) {
        rd_kafka_position(t->rk, parts);
        for (int p = 0; p < n; p++)
            if (p >= t->n_assigned || parts->elems[p].offset < 0)
                parts->elems[p].offset = t->start;
    }
    e = rd_kafka_assign(t->rk, parts);
    if (e) {
        log_warn(t->component, "assigning %s: %s", t->topic, rd_kafka_err2str(e));
        rc = AISLE_EIO;
        goto out;
    }
    log_info(t->component, "reading %d partitions of %s", n, t->topic);
    t->n_assigned = n;
    t->caught_up = 0;
out:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static void tail_check_caught_up(tail *t) {
    if (t->caught_up || t->n_assigned == 0) return;
    for (int p = 0; p < t->n_assigned; p++)
        if (!t->at_end[p]) return;
    t->caught_up = 1;
}

rd_kafka_message_t *tail_poll(tail *t, int timeout_ms) {
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        rd_kafka_message_t *m;
        int64_t now = clock_mono_ms(), left = deadline - now;
        if (now >= t->next_refresh_ms) {
            /* Until the first assignment works, retry every second. */
            t->next_refresh_ms =
                now + (tail_assign(t) == 0 && t->n_assigned ? TAIL_REFRESH_MS : 1000);
        }
        m = rd_kafka_consumer_poll(t->rk, left > 0 ? (int)left : 0);
        if (!m) return NULL;
        if (!m->err) return m;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < TAIL_MAX_PARTITIONS)
                t->at_end[m->partition] = 1;
            tail_check_caught_up(t);
        } else {
            log_warn(t->component, "consumer: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        if (clock_mono_ms() >= deadline) return NULL;
    }
}

int tail_caught_up(const tail *t) { return t->caught_up; }

int tail_open(const char *brokers, const char *topic, int64_t start, const char *component,
              tail **out, char *err, size_t errlen) {
    char why[512], group[96];
    rd_kafka_conf_t *conf = NULL;
    tail *t = calloc(1, sizeof(*t));
    int rc = AISLE_EINVAL; /* what a refused setting gives */

    *out = NULL;
    if (!t || !(t->topic = strdup(topic)) || !(t->component = strdup(component))) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    t->start = start;
    /* librdkafka wants a group.id even for assign(); nothing is committed
     * under it and no group is ever joined. */
    snprintf(group, sizeof(group), "aisle-%s-%d-%lx", component, (int)getpid(),
             (unsigned long)(uintptr_t)t);
    conf = kafka_conf_new(brokers, err, errlen);
    if (!conf || kafka_conf_set(conf, "group.id", group, err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) ||
        /* An offset out of range (retention deleted what a restart asked
         * for) must not jump to the end and leave the catalog silently
         * incomplete: a reader of the whole topic starts again at the
         * earliest message there is. */
        kafka_conf_set(conf, "auto.offset.reset",
                       start == RD_KAFKA_OFFSET_END ? "latest" : "earliest", err, errlen))
        goto fail;
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!t->rk) {
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(t->rk);
    *out = t;
    return AISLE_OK;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    tail_close(t);
    return rc;
}

void tail_close(tail *t) {
    if (!t) return;
    if (t->rk) {
        rd_kafka_consumer_close(t->rk);
        rd_kafka_destroy(t->rk);
    }
    free(t->topic);
    free(t->component);
    free(t);
}
