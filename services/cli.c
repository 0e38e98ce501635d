/* cli: shared parsing and signal handling for the aisle subcommands. */
#include "services/cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/log.h"

static atomic_int cli_stop;

int cli_int(const char *cmd, const char *flag, const char *s, long long min,
            long long max, long long *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "aisle %s: --%s must be a whole number in %lld..%lld, not '%s'\n",
                cmd, flag, min, max, s);
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
        fprintf(stderr, "aisle %s: --%s must be a number in %g..%g, not '%s'\n", cmd,
                flag, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "aisle %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'aisle %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

static void *cli_signal_main(void *arg) {
    sigset_t *set = arg;
    int sig;
    for (;;) {
        if (sigwait(set, &sig) != 0) continue;
        if (!atomic_exchange(&cli_stop, 1)) {
            log_info("aisle", "%s received: finishing work in hand (again to force)",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        } else {
            log_warn("aisle", "second stop signal: exiting now");
            _exit(130);
        }
    }
    return NULL;
}

atomic_int *cli_stop_flag(void) {
    static sigset_t set;
    static pthread_t th;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (pthread_create(&th, NULL, cli_signal_main, &set) == 0) pthread_detach(th);
    return &cli_stop;
}
