/* demo: `aisle demo`, the whole service on embedded defaults: its own
 * redis-server child, an in-process Kafka mock cluster, a generated shop
 * streamed through Kafka, the gRPC server, and a tour of what it does. */
#ifndef AISLE_DEMO_H
#define AISLE_DEMO_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "services/devtools/synth.h"

int demo_main(int argc, char **argv);
/* The demo's flags, checked without running (for `aisle config check`).
 * Returns 0, or the exit status after printing the error. */
int demo_check_flags(int argc, char **argv);

/* Produces the first n items of w to aisle.catalog and waits for delivery.
 * Returns 0, or -1 with err set. */
int demo_produce_catalog(rd_kafka_t *rk, const synth_world *w, size_t n,
                         char *err, size_t errlen);
/* Produces per_user signals for each shopper of w to aisle.signals, with
 * times spread over the last day, and waits for delivery. */
int demo_produce_signals(rd_kafka_t *rk, const synth_world *w, size_t per_user,
                         uint64_t seed, char *err, size_t errlen);

#endif
