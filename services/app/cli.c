/* cli: shared parsing and signal handling for the aisle subcommands. */
#include "services/app/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static atomic_int cli_stop;
static const char *const *cli_origins;
static int cli_n_origins;

void cli_set_origins(const char *const *origins, int n) {
    cli_origins = origins;
    cli_n_origins = n;
}

void cli_flags_done(void) { cli_set_origins(NULL, 0); }

/* "aisle CMD: " and, for a flag that came from a file, "FILE:LINE: key: ".
 * getopt_long has just consumed the flag (flags from files are one
 * "--flag=value" element each), so it is argv[optind - 1]. */
static void cli_prefix(const char *cmd) {
    int i = optind - 1;
    fprintf(stderr, "aisle %s: ", cmd);
    if (i >= 0 && i < cli_n_origins && cli_origins[i]) fprintf(stderr, "%s: ", cli_origins[i]);
}

int cli_int(const char *cmd, const char *flag, const char *s, long long min,
            long long max, long long *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        cli_prefix(cmd);
        fprintf(stderr, "--%s must be a whole number in %lld..%lld, not '%s'\n", flag, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *cmd, const char *flag, const char *s, double min,
               double max, double *out) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        cli_prefix(cmd);
        fprintf(stderr, "--%s must be a number in %g..%g, not '%s'\n", flag, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_profile_option(const char *cmd, int c, const char *arg, profile_config *cfg) {
    char err[256];
    long long v;
    double d;
    switch (c) {
    case CLI_OPT_HALF_LIFE:
        return cli_double(cmd, "half-life-s", arg, 1, 1e9, &cfg->half_life_s) ? -1 : 1;
    case CLI_OPT_MAX_ITEMS:
        if (cli_int(cmd, "max-items", arg, 1, 1000000, &v)) return -1;
        cfg->max_items = (int)v;
        return 1;
    case CLI_OPT_KIND_WEIGHTS:
        if (profile_parse_kind_weights(cfg, arg, err, sizeof(err)) == 0) return 1;
        cli_prefix(cmd);
        fprintf(stderr, "--kind-weights: %s\n", err);
        return -1;
    case CLI_OPT_TTL_DAYS:
        if (cli_double(cmd, "profile-ttl-days", arg, 0, 100000, &d)) return -1;
        cfg->ttl_s = d * 86400.0;
        return 1;
    default:
        return 0;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    cli_prefix(cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'aisle %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

/* A handler rather than a sigwait thread: libraries start threads of their
 * own before main (OpenBLAS does), and a signal may land on any of them. */
static void cli_on_signal(int sig) {
    static const char first[] = "aisle: stop signal received: finishing work in hand "
                                "(again to force)\n";
    static const char second[] = "aisle: second stop signal: exiting now\n";
    (void)sig;
    if (!atomic_exchange(&cli_stop, 1)) {
        if (write(STDERR_FILENO, first, sizeof(first) - 1) < 0) _exit(1);
    } else {
        if (write(STDERR_FILENO, second, sizeof(second) - 1) < 0) _exit(1);
        _exit(130);
    }
}

/* Runs fn on sig, with interrupted system calls resumed. */
static void cli_catch(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

atomic_int *cli_stop_flag(void) {
    cli_catch(SIGINT, cli_on_signal);
    cli_catch(SIGTERM, cli_on_signal);
    return &cli_stop;
}

static atomic_int cli_reload;

static void cli_on_hup(int sig) {
    (void)sig;
    atomic_store(&cli_reload, 1);
}

atomic_int *cli_reload_flag(void) {
    cli_catch(SIGHUP, cli_on_hup);
    return &cli_reload;
}
