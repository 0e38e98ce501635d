/* tpool.c — persistent workers that take chunks of a job from a shared
 * ticket counter.
 *
 * Workers spin on the job counter for a short while after each job because
 * the next product of the same token follows within microseconds; a
 * sleeping worker would add a futex wake-up (tens of microseconds) to every
 * product. After the spin budget they block on a condition variable so an
 * idle server does not burn its cores.
 *
 * A job is cut into more chunks than threads and every thread, the caller
 * included, claims chunks until none are left. On a machine shared with
 * other processes a worker may be descheduled for a whole time slice; the
 * caller then runs that worker's chunks itself instead of waiting for it.
 * The ticket carries the job number in its upper half so a worker that
 * wakes up late can never claim a chunk of a job it did not see start. */
#include "model/tpool.h"

#include "services/base/status.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define TPOOL_SPIN 20000 /* polls before a worker blocks (~1 ms) */
#define TPOOL_CHUNKS 8   /* chunks per thread */

struct tpool {
    int n;
    pthread_t *threads;     /* n-1 workers */
    int started;            /* workers successfully started */
    pthread_mutex_t run_mu; /* one job at a time */
    pthread_mutex_t mu;     /* guards sleeping on cv */
    pthread_cond_t cv;
    atomic_uint gen;        /* job number, bumped to publish a job */
    atomic_uint_fast64_t ticket; /* job number << 32 | next chunk */
    atomic_int done;        /* chunks finished */
    atomic_int stop;
    tpool_fn fn;            /* stable while a chunk of the job is claimed */
    void *arg;
    int chunks;             /* per job, fixed */
};

typedef struct tpool_worker {
    tpool *p;
} tpool_worker;

static inline void tpool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of job `g` until none are left. */
static void tpool_work(tpool *p, unsigned g) {
    uint_fast64_t t = atomic_load(&p->ticket);
    for (;;) {
        unsigned chunk = (unsigned)(t & 0xffffffffu);
        if ((unsigned)(t >> 32) != g || chunk >= (unsigned)p->chunks)
            return;
        if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1))
            continue;
        /* The job cannot end while this chunk is unfinished, so fn, arg
         * and chunks stay those of job g. */
        p->fn(p->arg, (int)chunk, p->chunks);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        t = atomic_load(&p->ticket);
    }
}

static void *tpool_main(void *arg) {
    tpool_worker *w = arg;
    tpool *p = w->p;
    unsigned seen = 0;

    free(w);
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < TPOOL_SPIN; i++) {
            tpool_pause();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        tpool_work(p, g);
    }
}

static void tpool_stop(tpool *p) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
}

static void tpool_destroy(tpool *p) {
    tpool_stop(p);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p);
}

int tpool_new(int nthreads, tpool **out) {
    tpool *p;
    int rc = AISLE_ENOMEM;

    *out = NULL;
    if (nthreads < 1 || nthreads > 256)
        return AISLE_EINVAL;
    p = calloc(1, sizeof *p);
    if (!p)
        return AISLE_ENOMEM;
    p->n = nthreads;
    p->chunks = nthreads * TPOOL_CHUNKS;
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads)
        goto fail;
    for (int i = 1; i < nthreads; i++) {
        tpool_worker *w = malloc(sizeof *w); /* freed by the worker */
        if (!w)
            goto fail;
        w->p = p;
        rc = -pthread_create(&p->threads[p->started], NULL, tpool_main, w);
        if (rc) {
            free(w);
            goto fail;
        }
        p->started++;
    }
    *out = p;
    return 0;

fail:
    tpool_destroy(p);
    return rc;
}

void tpool_free(tpool *p) {
    if (p)
        tpool_destroy(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

void tpool_run(tpool *p, tpool_fn fn, void *arg) {
    unsigned g;

    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->done, 0);
    g = atomic_load(&p->gen) + 1;
    atomic_store(&p->ticket, (uint_fast64_t)g << 32);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);

    tpool_work(p, g);
    for (int i = 0; atomic_load_explicit(&p->done, memory_order_acquire) <
                    p->chunks;
         i++) {
        if (i < TPOOL_SPIN)
            tpool_pause();
        else
            sched_yield(); /* a worker holding a chunk lost its core */
    }
    pthread_mutex_unlock(&p->run_mu);
}
