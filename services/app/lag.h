/* lag: how far the ingest consumer group is behind, per partition of the
 * signal topic, read the way lag exporters read it: the group's committed
 * offsets against the partitions' high watermarks, by a Kafka client of
 * its own that never joins the group (so it never causes a rebalance).
 *
 * It is the group's lag, the same from every worker (and serve replica)
 * that reports it: take max() across them, not sum(). */
#ifndef AISLE_LAG_H
#define AISLE_LAG_H

#include <stddef.h>

#include "services/ingest/ingest.h"

typedef struct lag lag;

/* A reader for cfg's brokers, group, topic and client settings (borrowed
 * only for the call). Returns AISLE_OK, or a negative code with err set. */
int lag_new(const ingest_config *cfg, lag **out, char *err, size_t errlen);
/* Sets aisle_ingest_consumer_lag_messages{partition} and
 * aisle_ingest_consumer_committed_offset{partition} for every partition;
 * leaves no series when Kafka does not answer in time (lag unknown). Takes
 * a few Kafka round trips, about 4 s at most; call from one thread at a
 * time (a collector). */
void lag_collect(lag *l);
void lag_free(lag *l);

#endif
