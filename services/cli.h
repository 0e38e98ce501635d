/* cli: what every subcommand of the aisle binary shares: number parsing
 * with clear messages, the usage-error convention (message, hint, exit 2),
 * and the stop signals (SIGINT/SIGTERM) turned into a flag that long-running
 * roles poll, so they can finish their work in hand before exiting. */
#ifndef AISLE_CLI_H
#define AISLE_CLI_H

#include <stdatomic.h>
#include <stdint.h>

#define CLI_EXIT_USAGE 2

/* Parses s as an integer in [min, max] into *out. Returns 0, or prints
 * "aisle CMD: --FLAG ..." to stderr and returns -1. */
int cli_int(const char *cmd, const char *flag, const char *s, long long min,
            long long max, long long *out);
int cli_double(const char *cmd, const char *flag, const char *s, double min,
               double max, double *out);

/* Prints "aisle CMD: MESSAGE" and the --help hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Installs handlers for SIGINT and SIGTERM that set the returned flag on
 * the first signal and exit the process on the second. */
atomic_int *cli_stop_flag(void);

#endif
