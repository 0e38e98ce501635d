/* report: the `aisle report` command: experiment results from exposures
 * and signals, read from Kafka or from length-delimited files. */
#ifndef AISLE_APP_REPORT_H
#define AISLE_APP_REPORT_H

#include "aisle/v1/events.pb-c.h"
#include "aisle/v1/experiments.pb-c.h"

/* Where report_read hands each message (borrowed for the call). */
typedef struct report_sink {
    void *ctx;
    int (*exposure)(void *ctx, const Aisle__V1__Exposure *e);
    int (*signal)(void *ctx, const Aisle__V1__Signal *s);
} report_sink;

/* Reads every exposure, then every signal: from aisle.exposures and
 * aisle.signals on brokers to their ends, or (brokers NULL) from the two
 * length-delimited files. Messages that do not parse are counted and
 * skipped. Returns 0, or -1 (logged) when an input cannot be read. Shared
 * by `aisle report` and `aisle rank train`. */
int report_read(const char *brokers, const char *exposures, const char *signals,
                const report_sink *sink);

/* argv[0] is "report". Returns the process exit status (0; 1 when the
 * input cannot be read; 2 for bad flags). */
int report_main(int argc, char **argv);

#endif
