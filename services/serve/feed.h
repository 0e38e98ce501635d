/* feed: keeps a server's catalog live from the aisle.catalog topic.
 *
 * Every server replica reads the whole topic from the beginning (its own
 * consumer group, nothing committed), so each holds the full catalog. A
 * message that does not parse, or whose item is invalid (an embedding of
 * the wrong length, say), is skipped with a logged reason; a message with
 * no value (a tombstone) deletes the item named by its key.
 *
 * The same thread reads the control topic from its end: "index reload"
 * loads the newest valid snapshot from the snapshot directory into the
 * catalog (see catalog_load_snapshot). Catalog events wait while it builds,
 * so none is lost or applied to the wrong index; requests go on. */
#ifndef AISLE_FEED_H
#define AISLE_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "retrieval/catalog.h"

typedef struct feed feed;

typedef struct feed_stats {
    uint64_t applied;  /* upserts and deletes */
    uint64_t rejected; /* skipped with a reason */
} feed_stats;

typedef struct feed_config {
    const char *brokers;
    const char *topic;         /* default aisle.catalog */
    const char *control_topic; /* default aisle.control; NULL = none */
    const char *snapshot_dir;  /* where reloads look; NULL = none */
    int nprobe;                /* lists probed after a reload: serve's --nprobe;
                                * 0 = each snapshot's own count */
} feed_config;

/* Topics default, the rest NULL. */
void feed_config_default(feed_config *cfg);

/* Starts consuming into c (borrowed; must outlive the feed) on a thread of
 * its own. Returns 0, or -1 with err set. */
int feed_start(const feed_config *cfg, catalog *c, feed **out, char *err, size_t errlen);
/* Non-zero once every assigned partition has been read to its end at least
 * once: the catalog is as fresh as the topic. Takes a feed*, as a callback. */
int feed_ready(void *f);
void feed_get_stats(feed *f, feed_stats *out);
/* Applies one message of the catalog topic to c: a CatalogItem value
 * upserts (or, with deleted set, deletes); a NULL value is a tombstone for
 * the item named by key. Returns AISLE_OK, or AISLE_EFORMAT / AISLE_EINVAL
 * with the reason in err, leaving the catalog as it was. */
int feed_apply_message(catalog *c, const void *key, size_t key_len, const void *value,
                       size_t len, char *err, size_t errlen);

/* Stops the thread, leaves the group and frees f. */
void feed_stop(feed *f);

#endif
