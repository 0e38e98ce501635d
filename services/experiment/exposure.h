/* exposure: the log of served pages, for experiment analysis and ranker
 * training, on Kafka topic aisle.exposures (key: user id; value: the
 * Exposure message of proto/aisle/v1/experiments.proto).
 *
 * A response must never wait for Kafka: exposure_log_submit serializes the
 * record in the caller's thread and puts it on a bounded queue under a lock
 * held for a few pointer moves; when the queue is full the record is
 * dropped and counted, the call goes on. One thread drains the queue into
 * a librdkafka producer (which batches; linger 20 ms) every 10 ms, or as
 * soon as a batch of 512 (a quarter of a smaller queue) waits, and counts
 * what Kafka confirmed and what it failed. */
#ifndef AISLE_EXP_EXPOSURE_H
#define AISLE_EXP_EXPOSURE_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/experiments.pb-c.h"
#include "services/experiment/expset.h"
#include "services/kafka/kafka.h"

#define EXPOSURE_TOPIC KAFKA_TOPIC_EXPOSURES
#define EXPOSURE_QUEUE_DEFAULT 65536

typedef struct exposure_log exposure_log;

typedef struct exposure_log_stats {
    uint64_t submitted; /* accepted on the queue */
    uint64_t dropped;   /* refused: queue full, out of memory, or still queued at stop */
    uint64_t delivered; /* confirmed by Kafka */
    uint64_t failed;    /* refused or timed out by Kafka */
    size_t queued;      /* waiting now */
} exposure_log_stats;

/* Starts a logger producing to topic (NULL: EXPOSURE_TOPIC) on brokers,
 * with room for capacity records (0: EXPOSURE_QUEUE_DEFAULT). Returns
 * AISLE_OK, or an error with err set. */
int exposure_log_start(const char *brokers, const char *topic, size_t capacity,
                       exposure_log **out, char *err, size_t errlen);
/* Queues e (copied as bytes; the caller keeps e). Never blocks: returns
 * AISLE_OK, or AISLE_EFULL (counted as dropped). Thread-safe. */
int exposure_log_submit(exposure_log *l, const Aisle__V1__Exposure *e);
void exposure_log_get_stats(exposure_log *l, exposure_log_stats *out);
/* Sends what is queued, waits up to flush_ms for Kafka to confirm, stops
 * and frees l. */
void exposure_log_stop(exposure_log *l, int flush_ms);

/* Points e->variants at storage (EXP_MAX_LAYERS entries, the caller's) and
 * ptrs filled from a, and sets e->holdout and e->experiments_version. The
 * strings stay a's set's: keep its reference until e is submitted. */
void exposure_set_variants(Aisle__V1__Exposure *e, const exp_assignment *a,
                           Aisle__V1__VariantAssignment *storage,
                           Aisle__V1__VariantAssignment **ptrs);

#endif
