/* Tests for services/recommend on a real redis-server: one read of the
 * profile gives the ranker a faithful view, the page leaves out what the
 * user has seen, and a Redis failure while filling keeps its code
 * (AISLE_EIO, which the transport turns into UNAVAILABLE). */
#include "services/recommend/recommend.h"

#include <stdio.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/devtools/redisproc.h"
#include "tests/test.h"

#define DIM 4

static redisproc rp;

/* Five items along two axes: a0..a2 on the first, b0, b1 on the second. */
static catalog *make_catalog(void) {
    static const char *ids[] = {"a0", "a1", "a2", "b0", "b1"};
    catalog_config cfg;
    catalog *c;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (catalog_new(&cfg, &c, err, sizeof(err)) != AISLE_OK) return NULL;
    for (int i = 0; i < 5; i++) {
        float v[DIM] = {0};
        v[ids[i][0] == 'a' ? 0 : 1] = 1.0f + 0.1f * (float)i;
        catalog_item it = {(char *)ids[i], (char *)ids[i], "cr", "cat", "", 100, 1};
        if (catalog_upsert(c, &it, v, DIM, err, sizeof(err)) != AISLE_OK) return NULL;
    }
    return c;
}

static profile_store *open_store(void) {
    profile_config cfg;
    profile_store *ps;
    char err[256];
    profile_config_default(&cfg);
    return profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) ? NULL : ps;
}

static int view(profile_store *ps, const char *user, const char *item, int kind) {
    Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
    char ev[64], err[256];
    snprintf(ev, sizeof(ev), "%s-%s-%d", user, item, kind);
    s.event_id = ev;
    s.user_id = (char *)user;
    s.kind = kind;
    s.item_id = (char *)item;
    s.creator_id = "cr";
    s.ts_ms = clock_wall_ms();
    profile_event e = {&s, "cat", "", NULL, -1, 0};
    return profile_apply(ps, &e, 1, err, sizeof(err));
}

static void test_one_read_and_view(void) {
    catalog *c = make_catalog();
    profile_store *ps = open_store();
    recommend_user u;
    rank_result rr;
    char err[256];
    TEST_REQUIRE(c && ps);
    TEST_REQUIRE(view(ps, "u1", "a0", AISLE__V1__SIGNAL_KIND__CLICK) == 1);
    TEST_REQUIRE(view(ps, "u1", "a1", AISLE__V1__SIGNAL_KIND__VIEW) == 1);
    TEST_REQUIRE(recommend_user_load(ps, "u1", clock_wall_ms(), &u, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(u.view.n_items == 2 && u.view.n_creators == 1);
    TEST_CHECK_STR(u.view.items[0].id, "a0"); /* a click outweighs a view */
    TEST_CHECK(u.view.items[0].weight > u.view.items[1].weight);
    TEST_CHECK(u.view.n_seen == 2);
    TEST_REQUIRE(recommend_rank(c, ps, &u, 2, NULL, &rr, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(rr.n == 2);
    /* Seen items are left out; the closest unseen one comes first. */
    TEST_CHECK_STR(rr.hits[0].item.item_id, "a2");
    for (size_t i = 0; i < rr.n; i++)
        TEST_CHECK(strcmp(rr.hits[i].item.item_id, "a0") && strcmp(rr.hits[i].item.item_id, "a1"));
    rank_result_free(&rr);
    TEST_CHECK(recommend_rank(c, ps, &u, RANK_MAX_LIMIT + 1, NULL, &rr, err, sizeof(err)) ==
               AISLE_EINVAL);
    recommend_user_clear(&u);
    TEST_CHECK(recommend_for(c, ps, "", 5, NULL, &rr, err, sizeof(err)) == AISLE_EINVAL);
    profile_store_close(ps);
    catalog_free(c);
}

/* The profile is read, then Redis goes away before the page is filled from
 * the popular list: the code that comes back says "unavailable". */
static void test_redis_down_while_filling(void) {
    catalog *c = make_catalog();
    profile_store *ps = open_store();
    recommend_user u;
    rank_result rr;
    char err[256];
    TEST_REQUIRE(c && ps);
    TEST_REQUIRE(view(ps, "u2", "a0", AISLE__V1__SIGNAL_KIND__CLICK) == 1);
    TEST_REQUIRE(recommend_user_load(ps, "u2", clock_wall_ms(), &u, err, sizeof(err)) == AISLE_OK);
    redisproc_stop(&rp);
    /* Four unseen items cannot fill ten places: the popular list is asked. */
    TEST_CHECK(recommend_rank(c, ps, &u, 10, NULL, &rr, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(rr.n == 0);
    TEST_CHECK(recommend_for(c, ps, "u2", 3, NULL, &rr, err, sizeof(err)) == AISLE_EIO);
    recommend_user_clear(&u);
    profile_store_close(ps);
    catalog_free(c);
}

int main(void) {
    char err[256];
    if (redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "redis-server: %s\n", err);
        return 1;
    }
    TEST_RUN(test_one_read_and_view);
    TEST_RUN(test_redis_down_while_filling);
    redisproc_stop(&rp);
    return test_summary();
}
