/* Tests for ranker/scratch: a thread's arrays come back zeroed and are
 * reused, a second take on the same thread while the first is held gets
 * private arrays, growth keeps them zero, and each thread has its own
 * (threads that end free theirs: LeakSanitizer checks under ASan). */
#include "ranker/scratch.h"

#include <pthread.h>
#include <stddef.h>

#include "tests/test.h"

/* Whether s's first n entries are all zero. */
static int all_zero(const rank_scratch *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s->sum[i] != 0 || s->mark[i] != 0) return 0;
    return 1;
}

static void test_reused_and_zero(void) {
    rank_scratch *a = rank_scratch_take(100), *b, *c;
    TEST_REQUIRE(a && a->cap >= 100 && all_zero(a, 100));
    a->sum[7] = 3.0f;
    a->mark[7] = 1;
    b = rank_scratch_take(50); /* a is held: private arrays */
    TEST_REQUIRE(b && b != a && b->private && all_zero(b, 50));
    rank_scratch_give(b);
    a->sum[7] = 0;
    a->mark[7] = 0;
    rank_scratch_give(a);
    c = rank_scratch_take(80);
    TEST_CHECK(c == a && !c->private);
    rank_scratch_give(c);
    c = rank_scratch_take(5000); /* grows, zeroed */
    TEST_REQUIRE(c == a && c->cap >= 5000 && all_zero(c, 5000));
    rank_scratch_give(c);
    rank_scratch_give(NULL);
}

static void *take_one(void *arg) {
    rank_scratch *s = rank_scratch_take(1000);
    *(rank_scratch **)arg = s;
    if (s) {
        s->sum[999] = 1.0f; /* another thread's, so nobody else sees it */
        s->sum[999] = 0;
        rank_scratch_give(s);
    }
    return NULL;
}

static void test_each_thread_its_own(void) {
    rank_scratch *mine = rank_scratch_take(10), *theirs = NULL;
    pthread_t t;
    TEST_REQUIRE(mine != NULL);
    TEST_REQUIRE(pthread_create(&t, NULL, take_one, &theirs) == 0);
    pthread_join(t, NULL);
    TEST_CHECK(theirs != NULL && theirs != mine);
    rank_scratch_give(mine);
}

int main(void) {
    TEST_RUN(test_reused_and_zero);
    TEST_RUN(test_each_thread_its_own);
    return test_summary();
}
