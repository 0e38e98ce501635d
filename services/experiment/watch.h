/* watch: the experiment definitions a serve replica runs with, kept
 * current from the store.
 *
 * A thread polls the stored version every poll_ms (default 200 ms) and
 * loads the set when it changed, so an edit reaches every replica within
 * about poll_ms plus one GET: well inside a second. Polling one small key
 * rather than subscribing means nothing is missed across reconnects or a
 * Redis failover. Every reload_ms (default 30 s) the whole set is read and
 * compared by fingerprint anyway: the safety net for a version key that was
 * lost or a value rewritten by hand. A stored set that does not parse or
 * validate is refused (logged and counted) and the running one stays; so
 * does the running one while Redis is unreachable.
 *
 * Readers take the current set with exp_watch_acquire: a mutex held for a
 * pointer copy and a reference count increment, never across I/O or
 * assignment, so it costs tens of nanoseconds; exp_set_release gives it
 * back. A set swapped out lives on until its last reader releases it. */
#ifndef AISLE_EXP_WATCH_H
#define AISLE_EXP_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "services/experiment/expset.h"

typedef struct exp_watch exp_watch;

typedef struct exp_watch_stats {
    uint64_t version;  /* of the running set */
    uint64_t applied;  /* sets swapped in, the first load included */
    uint64_t refused;  /* stored sets that did not parse or validate */
    uint64_t failures; /* polls that could not reach Redis */
} exp_watch_stats;

/* Loads the current set from Redis at redis_addr (when Redis is down it
 * starts with the empty set, logs it, and keeps trying) and starts the
 * polling thread. poll_ms and reload_ms 0 mean the defaults. Returns
 * AISLE_OK, or an error (a bad address, no thread) with err set. */
int exp_watch_start(const char *redis_addr, int poll_ms, int reload_ms, exp_watch **out,
                    char *err, size_t errlen);
/* Stops the thread (within poll_ms) and frees w. A set a reader still
 * holds stays valid until it is released. */
void exp_watch_stop(exp_watch *w);

/* The running set, never NULL: a reference for the caller to release with
 * exp_set_release. Thread-safe. */
exp_set *exp_watch_acquire(exp_watch *w);
void exp_watch_get_stats(exp_watch *w, exp_watch_stats *out);

#endif
