/* tail: reads every partition of a topic, from the beginning or from the
 * end, as a consumer that assigns itself the partitions instead of joining
 * a group.
 *
 * For readers that must each see the whole topic (every server replica its
 * catalog, every ingest worker the item facts): a group would only add join
 * delays and rebalances when readers come and go, and nothing is committed.
 * The partition list is refreshed now and then, so partitions added later
 * are read too. One tail is used by one thread. */
#ifndef AISLE_TAIL_H
#define AISLE_TAIL_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tail tail;

/* Starts reading topic on brokers from start (RD_KAFKA_OFFSET_BEGINNING,
 * or RD_KAFKA_OFFSET_END for only what comes next); component names it in
 * logs. Returns AISLE_OK, or AISLE_EINVAL (a refused setting), AISLE_ENOMEM or
 * AISLE_EINTERNAL with err set. Free with tail_close. */
int tail_open(const char *brokers, const char *topic, int64_t start, const char *component,
              tail **out, char *err, size_t errlen);
/* The next message of the topic, waiting at most timeout_ms; NULL when none
 * came. End-of-partition events and consumer errors are handled here. The
 * caller frees the message with rd_kafka_message_destroy. */
rd_kafka_message_t *tail_poll(tail *t, int timeout_ms);
/* Non-zero once partitions are assigned and each has been read to its end
 * at least once. */
int tail_caught_up(const tail *t);
void tail_close(tail *t);

#endif
