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
#include "embed/snapshot.h"
#include "services/clock.h"
#include "services/kafka.h"
#include "services/log.h"

#define FEED_MAX_PARTITIONS 4096
#define FEED_REFRESH_MS 30000

#define FEED_NTOPICS 2 /* the catalog, then the control topic */

struct feed {
    rd_kafka_t *rk;
    catalog *cat;
    struct {
        char *name;
        int64_t start;  /* offset for newly assigned partitions */
        int assigned;   /* partitions 0..assigned-1 are assigned */
    } topics[FEED_NTOPICS];
    char *snapshot_dir;
    atomic_uint_fast64_t reloads;
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
    if (atomic_load(&f->ready) || f->topics[0].assigned == 0) return;
    for (int p = 0; p < f->topics[0].assigned; p++)
        if (!f->at_end[p]) return;
    atomic_store(&f->ready, 1);
    log_info("feed", "catalog caught up: %llu events applied, %llu skipped",
             (unsigned long long)atomic_load(&f->applied),
             (unsigned long long)atomic_load(&f->rejected));
}

/* Partition count of topic, or -1 (logged) when its metadata is missing. */
static int feed_partitions(feed *f, const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, topic, NULL);
    rd_kafka_resp_err_t e;
    int n = -1;
    if (!rkt) return -1;
    e = rd_kafka_metadata(f->rk, 0, rkt, &md, 5000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        log_warn("feed", "no metadata for topic %s yet: %s", topic,
                 rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    } else {
        n = md->topics[0].partition_cnt;
        if (n > FEED_MAX_PARTITIONS) n = FEED_MAX_PARTITIONS;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Assigns partitions that appeared since the last call: the catalog's from
 * the start, the control topic's from the end (only commands sent from now
 * on count). Partitions already assigned keep their positions. Returns 0,
 * or -1 when metadata could not be had (retried later). */
static int feed_assign(feed *f) {
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t e;
    int n[FEED_NTOPICS], changed = 0, rc = 0;

    for (int t = 0; t < FEED_NTOPICS; t++) {
        n[t] = f->topics[t].name ? feed_partitions(f, f->topics[t].name) : 0;
        /* Without the catalog there is nothing to serve; without the
         * control topic, only reload commands are missed until it exists. */
        if (n[t] < 0 && t == 0) return -1;
        if (n[t] < 0) n[t] = f->topics[t].assigned;
        changed |= n[t] > f->topics[t].assigned;
    }
    if (!changed) return 0;
    parts = rd_kafka_topic_partition_list_new(n[0] + n[1]);
    for (int t = 0; t < FEED_NTOPICS; t++)
        for (int p = 0; p < n[t]; p++)
            rd_kafka_topic_partition_list_add(parts, f->topics[t].name, p)->offset =
                RD_KAFKA_OFFSET_INVALID;
    rd_kafka_position(f->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = strcmp(tp->topic, f->topics[0].name) == 0 ? 0 : 1;
        if (tp->partition >= f->topics[t].assigned || tp->offset < 0)
            tp->offset = f->topics[t].start;
    }
    e = rd_kafka_assign(f->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        log_warn("feed", "assigning partitions: %s", rd_kafka_err2str(e));
        return -1;
    }
    for (int t = 0; t < FEED_NTOPICS; t++) {
        if (n[t] > f->topics[t].assigned)
            log_info("feed", "reading %d partitions of %s", n[t], f->topics[t].name);
        f->topics[t].assigned = n[t];
    }
    return rc;
}

/* Loads the newest valid snapshot in the snapshot directory unless it is
 * the one loaded already. A corrupt or unreadable one is refused with a
 * logged reason and the current one stays. */
static void feed_reload(feed *f) {
    embed_snapshot snap;
    char err[512], current[256];
    if (!f->snapshot_dir) {
        log_warn("feed", "index reload asked for, but serve has no --snapshots directory");
        return;
    }
    if (embed_snapshot_load_newest(f->snapshot_dir, &snap, 0, err) != 0) {
        log_error("feed", "index reload refused, keeping the current index: %s", err);
        return;
    }
    if (catalog_snapshot_version(f->cat, current, sizeof(current)) &&
        strcmp(current, snap.version) == 0) {
        log_info("feed", "index reload: already serving %s", current);
    } else if (catalog_load_snapshot(f->cat, &snap, err, sizeof(err)) != 0) {
        log_error("feed", "index reload to %s failed, keeping the current index: %s",
                  snap.version, err);
    } else {
        log_info("feed", "index reloaded: now serving snapshot %s", snap.version);
        atomic_fetch_add(&f->reloads, 1);
    }
    embed_snapshot_free(&snap);
}

/* A message on the control topic: "index reload" is the one command. */
static void feed_control(feed *f, const rd_kafka_message_t *m) {
    static const char reload[] = "index reload";
    if (m->len == sizeof(reload) - 1 && memcmp(m->payload, reload, m->len) == 0)
        feed_reload(f);
    else
        log_warn("feed", "unknown control command at %s[%d]@%lld ignored",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
}

static void *feed_main(void *arg) {
    feed *f = arg;
    int64_t next_refresh = 0;
    while (!atomic_load(&f->stop)) {
        if (clock_mono_ms() >= next_refresh) {
            /* Until the first assignment works, retry every second. */
            next_refresh = clock_mono_ms() +
                           (feed_assign(f) == 0 && f->topics[0].assigned ? FEED_REFRESH_MS
                                                                         : 1000);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 100);
        if (!m) continue;
        int control = m->rkt && strcmp(rd_kafka_topic_name(m->rkt), f->topics[0].name);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!control && m->partition >= 0 && m->partition < FEED_MAX_PARTITIONS)
                f->at_end[m->partition] = 1;
            feed_check_ready(f);
        } else if (m->err) {
            log_warn("feed", "consumer: %s", rd_kafka_message_errstr(m));
        } else if (control) {
            feed_control(f, m);
        } else {
            feed_apply(f, m);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

void feed_config_default(feed_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->topic = KAFKA_TOPIC_CATALOG;
    cfg->control_topic = KAFKA_TOPIC_CONTROL;
}

static void feed_free(feed *f) {
    if (!f) return;
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    for (int t = 0; t < FEED_NTOPICS; t++) free(f->topics[t].name);
    free(f->snapshot_dir);
    free(f);
}

int feed_start(const feed_config *cfg, catalog *c, feed **out, char *err, size_t errlen) {
    char why[512], group[96];
    rd_kafka_conf_t *conf = NULL;
    feed *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f || !(f->topics[0].name = strdup(cfg->topic)) ||
        (cfg->control_topic && !(f->topics[1].name = strdup(cfg->control_topic))) ||
        (cfg->snapshot_dir && !(f->snapshot_dir = strdup(cfg->snapshot_dir)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->topics[0].start = RD_KAFKA_OFFSET_BEGINNING;
    f->topics[1].start = RD_KAFKA_OFFSET_END;
    f->cat = c;
    /* librdkafka wants a group.id even for assign(); nothing is committed
     * under it and no group is ever joined. */
    snprintf(group, sizeof(group), "aisle-serve-%d-%lx", (int)getpid(),
             (unsigned long)(uintptr_t)f);
    conf = kafka_conf_new(cfg->brokers, err, errlen);
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
    feed_free(f);
    return -1;
}

int feed_ready(void *f) { return atomic_load(&((feed *)f)->ready); }

void feed_get_stats(feed *f, feed_stats *out) {
    out->applied = atomic_load(&f->applied);
    out->rejected = atomic_load(&f->rejected);
    out->reloads = atomic_load(&f->reloads);
}

void feed_stop(feed *f) {
    if (!f) return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    feed_free(f);
}
