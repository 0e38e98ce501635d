/* Tests for ranker/rank's trending source and creator suggestions: lists
 * of several categories share the budget and say "Trending in ... this
 * week"; the creator index suggests creators near the profile that the
 * user does not engage with or follow, and the request's creator filter
 * holds; followed creators feed the creators source. */
#include "ranker/rank.h"

#include <stdio.h>
#include <string.h>

#include "services/base/status.h"
#include "tests/test.h"

#define DIM 4

/* o0..o9 (outdoor, by co0/co1) near axis 0, k0..k9 (kitchen, by ck0/ck1)
 * near axis 1; creator names "Outdoor N" and "" (the kitchen's). */
static catalog *make_catalog(void) {
    catalog *c;
    catalog_config cfg;
    char err[256], id[16], creator[16], name[16];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (catalog_new(&cfg, &c, err, sizeof(err))) return NULL;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 10; i++) {
            float v[DIM] = {0, 0, 0.05f * (float)i, 0.3f * (float)(i % 2)};
            v[k] = 1;
            snprintf(id, sizeof(id), "%c%d", k ? 'k' : 'o', i);
            snprintf(creator, sizeof(creator), "c%c%d", k ? 'k' : 'o', i % 2);
            snprintf(name, sizeof(name), k ? "" : "Outdoor %d", i % 2);
            catalog_item it = {id, id, creator, k ? "kitchen" : "outdoor", "", 100, 1, name};
            if (catalog_upsert(c, &it, v, DIM, err, sizeof(err))) return NULL;
        }
    return c;
}

static const rank_hit *find(const rank_result *r, const char *id) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->hits[i].item.item_id, id) == 0) return &r->hits[i];
    return NULL;
}

static int has_reason(const rank_hit *h, const char *want) {
    for (int i = 0; h && i < h->n_reasons; i++)
        if (strcmp(h->reasons[i], want) == 0) return 1;
    return 0;
}

static void test_trending_lists_share_the_budget(void) {
    catalog *c = make_catalog();
    rank_entry out[] = {{"o7", 9}, {"o2", 3}, {"gone", 1}}, kit[] = {{"k4", 5}};
    rank_trending t[] = {{"outdoor", {.items = out, .n = 3}}, {"kitchen", {.items = kit, .n = 1}}};
    rank_request rq = {.limit = 6, .settings = rank_surface("home"), .trending = t,
                       .n_trending = 2};
    rank_result r;
    char err[256];
    const rank_hit *h;
    TEST_REQUIRE(c);
    /* A new user: what trends in both categories leads the page. */
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(r.n == 6);
    TEST_CHECK((h = find(&r, "o7")) && has_reason(h, "Trending in outdoor this week"));
    TEST_CHECK((h = find(&r, "k4")) && has_reason(h, "Trending in kitchen this week"));
    TEST_CHECK(h && strcmp(h->source_names[0], "trending") == 0);
    TEST_CHECK(find(&r, "o2") != NULL);
    rank_result_free(&r);
    /* The exact surface has no trending budget. */
    rq.settings = rank_surface("");
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK(!(r.hits[i].sources & 1u << RANK_SRC_TRENDING));
    rank_result_free(&r);
    catalog_free(c);
}

static void test_creators_suggested_and_named(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"o1", 2}, {"o3", 2}}, engaged[] = {{"co1", 5}};
    rank_profile p = {.items = items, .n_items = 2, .creators = engaged, .n_creators = 1};
    rank_request rq = {.profile = &p, .limit = 3, .settings = rank_surface("home"),
                       .creators = 2};
    rank_result r;
    char err[256];
    TEST_REQUIRE(c);
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    /* co1 is the user's already; co0 makes outdoor items too, ck* kitchen ones. */
    TEST_REQUIRE(r.n_creators == 2);
    TEST_CHECK_STR(r.creators[0].id, "co0");
    TEST_CHECK_STR(r.creators[0].name, "Outdoor 0");
    TEST_CHECK(r.creators[0].n_items == 5);
    TEST_CHECK(r.creators[1].id[1] == 'k' && strcmp(r.creators[1].name, "") == 0);
    TEST_CHECK(r.creators[0].score > r.creators[1].score);
    /* Items name their creator: the name when there is one (o9 came from
     * the creators source: co1's newest). */
    TEST_CHECK(has_reason(find(&r, "o9"), "New from Outdoor 1, a creator you engage with"));
    rank_result_free(&r);
    /* A creator the user follows is called so. */
    p.follows = engaged;
    p.n_follows = 1;
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(has_reason(find(&r, "o9"), "New from Outdoor 1, whom you follow"));
    rank_result_free(&r);
    p.follows = NULL;
    p.n_follows = 0;
    /* The request's creator filter holds for suggestions too. */
    const char *no_co0[] = {"co0"};
    rank_filter f = {.exclude_creators = no_co0, .n_exclude_creators = 1};
    rq.filter = &f;
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    for (size_t i = 0; i < r.n_creators; i++) TEST_CHECK(strcmp(r.creators[i].id, "co0") != 0);
    rank_result_free(&r);
    /* No profile, no suggestions. */
    rq.profile = NULL;
    rq.filter = NULL;
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(r.n_creators == 0);
    rank_result_free(&r);
    catalog_free(c);
}

/* A followed creator the profile's creators list does not hold (trimmed,
 * or never engaged with) still feeds the creators source, says so, and is
 * not suggested as new. */
static void test_followed_creator_feeds_the_creators_source(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"o1", 2}, {"o3", 2}}, engaged[] = {{"co1", 5}},
               follows[] = {{"ck0", 1700000000000.0}};
    rank_profile p = {.items = items, .n_items = 2, .creators = engaged, .n_creators = 1,
                      .follows = follows, .n_follows = 1};
    rank_request rq = {.profile = &p, .limit = 20, .settings = rank_surface("home"),
                       .creators = 4};
    rank_result r;
    char err[256];
    int from_ck0 = 0;
    TEST_REQUIRE(c);
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    for (size_t i = 0; i < r.n; i++) {
        const rank_hit *h = &r.hits[i];
        if (strcmp(h->item.creator_id, "ck0") != 0 || !(h->sources & 1u << RANK_SRC_CREATORS))
            continue;
        from_ck0++;
        TEST_CHECK(has_reason(h, "New from ck0, whom you follow"));
    }
    TEST_CHECK(from_ck0 > 0);
    for (size_t i = 0; i < r.n_creators; i++) TEST_CHECK(strcmp(r.creators[i].id, "ck0") != 0);
    rank_result_free(&r);
    /* Without the follow, the kitchen creator brings nothing of its own. */
    p.n_follows = 0;
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    for (size_t i = 0; i < r.n; i++)
        TEST_CHECK(strcmp(r.hits[i].item.creator_id, "ck0") != 0 ||
                   !(r.hits[i].sources & 1u << RANK_SRC_CREATORS));
    rank_result_free(&r);
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_trending_lists_share_the_budget);
    TEST_RUN(test_creators_suggested_and_named);
    TEST_RUN(test_followed_creator_feeds_the_creators_source);
    return test_summary();
}
