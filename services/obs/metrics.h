/* metrics: the process's metrics registry and its Prometheus text
 * exposition (format 0.0.4).
 *
 * One registry per process, as Prometheus client libraries have, so that a
 * layer records a measurement with one call and no handle passed down the
 * stack. A family is a name, a help line, a type and a fixed list of label
 * names; each distinct tuple of label values is a series of its own.
 * Families are created on first use and live as long as the process (the
 * registry owns them; nothing is ever unregistered, so a family pointer
 * cached in a static stays valid). Every function is thread-safe.
 *
 * Values that other modules already count (atomics in a stats struct) are
 * mirrored at scrape time by collectors: callbacks run before each render
 * that set the series from the source, so the hot path pays nothing.
 *
 * Names follow the Prometheus conventions: aisle_ prefix, base units
 * (seconds, bytes), _total for counters, _info for constant-1 gauges whose
 * labels carry the facts. */
#ifndef AISLE_METRICS_H
#define AISLE_METRICS_H

#include <stddef.h>

#include "services/base/buf.h"

#define METRICS_MAX_LABELS 4
/* Series per family beyond which new label tuples are dropped (and
 * counted in aisle_metrics_series_dropped_total): a guard against a label
 * fed with unbounded values. */
#define METRICS_MAX_SERIES 1024

typedef struct metrics_family metrics_family;

/* Get-or-create. labels is a comma-separated list of label names ("method,code")
 * or NULL. Asking again for a name returns the same family; asking with
 * another type or other labels is a programming error (assert). */
metrics_family *metrics_counter(const char *name, const char *help, const char *labels);
metrics_family *metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds: n strictly increasing upper bounds (copied); +Inf is implicit. */
metrics_family *metrics_histogram(const char *name, const char *help, const char *labels,
                                  const double *bounds, size_t n);

/* Upper bounds for latencies in seconds, 0.5 ms .. 10 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_n_latency_bounds;

/* values: one string per label name, in order (NULL when there are none).
 * Counters only go up: metrics_add asserts v >= 0. */
void metrics_add(metrics_family *f, const char *const *values, double v);
/* Sets a gauge, or mirrors a counter kept elsewhere (collectors). */
void metrics_set(metrics_family *f, const char *const *values, double v);
void metrics_observe(metrics_family *f, const char *const *values, double v);
/* Drops every series of f (a gauge whose label sets changed, e.g. the
 * partitions of a topic). */
void metrics_clear(metrics_family *f);

/* Runs fn(arg) before every render, in the order added. */
typedef void (*metrics_collector)(void *arg);
int metrics_collector_add(metrics_collector fn, void *arg);
/* Removes the pair; after it returns, fn is not running and will not run. */
void metrics_collector_remove(metrics_collector fn, void *arg);

/* Runs the collectors, then appends every family to out in the text
 * format. Returns AISLE_OK or AISLE_ENOMEM. */
int metrics_render(buf *out);

#endif
