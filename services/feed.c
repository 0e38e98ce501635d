/* feed: aisle.catalog → catalog, on one consumer thread. */
#include "services/feed.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aisle/v1/events.pb-c.h"
#include "services/kafka.h"
#include "services/log.h"

#define FEED_MAX_PARTITIONS 4096

struct feed {
    rd_kafka_t *rk;
    catalog *cat;
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

/* Ready when the current assignment is non-empty and every partition in it
 * has reported end-of-partition at least once. */
static void feed_check_ready(feed *f) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    int all = 1;
    if (atomic_load(&f->ready)) return;
    if (rd_kafka_assignment(f->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (parts->cnt == 0) all = 0;
    for (int i = 0; i < parts->cnt && all; i++) {
        int p = parts->elems[i].partition;
        if (p < 0 || p >= FEED_MAX_PARTITIONS || !f->at_end[p]) all = 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (all) {
        atomic_store(&f->ready, 1);
        log_info("feed", "catalog caught up: %llu events applied, %llu skipped",
                 (unsigned long long)atomic_load(&f->applied),
                 (unsigned long long)atomic_load(&f->rejected));
    }
}

static void *feed_main(void *arg) {
    feed *f = arg;
    while (!atomic_load(&f->stop)) {
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
    char group[128], host[64] = "host", why[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_resp_err_t e;
    feed *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->cat = c;
    gethostname(host, sizeof(host) - 1);
    /* A group of its own, so this replica is assigned every partition. */
    snprintf(group, sizeof(group), "aisle-serve-%s-%d-%lx", host, (int)getpid(),
             (unsigned long)(uintptr_t)f);
    conf = kafka_conf_new(brokers, err, errlen);
    if (!conf || kafka_conf_set(conf, "group.id", group, err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kafka_conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen))
        goto fail;
    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!f->rk) {
        snprintf(err, errlen, "kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(f->rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(f->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        snprintf(err, errlen, "subscribing to %s: %s", topic, rd_kafka_err2str(e));
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        snprintf(err, errlen, "cannot start the catalog feed thread");
        goto fail;
    }
    *out = f;
    return 0;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
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
    free(f);
}
