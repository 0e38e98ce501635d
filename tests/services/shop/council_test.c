/* Tests for services/council: agents run in parallel, the merge takes the
 * finished ones round-robin without repeats, an agent that misses the
 * deadline is dropped and marked unused and still cleans up after itself,
 * and a stop request ends the wait early. */
#include "services/shop/council.h"

#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "tests/test.h"

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

/* Fills a->found with items named prefix0..prefix(n-1) (owned strings). */
static void fake_found(council_agent *a, const char *const *ids, size_t n) {
    a->found.hits = calloc(n, sizeof(rank_hit));
    if (!a->found.hits) return;
    for (size_t i = 0; i < n; i++) {
        catalog_item *it = &a->found.hits[i].item;
        it->item_id = strdup(ids[i]);
        it->title = strdup(ids[i]);
        it->creator_id = strdup("");
        it->category = strdup("");
        it->brand = strdup("");
        a->found.n++;
    }
    a->n_picks = n;
}

/* kind 0 and 1 answer at once; kind 2 waits for the gate. */
static void agent_fn(council_agent *a, void *arg) {
    static const char *const lists[2][3] = {{"x", "y", "z"}, {"x", "w", "v"}};
    (void)arg;
    if (a->kind == 2) {
        pthread_mutex_lock(&gate_lock);
        while (!gate_open) pthread_cond_wait(&gate_cond, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
        fake_found(a, lists[0], 1);
        return;
    }
    fake_found(a, lists[a->kind], 3);
}

static void open_gate(void) {
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static council *make(int n) {
    static const char *const angles[] = {"best match", "budget", "slow", "skipped"};
    council *c;
    if (council_new((size_t)n, NULL, &c) != 0) return NULL;
    for (int i = 0; i < n; i++) {
        council_agent_at(c, (size_t)i)->angle = angles[i];
        council_agent_at(c, (size_t)i)->kind = i;
    }
    return c;
}

static void test_merge_drops_the_late_agent(void) {
    council_group g;
    council *c = make(4);
    const rank_hit *picks[10];
    const char *angles[10];
    size_t n;
    TEST_REQUIRE(c != NULL);
    gate_open = 0;
    council_group_init(&g, 0);
    council_agent_at(c, 3)->skip = 1;
    council_start(c, &g, agent_fn, NULL);
    TEST_CHECK(council_wait(c, clock_mono_ms() + 50, NULL, NULL) == 3);
    TEST_CHECK(!council_agent_at(c, 2)->finished);
    n = council_merge(c, 10, picks, angles);
    /* Round-robin over the finished: x (best), w (budget; its x is taken),
     * y, v, z. */
    TEST_REQUIRE(n == 5);
    const char *want[] = {"x", "w", "y", "v", "z"};
    for (size_t i = 0; i < n; i++) TEST_CHECK_STR(picks[i]->item.item_id, want[i]);
    TEST_CHECK_STR(angles[0], "best match");
    TEST_CHECK_STR(angles[1], "budget");
    TEST_CHECK(council_agent_at(c, 0)->used && council_agent_at(c, 1)->used);
    TEST_CHECK(!council_agent_at(c, 2)->used && !council_agent_at(c, 3)->used);
    council_release(c);
    /* The late agent finishes after the request let go and frees the
     * council; draining waits for it. */
    open_gate();
    council_group_drain(&g);
}

static void test_merge_respects_the_limit(void) {
    council_group g;
    council *c = make(2);
    const rank_hit *picks[2];
    const char *angles[2];
    TEST_REQUIRE(c != NULL);
    council_group_init(&g, 0);
    council_start(c, &g, agent_fn, NULL);
    TEST_CHECK(council_wait(c, clock_mono_ms() + 60000, NULL, NULL) == 2);
    TEST_CHECK(council_merge(c, 2, picks, angles) == 2);
    council_release(c);
    council_group_drain(&g);
}

/* With a cap of two threads, the other agents of a council are not run:
 * they finish at once, unused, and say why. */
static void test_cap_on_agent_threads(void) {
    council_group g;
    council *c = make(3);
    TEST_REQUIRE(c != NULL);
    gate_open = 0;
    council_group_init(&g, 2);
    council_agent_at(c, 0)->kind = 2; /* the first two hold their threads */
    council_agent_at(c, 1)->kind = 2;
    council_agent_at(c, 2)->kind = 0;
    council_start(c, &g, agent_fn, NULL);
    council_agent *third = council_agent_at(c, 2);
    TEST_CHECK(third->skip && third->finished);
    TEST_CHECK(strstr(third->summary, "not run") != NULL);
    TEST_CHECK(council_wait(c, clock_mono_ms() + 50, NULL, NULL) == 1);
    council_release(c);
    open_gate();
    council_group_drain(&g);
}

static int always(void *arg) { return *(int *)arg = 1; }

static void test_stop_ends_the_wait(void) {
    council_group g;
    council *c = make(3);
    int asked = 0;
    TEST_REQUIRE(c != NULL);
    gate_open = 0;
    council_group_init(&g, 0);
    council_start(c, &g, agent_fn, NULL);
    TEST_CHECK(council_wait(c, clock_mono_ms() + 60000, always, &asked) < 3);
    TEST_CHECK(asked);
    council_release(c);
    open_gate();
    council_group_drain(&g);
}

int main(void) {
    TEST_RUN(test_merge_drops_the_late_agent);
    TEST_RUN(test_merge_respects_the_limit);
    TEST_RUN(test_cap_on_agent_threads);
    TEST_RUN(test_stop_ends_the_wait);
    return test_summary();
}
