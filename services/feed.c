/* feed: aisle.catalog → catalog, on one consumer thread.
 *
 * The consumer assigns itself every partition instead of joining a group:
 * replicas must each read everything, and group membership would only add
 * join delays and rebalances when replicas come and go. The partition list
 * is refreshed now and then, so partitions added later are read too. */
#include "services/feed.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aisle/v1/events.pb-c.h"
#include "services/clock.h"
#include "services/kafka.h"
#include "services/log.h"

#define FEED_MAX_PARTITIONS 4096
#define FEED_REFRESH_MS 30000

struct feed {
    rd_kafka_t *rk;
    catalog *cat;
    char *topic;
    int n_assigned; /* partitions 0..n_assigned-1 are assigned */
    pthread_t thread;
    atomic_int stop;
    atomic_int ready;
    atomic_uint_fast64_t applied, rejected;
    unsigned char at_end[FEED_MAX_PARTITIONS]; /* partition reached EOF once */
};

static void feed_reject(feed *f, const rd_kafka_message_t *m, const char *why) {
    atomic_fetch_add(&f->rejected, 1);
    log_warn("feed", "skipped %s[%d]@%lld: %s", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset, why);
}

static void feed_apply(feed *f, const rd_kafka_message_t *m) {
    Aisle__V1__CatalogItem *ci;
    char err[256];

    if (!m->payload) {
        /* A tombstone: the key names the deleted item. */
        char id[CATALOG_MAX_FIELD + 1];
        if (!m->key || m->key_len == 0 || m->key_len > CATALOG_MAX_FIELD) {
            feed_reject(f, m, "tombstone without a usable key");
            return;
        }
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = 0;
        catalog_delete(f->cat, id);
        atomic_fetch_add(&f->applied, 1);
        return;
    }
    ci = aisle__v1__catalog_item__unpack(NULL, m->len, m->payload);
    if (!ci) {
        feed_reject(f, m, "value is not a CatalogItem");
        return;
    }
    if (!ci->item_id || !*ci->item_id) {
        feed_reject(f, m, "item_id is empty");
    } else if (ci->deleted) {
        catalog_delete(f->cat, ci->item_id);
        atomic_fetch_add(&f->applied, 1);
    } else {
        catalog_item fields = {ci->item_id, ci->title, ci->creator_id,
                               ci->category, ci->brand, ci->price_cents,
                               ci->in_stock};
        if (catalog_upsert(f->cat, &fields, ci->embedding, ci->n_embedding, err,
                           sizeof(err)) != 0)
            feed_reject(f, m, err);
        else
            atomic_fetch_add(&f->applied, 1);
    }
    aisle__v1__catalog_item__free_unpacked(ci, NULL);
}

/* Ready when partitions are assigned and each has reported end-of-partition
 * at least once. */
static void feed_check_ready(feed *f) {
    if (atomic_load(&f->ready) || f->n_assigned == 0) return;
    for (int p = 0; p < f->n_assigned; p++)
        if (!f->at_end[p]) return;
    atomic_store(&f->ready, 1);
    log_info("feed", "catalog caught up: %llu events applied, %llu skipped",
             (unsigned long long)atomic_load(&f->applied),
             (unsigned long long)atomic_load(&f->rejected));
}

/* Assigns partitions that appeared since the last call, from the start;
 * partitions already assigned keep their positions. Returns 0, or -1 when
 * the topic's metadata could not be had (retried later). */
static int feed_assign(feed *f) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, f->topic, NULL);
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e;
    int n, rc = -1;

    if (!rkt) return -1;
    e = rd_kafka_metadata(f->rk, 0, rkt, &md, 5000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        log_warn("feed", "no metadata for topic %s yet: %s", f->topic,
                 rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    n = md->topics[0].partition_cnt;
    if (n > FEED_MAX_PARTITIONS) n = FEED_MAX_PARTITIONS;
    rc = 0;
    if (n <= f->n_assigned) goto out;
    parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, f->topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (f->n_assigned > 0) {
        rd_kafka_position(f->rk, parts);
        for (int p = 0; p < n; p++)
            if (p >= f->n_assigned || parts->elems[p].offset < 0)
                parts->elems[p].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    e = rd_kafka_assign(f->rk, parts);
    if (e) {
        log_warn("feed", "assigning %s: %s", f->topic, rd_kafka_err2str(e));
        rc = -1;
        goto out;
    }
    log_info("feed", "reading %d partitions of %s", n, f->topic);
    f->n_assigned = n;
out:
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static void *feed_main(void *arg) {
    feed *f = arg;
    int64_t next_refresh = 0;
    while (!atomic_load(&f->stop)) {
        if (clock_mono_ms() >= next_refresh) {
            /* Until the first assignment works, retry every second. */
            next_refresh = clock_mono_ms() +
                           (feed_assign(f) == 0 && f->n_assigned ? FEED_REFRESH_MS : 1000);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < FEED_MAX_PARTITIONS)
                f->at_end[m->partition] = 1;
            feed_check_ready(f);
        } else if (m->err) {
            log_warn("feed", "consumer: %s", rd_kafka_message_errstr(m));
        } else {
            feed_apply(f, m);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

int feed_start(const char *brokers, const char *topic, catalog *c, feed **out,
               char *err, size_t errlen) {
    char why[512], group[96];
    rd_kafka_conf_t *conf = NULL;
    feed *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f || !(f->topic = strdup(topic))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->cat = c;
    /* librdkafka wants a group.id even for assign(); nothing is committed
     * under it and no group is ever joined. */
    snprintf(group, sizeof(group), "aisle-serve-%d-%lx", (int)getpid(),
             (unsigned long)(uintptr_t)f);
    conf = kafka_conf_new(brokers, err, errlen);
    if (!conf || kafka_conf_set(conf, "group.id", group, err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen))
        goto fail;
    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!f->rk) {
        snprintf(err, errlen, "kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(f->rk);
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        snprintf(err, errlen, "cannot start the catalog feed thread");
        goto fail;
    }
    *out = f;
    return 0;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    if (f && f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    if (f) free(f->topic);
    free(f);
    return -1;
}

int feed_ready(void *f) { return atomic_load(&((feed *)f)->ready); }

void feed_get_stats(feed *f, feed_stats *out) {
    out->applied = atomic_load(&f->applied);
    out->rejected = atomic_load(&f->rejected);
}

void feed_stop(feed *f) {
    if (!f) return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    rd_kafka_consumer_close(f->rk);
    rd_kafka_destroy(f->rk);
    free(f->topic);
    free(f);
}
