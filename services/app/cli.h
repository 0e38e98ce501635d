/* cli: what every subcommand of the aisle binary shares: number parsing
 * with clear messages, the usage-error convention (message, hint, exit 2),
 * and the stop signals (SIGINT/SIGTERM) turned into a flag that long-running
 * roles poll, so they can finish their work in hand before exiting. */
#ifndef AISLE_CLI_H
#define AISLE_CLI_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdint.h>

#include "services/profile/profile.h"

#define CLI_EXIT_USAGE 2
/* A flag parser's "help was printed: exit 0" (never a process status). */
#define CLI_EXIT_HELP (-100)

/* Parses s as an integer in [min, max] into *out. Returns 0, or prints
 * "aisle CMD: --FLAG ..." to stderr and returns -1. */
int cli_int(const char *cmd, const char *flag, const char *s, long long min,
            long long max, long long *out);
int cli_double(const char *cmd, const char *flag, const char *s, double min,
               double max, double *out);

/* Profile settings that serve and ingest share (decayed weights are read
 * with the same half-life and kind weights they were written with). */
enum { CLI_OPT_HALF_LIFE = 1000, CLI_OPT_MAX_ITEMS, CLI_OPT_KIND_WEIGHTS, CLI_OPT_TTL_DAYS };
#define CLI_PROFILE_OPTIONS                                                   \
    {"half-life-s", required_argument, 0, CLI_OPT_HALF_LIFE},                 \
        {"max-items", required_argument, 0, CLI_OPT_MAX_ITEMS},               \
        {"kind-weights", required_argument, 0, CLI_OPT_KIND_WEIGHTS},         \
        {"profile-ttl-days", required_argument, 0, CLI_OPT_TTL_DAYS}
#define CLI_PROFILE_USAGE                                                                  \
    "  --half-life-s S        profile decay half-life (default 604800, one week)\n"         \
    "  --max-items N          profile items kept per user (default 500)\n"                  \
    "  --kind-weights SPEC    signal weights, e.g. view=1,click=2,add_to_cart=4,purchase=8,\n" \
    "                         like=3,follow_creator=5,dismiss=4 (those are the defaults)\n"  \
    "  --profile-ttl-days D   forget users inactive this long (default 0: never)\n"         \
    "                         (give serve and ingest the same profile settings)\n"

/* Applies option c (one of CLI_PROFILE_OPTIONS) to cfg. Returns 1 when it
 * was one, 0 when c is another option, -1 (message printed) on a bad value. */
int cli_profile_option(const char *cmd, int c, const char *arg, profile_config *cfg);

/* Where each argv element came from, for messages about bad values:
 * origins[i] ("FILE:LINE: key", or NULL for the command line) for argv[i],
 * n of them (services/app/config.h sets them). While getopt_long runs, a
 * message about the flag it just returned starts with that origin; the
 * flag parsers call cli_flags_done after their loop, so a later message
 * (a required flag missing) names none. Borrowed; must outlive parsing. */
void cli_set_origins(const char *const *origins, int n);
void cli_flags_done(void);

/* Prints "aisle CMD: MESSAGE" and the --help hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Installs handlers for SIGINT and SIGTERM that set the returned flag on
 * the first signal and exit the process on the second. */
atomic_int *cli_stop_flag(void);

/* Installs a SIGHUP handler that sets the returned flag: the operator's
 * "read your files again" (TLS certificates). The poller clears it. */
atomic_int *cli_reload_flag(void);

#endif
