/* ingest: the aisle.signals consumer-group worker behind `aisle ingest`.
 *
 * Signals are read in batches, decoded and validated (services/ingest/
 * signal.h); good ones are applied to Redis profiles, bad ones are sent to
 * the dead-letter topic with their origin and the reason (a value too
 * large for the producer goes without it, the reason says so). So are the
 * good ones of a user whose profile key no write can read (profile_apply
 * refuses them; the reason names the key and the check), after the rest
 * of the batch is applied, so such a key never stalls its partition. Offsets are
 * committed only after the profile writes are done and every dead letter's
 * delivery report has confirmed it (a refused or failed one is sent again),
 * so a crash at any point replays at most what was not committed, and the
 * profile store's de-duplication (by offset per user and origin, and by
 * event_id) makes the replay harmless. No step drops a batch: each waits
 * and retries until it succeeds, and only a stop ends a batch early,
 * uncommitted. A commit is sent without waiting for its answer (the
 * writes it follows are done; a lost answer only means a replay), at most
 * 16 outstanding. Popularity and trending are summed for 200 ms (or until
 * the worker is idle) and written together (profile_flush): approximate
 * figures, whose sums a crash may lose. While Redis or the dead-letter topic is away the worker
 * pauses its partitions, including any a rebalance assigns meanwhile,
 * retries with backoff, commits nothing, and resumes by itself. Each
 * worker also reads the whole catalog topic to learn the category and
 * brand of each item (services/ingest/facts.h), and logs its counters now
 * and then. */
#ifndef AISLE_INGEST_H
#define AISLE_INGEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "services/profile/profile.h"

typedef struct ingest_config {
    const char *brokers;
    const char *redis;
    const char *group;     /* consumer group; default "aisle-ingest" */
    const char *topic;     /* default aisle.signals */
    const char *dlq_topic; /* default aisle.signals.dlq */
    const char *catalog_topic; /* item facts; default aisle.catalog; NULL: none */
    int batch_max;         /* messages per batch; default 500 */
    int stats_interval_ms; /* counters logged this often; default 10000; 0: never */
    /* librdkafka consumer settings "key=value", applied after Aisle's own
     * (borrowed; may be NULL when n_kafka_opts is 0). */
    const char *const *kafka_opts;
    size_t n_kafka_opts;
    profile_config profile;
} ingest_config;

typedef struct ingest_stats {
    atomic_uint_fast64_t consumed;      /* messages taken from Kafka */
    atomic_uint_fast64_t applied;       /* newly applied to a profile */
    atomic_uint_fast64_t duplicates;    /* already applied before */
    atomic_uint_fast64_t dead_lettered; /* sent to the dead-letter topic */
    atomic_uint_fast64_t committed;     /* messages whose offsets are committed */
    atomic_uint_fast64_t redis_retries; /* batches retried while Redis failed */
    atomic_uint_fast64_t commit_failures; /* commits refused (then replayed) */
} ingest_stats;

/* Fills the defaults above (brokers and redis stay NULL). */
void ingest_config_default(ingest_config *cfg);

/* Checks "key=value" for a librdkafka setting. Returns AISLE_OK, or
 * AISLE_EINVAL with err set. For the --kafka-opt flag. */
int ingest_check_kafka_opt(const char *opt, char *err, size_t errlen);

/* Runs until *stop becomes non-zero, then finishes the batch in hand,
 * commits and leaves the group. stats may be NULL. Returns AISLE_OK after a
 * clean stop, or the code (AISLE_EINVAL: settings; AISLE_ENOMEM, AISLE_EIO)
 * with err set when it could not start. */
int ingest_run(const ingest_config *cfg, ingest_stats *stats, atomic_int *stop,
               char *err, size_t errlen);

#endif
