/* watch: polling the experiment store and swapping the running set (see
 * watch.h). */
#include "services/experiment/watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/experiment/store.h"

#define EXP_WATCH_POLL_MS 200
#define EXP_WATCH_RELOAD_MS 30000

struct exp_watch {
    exp_store *store; /* used by the thread only, after start */
    int poll_ms, reload_ms;
    pthread_mutex_t lock; /* guards cur and stats */
    exp_set *cur;         /* one reference held by w */
    uint64_t digest;      /* of the bytes cur was loaded from */
    exp_watch_stats stats;
    atomic_int stop;
    pthread_t thread;
    int down; /* Redis was unreachable at the last poll: log the return once */
};

exp_set *exp_watch_acquire(exp_watch *w) {
    pthread_mutex_lock(&w->lock);
    exp_set *s = exp_set_ref(w->cur);
    pthread_mutex_unlock(&w->lock);
    return s;
}

void exp_watch_get_stats(exp_watch *w, exp_watch_stats *out) {
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

/* Takes s (the caller's reference) as the running set. */
static void exp_watch_swap(exp_watch *w, exp_set *s, uint64_t digest) {
    pthread_mutex_lock(&w->lock);
    exp_set *old = w->cur;
    w->cur = s;
    w->digest = digest;
    w->stats.version = exp_set_version(s);
    w->stats.applied++;
    pthread_mutex_unlock(&w->lock);
    exp_set_release(old);
    log_info("experiment", "running experiment set version %llu (%zu experiments)",
             (unsigned long long)exp_set_version(s), exp_set_def(s)->n_experiments);
}

static void exp_watch_count(exp_watch *w, uint64_t *counter) {
    pthread_mutex_lock(&w->lock);
    (*counter)++;
    pthread_mutex_unlock(&w->lock);
}

/* Loads the stored set and runs it when it differs from the running one. */
static void exp_watch_load(exp_watch *w) {
    char err[512];
    exp_set *s;
    uint64_t digest;
    int rc = exp_store_load(w->store, &s, &digest, err, sizeof(err));
    if (rc == AISLE_EUNAVAIL) {
        if (!w->down) log_warn("experiment", "%s; keeping the running set", err);
        w->down = 1;
        exp_watch_count(w, &w->stats.failures);
        return;
    }
    w->down = 0;
    if (rc != AISLE_OK) {
        log_error("experiment", "stored experiment set refused, keeping version %llu: %s",
                  (unsigned long long)w->stats.version, err);
        exp_watch_count(w, &w->stats.refused);
        return;
    }
    /* Only the thread writes digest and cur, so reading them unlocked here is safe. */
    if (digest != w->digest || exp_set_version(s) != exp_set_version(w->cur))
        exp_watch_swap(w, s, digest);
    else
        exp_set_release(s);
}

/* Reads the version; reloads when it moved (or was refused before: a
 * refused version is retried only by the full reload). */
static void exp_watch_poll(exp_watch *w, uint64_t *seen) {
    char err[512];
    uint64_t v;
    if (exp_store_version(w->store, &v, err, sizeof(err)) != AISLE_OK) {
        if (!w->down) log_warn("experiment", "%s; keeping the running set", err);
        w->down = 1;
        exp_watch_count(w, &w->stats.failures);
        return;
    }
    if (w->down) log_info("experiment", "experiment store reachable again");
    w->down = 0;
    if (v != *seen) exp_watch_load(w);
    *seen = v;
}

static void *exp_watch_main(void *arg) {
    exp_watch *w = arg;
    uint64_t seen = exp_set_version(w->cur);
    int64_t next_reload = clock_mono_ms() + w->reload_ms;
    while (!atomic_load(&w->stop)) {
        clock_sleep_ms(w->poll_ms);
        if (atomic_load(&w->stop)) break;
        if (clock_mono_ms() >= next_reload) {
            exp_watch_load(w);
            next_reload = clock_mono_ms() + w->reload_ms;
        } else {
            exp_watch_poll(w, &seen);
        }
    }
    return NULL;
}

int exp_watch_start(const char *redis_addr, int poll_ms, int reload_ms, exp_watch **out,
                    char *err, size_t errlen) {
    exp_watch *w = calloc(1, sizeof(*w));
    if (!w) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    w->poll_ms = poll_ms > 0 ? poll_ms : EXP_WATCH_POLL_MS;
    w->reload_ms = reload_ms > 0 ? reload_ms : EXP_WATCH_RELOAD_MS;
    pthread_mutex_init(&w->lock, NULL);
    int rc = exp_store_open(redis_addr, &w->store, err, errlen);
    if (rc == AISLE_OK) rc = exp_set_empty(&w->cur);
    if (rc != AISLE_OK) goto fail;
    exp_watch_load(w); /* the empty set stays when Redis is down or the set is refused */
    if (pthread_create(&w->thread, NULL, exp_watch_main, w) != 0) {
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "cannot start the experiment watcher");
        goto fail;
    }
    *out = w;
    return AISLE_OK;
fail:
    exp_set_release(w->cur);
    exp_store_close(w->store);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return rc;
}

void exp_watch_stop(exp_watch *w) {
    if (!w) return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    exp_set_release(w->cur);
    exp_store_close(w->store);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
