/* feed: aisle.catalog → catalog, and aisle.control's commands, on one
 * thread. Both topics are read through tails (every partition, no group):
 * each replica must see the whole catalog and every command. */
#include "services/serve/feed.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/kafka/kafka.h"
#include "services/base/log.h"
#include "services/kafka/tail.h"
#include "services/base/status.h"
#include "services/serve/snapview.h"

struct feed {
    tail *catalog; /* from the start: the whole catalog */
    tail *control; /* from the end: commands sent from now on; may be NULL */
    catalog *cat;
    char *snapshot_dir;
    int nprobe; /* feed_config's */
    pthread_t thread;
    atomic_int stop;
    atomic_int ready;
    atomic_uint_fast64_t applied, rejected;
};

static void feed_reject(feed *f, const rd_kafka_message_t *m, const char *why) {
    atomic_fetch_add(&f->rejected, 1);
    log_warn("feed", "skipped %s[%d]@%lld: %s", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset, why);
}

int feed_apply_message(catalog *c, const void *key, size_t key_len, const void *value,
                       size_t len, char *err, size_t errlen) {
    Aisle__V1__CatalogItem *ci;
    int rc = AISLE_OK;

    if (!value) {
        /* A tombstone: the key names the deleted item. */
        char id[CATALOG_MAX_FIELD + 1];
        if (!key || key_len == 0 || key_len > CATALOG_MAX_FIELD)
            return status_fail(AISLE_EINVAL, err, errlen, "tombstone without a usable key");
        memcpy(id, key, key_len);
        id[key_len] = 0;
        catalog_delete(c, id);
        return AISLE_OK;
    }
    if (!(ci = aisle__v1__catalog_item__unpack(NULL, len, value)))
        return status_fail(AISLE_EFORMAT, err, errlen, "value is not a CatalogItem");
    if (!ci->item_id || !*ci->item_id) {
        rc = status_fail(AISLE_EINVAL, err, errlen, "item_id is empty");
    } else if (ci->deleted) {
        catalog_delete(c, ci->item_id);
    } else {
        catalog_item fields = {ci->item_id, ci->title,       ci->creator_id,
                               ci->category, ci->brand,       ci->price_cents,
                               ci->in_stock, ci->creator_name};
        rc = catalog_upsert(c, &fields, ci->embedding, ci->n_embedding, err, errlen);
    }
    aisle__v1__catalog_item__free_unpacked(ci, NULL);
    return rc;
}

static void feed_apply(feed *f, const rd_kafka_message_t *m) {
    char err[256];
    if (feed_apply_message(f->cat, m->key, m->key_len, m->payload, m->len, err, sizeof(err)) !=
        AISLE_OK)
        feed_reject(f, m, err);
    else
        atomic_fetch_add(&f->applied, 1);
}

/* Loads the newest valid snapshot in the snapshot directory unless it is
 * the one loaded already. A corrupt or unreadable one is refused with a
 * logged reason and the current one stays. */
static void feed_reload(feed *f) {
    snapview sv;
    char err[512], current[256];
    if (!f->snapshot_dir) {
        log_warn("feed", "index reload asked for, but serve has no --snapshots directory");
        return;
    }
    if (snapview_open_newest(f->snapshot_dir, &sv, err, sizeof(err)) != AISLE_OK) {
        log_error("feed", "index reload refused, keeping the current index: %s", err);
        return;
    }
    if (catalog_snapshot_version(f->cat, current, sizeof(current)) &&
        strcmp(current, sv.view.version) == 0) {
        log_info("feed", "index reload: already serving %s", current);
    } else if (catalog_load_snapshot(f->cat, &sv.view, err, sizeof(err)) != AISLE_OK) {
        log_error("feed", "index reload to %s failed, keeping the current index: %s",
                  sv.view.version, err);
    } else {
        int nprobe = snapview_apply_nprobe(&sv, f->cat, f->nprobe);
        log_info("feed", "index reloaded: now serving snapshot %s (nprobe %d%s)", sv.view.version,
                 nprobe, nprobe ? "" : ": the catalog's default");
    }
    snapview_close(&sv);
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
    while (!atomic_load(&f->stop)) {
        rd_kafka_message_t *m = tail_poll(f->catalog, 100);
        if (m) {
            feed_apply(f, m);
            rd_kafka_message_destroy(m);
        }
        if (!atomic_load(&f->ready) && tail_caught_up(f->catalog)) {
            atomic_store(&f->ready, 1);
            log_info("feed", "catalog caught up: %llu events applied, %llu skipped",
                     (unsigned long long)atomic_load(&f->applied),
                     (unsigned long long)atomic_load(&f->rejected));
        }
        if (f->control && (m = tail_poll(f->control, 0))) {
            feed_control(f, m);
            rd_kafka_message_destroy(m);
        }
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
    tail_close(f->catalog);
    tail_close(f->control);
    free(f->snapshot_dir);
    free(f);
}

int feed_start(const feed_config *cfg, catalog *c, feed **out, char *err, size_t errlen) {
    feed *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f || (cfg->snapshot_dir && !(f->snapshot_dir = strdup(cfg->snapshot_dir)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->cat = c;
    f->nprobe = cfg->nprobe;
    if (tail_open(cfg->brokers, cfg->topic, RD_KAFKA_OFFSET_BEGINNING, "feed", &f->catalog,
                  err, errlen) ||
        (cfg->control_topic && tail_open(cfg->brokers, cfg->control_topic, RD_KAFKA_OFFSET_END,
                                         "feed", &f->control, err, errlen)))
        goto fail;
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        snprintf(err, errlen, "cannot start the catalog feed thread");
        goto fail;
    }
    *out = f;
    return AISLE_OK;
fail:
    feed_free(f);
    return AISLE_EIO;
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
    feed_free(f);
}
