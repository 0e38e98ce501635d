/* scratch: one rank_scratch per thread, kept in a pthread key whose
 * destructor frees it when the thread ends (so a pool's exited threads
 * leak nothing); grown by freeing and zero-allocating afresh. */
#include "ranker/scratch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_key_t rank_scratch_key;
static pthread_once_t rank_scratch_once = PTHREAD_ONCE_INIT;
static int rank_scratch_keyed; /* whether the key was created */

static void rank_scratch_free(void *p) {
    rank_scratch *s = p;
    if (!s) return;
    free(s->sum);
    free(s->mark);
    free(s);
}

static void rank_scratch_init(void) {
    rank_scratch_keyed = pthread_key_create(&rank_scratch_key, rank_scratch_free) == 0;
}

/* s's arrays grown to n zeroed entries; 0, or -1 out of memory (s then
 * holds none). */
static int rank_scratch_grow(rank_scratch *s, size_t n) {
    if (s->cap >= n) return 0;
    free(s->sum);
    free(s->mark);
    s->sum = calloc(n, sizeof(*s->sum));
    s->mark = calloc(n, 1);
    s->cap = s->sum && s->mark ? n : 0;
    return s->cap ? 0 : -1;
}

rank_scratch *rank_scratch_take(size_t n) {
    rank_scratch *s = NULL;
    pthread_once(&rank_scratch_once, rank_scratch_init);
    if (rank_scratch_keyed && !(s = pthread_getspecific(rank_scratch_key)) &&
        (s = calloc(1, sizeof(*s))) && pthread_setspecific(rank_scratch_key, s) != 0) {
        free(s);
        s = NULL;
    }
    if (!s || s->busy) { /* no key, or this thread's is held: a private one */
        if (!(s = calloc(1, sizeof(*s)))) return NULL;
        s->private = 1;
    }
    if (rank_scratch_grow(s, n ? n : 1) != 0) {
        if (s->private) rank_scratch_free(s);
        return NULL;
    }
    s->busy = 1;
    return s;
}

void rank_scratch_give(rank_scratch *s) {
    if (!s) return;
    assert(s->busy);
    if (s->private) {
        rank_scratch_free(s);
        return;
    }
    s->busy = 0;
}
