/* Progress lines for long offline work.
 *
 * On a terminal (stderr is a tty) the line "what: done/total (pct) rate/s,
 * ETA" is redrawn in place with \r at most a few times a second; elsewhere
 * nothing is drawn. embed_progress_end() prints a one-line summary unless
 * quiet. A NULL progress pointer is accepted everywhere and does nothing,
 * so library code can report unconditionally. */
#ifndef AISLE_EMBED_PROGRESS_H
#define AISLE_EMBED_PROGRESS_H

#include <stdint.h>

typedef struct embed_progress {
    const char *what; /* borrowed: must outlive the progress */
    const char *unit; /* "users", "items", ... (borrowed) */
    uint64_t total;
    uint64_t done;
    double t0, last_draw;
    int draw;  /* redraw the line (tty and not quiet) */
    int quiet; /* no summary either */
} embed_progress;

/* Monotonic seconds. */
double embed_now(void);

void embed_progress_start(embed_progress *p, const char *what, const char *unit,
                          uint64_t total, int quiet);
/* Sets the amount done so far; cheap enough to call per unit of work. */
void embed_progress_set(embed_progress *p, uint64_t done);
/* Erases the line and prints "what: N unit in T s (rate/s)". */
void embed_progress_end(embed_progress *p);

#endif
