/* See progress.h. Drawing is rate limited because callers report from hot
 * loops; the clock is read only every so often for the same reason. */
#include "embed/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double embed_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void embed_progress_start(embed_progress *p, const char *what, const char *unit,
                          uint64_t total, int quiet) {
    if (!p) return;
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = embed_now();
    p->last_draw = 0;
    p->quiet = quiet;
    p->draw = !quiet && isatty(STDERR_FILENO);
}

void embed_progress_set(embed_progress *p, uint64_t done) {
    if (!p) return;
    p->done = done;
    if (!p->draw) return;
    double now = embed_now();
    if (now - p->last_draw < 0.25 && done < p->total) return;
    p->last_draw = now;
    double el = now - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    double left = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
    fprintf(stderr, "\r%s: %llu/%llu %s (%.0f%%) %.0f/s, %.0f s left\033[K", p->what,
            (unsigned long long)done, (unsigned long long)p->total, p->unit,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate, left);
    fflush(stderr);
}

void embed_progress_end(embed_progress *p) {
    if (!p) return;
    if (p->draw) fprintf(stderr, "\r\033[K");
    if (p->quiet) return;
    double el = embed_now() - p->t0;
    fprintf(stderr, "%s: %llu %s in %.1f s (%.3g/s)\n", p->what, (unsigned long long)p->done,
            p->unit, el, el > 0 ? (double)p->done / el : 0.0);
}
