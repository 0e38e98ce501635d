/* ops: the operator endpoint of `aisle serve` and `aisle ingest`: the HTTP
 * server of services/obs with each role's readiness checks and the
 * collectors that mirror its counters into the metrics registry.
 *
 * /readyz answers 200 when every check passes and 503 otherwise, with one
 * line per check saying what it found. serve is ready when its catalog has
 * been read to the end of the topic once, its index holds items and Redis
 * answers PING; ingest when Redis answers PING. */
#ifndef AISLE_OPS_H
#define AISLE_OPS_H

#include <stddef.h>

#include "services/app/runtime.h"
#include "services/ingest/ingest.h"

typedef struct ops ops;

/* Starts the endpoint on listen for a running serve stack (borrowed; stop
 * the endpoint before the stack), with the admin endpoints and the console,
 * which calls the stack's gRPC server through its private socket. With
 * ingest (its brokers, group, topic and client settings; borrowed for the
 * call; NULL: none) it also reports that ingest group's lag and committed
 * offsets, so the console can plot ingest beside serving. Returns
 * AISLE_OK, or a negative code with err set. */
int ops_start_serve(const char *listen, const char *redis, runtime *rt,
                    const ingest_config *ingest, ops **out, char *err, size_t errlen);
/* The same for an ingest worker running cfg, whose counters are *stats
 * (both borrowed); it also reports the group's lag (services/app/lag.h). */
int ops_start_ingest(const char *listen, const ingest_config *cfg, ingest_stats *stats,
                     ops **out, char *err, size_t errlen);
int ops_port(const ops *o);
/* Stops the endpoint and its collectors; NULL is a no-op. */
void ops_stop(ops *o);

#endif
