/* tpool.h — a persistent pool of worker threads for data-parallel loops.
 *
 * A token's forward pass runs about fifty short matrix products; starting
 * threads for each would cost more than the work, so the workers live as
 * long as the pool and spin briefly between jobs before sleeping. A job is
 * split into a few parts per thread, which the calling thread and the
 * workers claim until none are left. */
#ifndef AISLE_MODEL_TPOOL_H
#define AISLE_MODEL_TPOOL_H

typedef struct tpool tpool;

/* Runs part `part` of `nparts` of a job; parts may run on any thread and
 * in any order. */
typedef void (*tpool_fn)(void *arg, int part, int nparts);

/* Creates a pool of nthreads threads (1..256) counting the caller, so it
 * starts nthreads-1 workers. Returns 0 or a negative errno; the caller
 * frees the pool with tpool_free. */
int tpool_new(int nthreads, tpool **out);

/* Stops and joins the workers; the pool must be idle. NULL is a no-op. */
void tpool_free(tpool *p);

int tpool_size(const tpool *p); /* nthreads; 1 for NULL */

/* Runs fn over all parts and returns when every part is done. Thread-safe:
 * concurrent callers take turns, so sessions may share one pool. A NULL
 * pool runs fn(arg, 0, 1) on the calling thread. */
void tpool_run(tpool *p, tpool_fn fn, void *arg);

#endif
