/* tpool.c — persistent workers that wake on a job generation counter.
 *
 * Workers spin on the counter for a short while after each job because the
 * next product of the same token follows within microseconds; a sleeping
 * worker would add a futex wake-up (tens of microseconds) to every product.
 * After the spin budget they block on a condition variable so an idle
 * server does not burn its cores. */
#include "model/tpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define TPOOL_SPIN 20000 /* polls before a worker blocks (~1 ms) */

struct tpool {
    int n;
    pthread_t *threads;      /* n-1 workers */
    int started;             /* workers successfully started */
    pthread_mutex_t run_mu;  /* one job at a time */
    pthread_mutex_t mu;      /* guards sleeping on cv */
    pthread_cond_t cv;
    atomic_uint gen;         /* bumped to publish a job */
    atomic_int left;         /* worker parts still running */
    atomic_int stop;
    tpool_fn fn;             /* published by the release store to gen */
    void *arg;
};

typedef struct tpool_worker {
    tpool *p;
    int part;
} tpool_worker;

static inline void tpool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *tpool_main(void *arg) {
    tpool_worker *w = arg;
    tpool *p = w->p;
    int part = w->part;
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
        p->fn(p->arg, part, p->n);
        atomic_fetch_sub_explicit(&p->left, 1, memory_order_release);
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

int tpool_new(int nthreads, tpool **out) {
    tpool *p;
    int rc = -ENOMEM;

    *out = NULL;
    if (nthreads < 1 || nthreads > 256)
        return -EINVAL;
    p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->n = nthreads;
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
        w->part = i;
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
    tpool_stop(p);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p);
    return rc;
}

void tpool_free(tpool *p) {
    if (!p)
        return;
    tpool_stop(p);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

void tpool_run(tpool *p, tpool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->left, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n);
    for (int i = 0; atomic_load_explicit(&p->left, memory_order_acquire) > 0;
         i++) {
        if (i < TPOOL_SPIN)
            tpool_pause();
        else
            sched_yield(); /* a worker lost its core: let it run */
    }
    pthread_mutex_unlock(&p->run_mu);
}
