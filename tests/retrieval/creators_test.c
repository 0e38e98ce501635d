/* Tests for retrieval/creators through the catalog that keeps it: creator
 * vectors follow upserts, creator changes, deletes and a snapshot swap,
 * names come from the items, and searches run while the catalog changes. */
#include "retrieval/creators.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "retrieval/catalog.h"
#include "services/base/status.h"
#include "tests/test.h"

#define DIM 4

static catalog *new_catalog(void) {
    catalog_config cfg;
    catalog *c = NULL;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    cfg.ivf_threshold = 0;
    return catalog_new(&cfg, &c, err, sizeof(err)) == AISLE_OK ? c : NULL;
}

static int put(catalog *c, const char *id, const char *creator, const char *name, float x,
               float y) {
    float v[DIM] = {x, y, 0, 0};
    char err[256];
    catalog_item it = {(char *)id, "t", (char *)creator, "cat", "b", 100, 1, (char *)name};
    return catalog_upsert(c, &it, x || y ? v : NULL, x || y ? DIM : 0, err, sizeof(err));
}

/* The creators nearest (x, y), into out (4 long); how many. */
static int nearest(catalog *c, float x, float y, creators_hit *out) {
    float q[DIM] = {x, y, 0, 0};
    int n;
    catalog_read_begin(c);
    n = creators_search(catalog_creators(c), q, 4, out);
    catalog_read_end(c);
    return n;
}

static void test_means_follow_events(void) {
    catalog *c = new_catalog();
    creators_hit h[4];
    TEST_REQUIRE(c);
    TEST_CHECK(put(c, "e1", "east", "Mia Chen", 1, 0) == AISLE_OK);
    TEST_CHECK(put(c, "e2", "east", "", 1, 0.2f) == AISLE_OK);
    TEST_CHECK(put(c, "n1", "north", "", 0, 1) == AISLE_OK);
    TEST_CHECK(put(c, "x1", "", "", 1, 1) == AISLE_OK); /* no creator: not indexed */
    TEST_REQUIRE(nearest(c, 1, 0, h) == 2);
    TEST_CHECK_STR(h[0].id, "east");
    TEST_CHECK_STR(h[0].name, "Mia Chen"); /* an item without a name keeps it */
    TEST_CHECK(h[0].n_items == 2);
    /* The mean is normalized: score is the cosine for a unit query. */
    TEST_CHECK(h[0].score > 0.98f && h[0].score <= 1.0001f);
    TEST_CHECK_STR(h[1].id, "north");
    TEST_CHECK_STR(h[1].name, "");
    /* Moving north's only item to a new vector moves north. */
    TEST_CHECK(put(c, "n1", "north", "Leo Okafor", 1, 0.05f) == AISLE_OK);
    TEST_REQUIRE(nearest(c, 1, 0.05f, h) == 2);
    TEST_CHECK_STR(h[0].id, "north");
    TEST_CHECK_STR(h[0].name, "Leo Okafor");
    /* A facts-only update that changes the creator moves the vector. */
    TEST_CHECK(put(c, "e2", "north", "", 0, 0) == AISLE_OK);
    TEST_REQUIRE(nearest(c, 1, 0, h) == 2);
    TEST_CHECK(h[0].n_items + h[1].n_items == 3);
    /* Deleting a creator's last item takes them out. */
    TEST_CHECK(catalog_delete(c, "e1") == AISLE_OK);
    TEST_REQUIRE(nearest(c, 1, 0, h) == 1);
    TEST_CHECK_STR(h[0].id, "north");
    TEST_CHECK(creators_count(catalog_creators(c)) == 1);
    catalog_free(c);
}

static void test_snapshot_swap_recounts(void) {
    catalog *c = new_catalog();
    const char *ids[] = {"a", "b"};
    /* The snapshot turns both items to the y axis. */
    float P[2 * DIM] = {0, 1, 0, 0, 0, 1, 0, 0};
    uint64_t nb_off[3] = {0, 0, 0};
    uint32_t nb_item[1] = {0};
    float nb_w[1] = {0};
    catalog_snapshot snap = {"s1", 2, DIM, ids, P, P, nb_off, nb_item, nb_w, NULL};
    creators_hit h[4];
    char err[256];
    TEST_REQUIRE(c);
    TEST_CHECK(put(c, "a", "ca", "", 1, 0) == AISLE_OK);
    TEST_CHECK(put(c, "b", "cb", "", 0.9f, 0.1f) == AISLE_OK);
    TEST_REQUIRE(nearest(c, 1, 0, h) == 2);
    TEST_CHECK(h[0].score > 0.9f);
    TEST_CHECK(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(nearest(c, 0, 1, h) == 2);
    TEST_CHECK(h[0].score > 0.99f && h[1].score > 0.99f);
    catalog_free(c);
}

static atomic_int stop;

/* Searches until told to stop: the index is rebuilt under readers. */
static void *searcher(void *arg) {
    catalog *c = arg;
    creators_hit h[4];
    while (!atomic_load(&stop)) nearest(c, 1, 0.5f, h);
    return NULL;
}

static void test_searches_while_the_catalog_changes(void) {
    catalog *c = new_catalog();
    pthread_t t[2];
    char id[16], creator[16];
    creators_hit h[4];
    TEST_REQUIRE(c);
    atomic_store(&stop, 0);
    for (int i = 0; i < 2; i++) TEST_REQUIRE(pthread_create(&t[i], NULL, searcher, c) == 0);
    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof(id), "i%d", i % 50);
        snprintf(creator, sizeof(creator), "c%d", i % 7);
        TEST_CHECK(put(c, id, creator, "", 1, (float)(i % 5)) == AISLE_OK);
        if (i % 9 == 0) catalog_delete(c, id);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    TEST_CHECK(nearest(c, 1, 0, h) > 0);
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_searches_while_the_catalog_changes);
    TEST_RUN(test_means_follow_events);
    TEST_RUN(test_snapshot_swap_recounts);
    return test_summary();
}
