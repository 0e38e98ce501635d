/* Tests for ranker/rank over a real catalog: personalization, filters,
 * reasons, creator boost, the popular fallback, the request's sources,
 * MMR, caps and paging's exclusions; the features a hit carries are the
 * ones its score was made of. */
#include "ranker/rank.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

#define DIM 4

/* Items a0..a9 near axis 0 (creator ca), b0..b9 near axis 1 (creator cb);
 * a9 is out of stock. */
static catalog *make_catalog(void) {
    catalog *c;
    catalog_config cfg;
    char err[256], id[16];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (catalog_new(&cfg, &c, err, sizeof(err))) return NULL;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 10; i++) {
            float v[DIM] = {0, 0, 0.05f * (float)i, 0};
            v[k] = 1;
            snprintf(id, sizeof(id), "%c%d", 'a' + k, i);
            catalog_item it = {id, id, k ? "cb" : "ca", k ? "B" : "A", "", 100,
                               !(k == 0 && i == 9), ""};
            if (catalog_upsert(c, &it, v, DIM, err, sizeof(err))) return NULL;
        }
    return c;
}

/* A popular list handed to the ranker on demand, counting the asks. */
typedef struct pop_list {
    rank_list list;
    int asked;
    int fail; /* the code to fail with, as a store that is down would */
} pop_list;

static int pop_fetch(void *arg, rank_list *out, char *err, size_t errlen) {
    pop_list *pl = arg;
    pl->asked++;
    if (pl->fail) return status_fail(pl->fail, err, errlen, "popular list unavailable");
    *out = pl->list;
    return AISLE_OK;
}

static pop_list last_pop;

static int rank(catalog *c, const rank_profile *p, const rank_entry *pop, size_t npop,
                int limit, const rank_filter *f, rank_result *r) {
    rank_request rq = {.profile = p, .popular = pop_fetch, .popular_arg = &last_pop,
                       .limit = limit, .filter = f};
    char err[256];
    last_pop = (pop_list){.list = {.items = pop, .n = npop}};
    return rank_recommend(c, &rq, r, err, sizeof(err));
}

/* rank_recommend on rq (no popular list), with err kept for the caller. */
static int rank_req(catalog *c, rank_request rq, rank_result *r, char *err) {
    return rank_recommend(c, &rq, r, err, 256);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int has_source(const rank_hit *h, int src) { return (h->sources & 1u << src) != 0; }

static int has_reason(const rank_hit *h, const char *part) {
    for (int i = 0; i < h->n_reasons; i++)
        if (strstr(h->reasons[i], part)) return 1;
    return 0;
}

static int has(const rank_result *r, const char *id) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->hits[i].item.item_id, id) == 0) return 1;
    return 0;
}

static void test_personalized_and_filtered(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 3.0}, {"a1", 1.0}};
    rank_profile p = {.items = items, .n_items = 2};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 7, NULL, &r) == 0);
    TEST_CHECK(r.n == 7);
    TEST_CHECK(last_pop.asked == 0); /* a full answer never reads the popular list */
    for (size_t i = 0; i < r.n; i++) {
        TEST_CHECK(r.hits[i].item.item_id[0] == 'a');
        TEST_CHECK(r.hits[i].n_reasons >= 1);
        TEST_CHECK(strstr(r.hits[i].reasons[0], "Similar to \"a0\"") != NULL);
        if (i) TEST_CHECK(r.hits[i - 1].score >= r.hits[i].score);
    }
    TEST_CHECK(!has(&r, "a0") && !has(&r, "a1"));
    TEST_CHECK(!has(&r, "a9"));
    rank_result_free(&r);
    /* More than the cluster holds: the rest is filled, still no repeats. */
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, NULL, &r) == 0);
    TEST_CHECK(r.n == 17);
    rank_result_free(&r);
    catalog_free(c);
}

static void test_creator_boost_and_reason(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}, {"b0", 1.0}};
    rank_entry creators[] = {{"cb", 5.0}};
    rank_profile p = {.items = items, .n_items = 2, .creators = creators, .n_creators = 1};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 1, NULL, &r) == 0);
    TEST_REQUIRE(r.n == 1);
    TEST_CHECK(r.hits[0].item.item_id[0] == 'b');
    TEST_CHECK(r.hits[0].n_reasons == 2 && strstr(r.hits[0].reasons[1], "cb") != NULL);
    rank_result_free(&r);
    catalog_free(c);
}

/* The exact settings' score is the personal feature plus the creator
 * boost, bit for bit; a fill item says so in its features. */
static void test_features_are_what_was_scored(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}, {"b0", 1.0}};
    rank_entry creators[] = {{"cb", 5.0}};
    rank_profile p = {.items = items, .n_items = 2, .creators = creators, .n_creators = 1};
    rank_result r;
    int filled = 0;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, NULL, &r) == 0);
    TEST_REQUIRE(r.n > 0);
    for (size_t i = 0; i < r.n; i++) {
        const float *f = r.hits[i].features;
        if (has_source(&r.hits[i], RANK_SRC_FILL)) {
            filled++;
            TEST_CHECK(f[RANK_F_SOURCE + RANK_SRC_FILL - 1] == 1.0f);
            continue;
        }
        TEST_CHECK(r.hits[i].score == f[RANK_F_PERSONAL] + 0.05f * f[RANK_F_CREATOR]);
        TEST_CHECK(f[RANK_F_CREATOR] == (r.hits[i].item.item_id[0] == 'b' ? 1.0f : 0.0f));
    }
    TEST_CHECK(filled == 0 || r.n == 17);
    rank_result_free(&r);
    catalog_free(c);
}

static void test_cold_start_uses_popular(void) {
    catalog *c = make_catalog();
    rank_profile p = {0};
    rank_entry pop[] = {{"b3", 10}, {"a9", 8}, {"gone", 5}, {"a2", 1}};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, pop, 4, 3, NULL, &r) == 0);
    TEST_REQUIRE(r.n == 3);
    TEST_CHECK_STR(r.hits[0].item.item_id, "b3");
    TEST_CHECK_STR(r.hits[1].item.item_id, "a2"); /* a9 out of stock, gone unknown */
    TEST_CHECK(strstr(r.hits[0].reasons[0], "Popular") != NULL);
    TEST_CHECK(strstr(r.hits[2].reasons[0], "In stock") != NULL);
    rank_result_free(&r);
    catalog_free(c);
}

/* A popular list resolved to slots once serves calls while the catalog's
 * ids stay as they were; once an item leaves and another takes its slot,
 * the ranker looks the ids up again rather than trust the old slots. */
static void test_resolved_list_follows_the_catalog(void) {
    catalog *c = make_catalog();
    rank_profile p = {0};
    rank_entry pop[] = {{"b3", 10}, {"a2", 8}};
    size_t slots[2];
    float v[DIM] = {0, 0, 1, 0};
    catalog_item fresh = {.item_id = "n1", .title = "n1", .creator_id = "cn", .category = "N",
                          .brand = "", .price_cents = 100, .in_stock = 1, .creator_name = ""};
    char err[256];
    rank_request rq = {.profile = &p, .popular = pop_fetch, .popular_arg = &last_pop,
                       .limit = 1};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    last_pop = (pop_list){.list = {.items = pop, .n = 2}};
    rank_list_resolve(c, &last_pop.list, slots);
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK && r.n == 1);
    TEST_CHECK_STR(r.hits[0].item.item_id, "b3");
    rank_result_free(&r);
    /* n1 takes b3's freed slot: the old slots would serve it as popular. */
    TEST_REQUIRE(catalog_delete(c, "b3") == AISLE_OK);
    TEST_REQUIRE(catalog_upsert(c, &fresh, v, DIM, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK && r.n == 1);
    TEST_CHECK_STR(r.hits[0].item.item_id, "a2");
    rank_result_free(&r);
    catalog_free(c);
}

static void test_dismissed_items_are_left_out_and_repel(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}, {"b0", 1.0}};
    rank_entry dismissed[] = {{"a1", 4.0}};
    rank_profile p = {.items = items, .n_items = 2, .dismissed = dismissed, .n_dismissed = 1};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 5, NULL, &r) == 0);
    TEST_CHECK(!has(&r, "a1"));
    for (size_t i = 0; i < r.n; i++) TEST_CHECK(r.hits[i].item.item_id[0] == 'b');
    rank_result_free(&r);
    catalog_free(c);
}

static void test_filters(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}};
    rank_profile p = {.items = items, .n_items = 1};
    rank_filter only_b = {.category = "B"};
    rank_filter cheap = {.max_price_cents = 50};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 4, &only_b, &r) == 0);
    TEST_CHECK(r.n == 4);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK_STR(r.hits[i].item.category, "B");
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 4, &cheap, &r) == 0);
    TEST_CHECK(r.n == 0); /* every item costs 100 */
    rank_result_free(&r);
    catalog_free(c);
}

static void test_price_floor_and_excluded_categories(void) {
    catalog *c = make_catalog();
    const char *not_a[] = {"A"};
    rank_filter dear = {.min_price_cents = 150};
    rank_filter not_in_a = {.exclude_categories = not_a, .n_exclude_categories = 1};
    rank_filter band = {.min_price_cents = 100, .max_price_cents = 100};
    rank_profile p = {0};
    rank_result r;
    char err[256];
    float v[DIM] = {0, 0, 1, 0};
    catalog_item lux = {"lux", "lux", "cc", "A", "", 200, 1, ""};
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(catalog_upsert(c, &lux, v, DIM, err, sizeof(err)) == 0);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &dear, &r) == 0);
    TEST_CHECK(r.n == 1 && has(&r, "lux"));
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &not_in_a, &r) == 0);
    TEST_CHECK(r.n == 10);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK_STR(r.hits[i].item.category, "B");
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &band, &r) == 0);
    TEST_CHECK(r.n == 19 && !has(&r, "lux")); /* both bounds are inclusive */
    rank_result_free(&r);
    catalog_free(c);
}

static void test_limit_is_clamped(void) {
    catalog *c = make_catalog();
    rank_profile p = {0};
    rank_result r;
    char id[16], err[256];
    float v[DIM] = {0, 0, 0, 1};
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 0, NULL, &r) == 0);
    TEST_CHECK(r.n == 1);
    rank_result_free(&r);
    /* Past RANK_MAX_LIMIT eligible items, a larger limit still gives the cap. */
    for (int i = 0; i < RANK_MAX_LIMIT + 30; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        catalog_item it = {id, id, "cx", "X", "", 100, 1, ""};
        TEST_REQUIRE(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == AISLE_OK);
    }
    TEST_REQUIRE(rank(c, &p, NULL, 0, RANK_MAX_LIMIT * 10, NULL, &r) == 0);
    TEST_CHECK(r.n == RANK_MAX_LIMIT);
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, RANK_MAX_LIMIT + 1, NULL, &r) == 0);
    TEST_CHECK(r.n == RANK_MAX_LIMIT);
    rank_result_free(&r);
    catalog_free(c);
}

/* A failing popular list is the caller's failure, with its own code: a
 * store that is down must reach the client as UNAVAILABLE, not INTERNAL. */
static void test_popular_failure_keeps_its_code(void) {
    catalog *c = make_catalog();
    rank_profile p = {0};
    rank_request rq = {.profile = &p, .popular = pop_fetch, .popular_arg = &last_pop,
                       .limit = 5};
    rank_result r;
    char err[256] = "";
    TEST_REQUIRE(c != NULL);
    last_pop = (pop_list){.fail = AISLE_EIO};
    TEST_CHECK(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(strstr(err, "unavailable") != NULL);
    TEST_CHECK(r.n == 0 && r.hits == NULL);
    last_pop = (pop_list){.fail = AISLE_ENOMEM};
    TEST_CHECK(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_ENOMEM);
    catalog_free(c);
}

static void test_filter_lists(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}};
    rank_profile p = {.items = items, .n_items = 1};
    const char *cb[] = {"cb"}, *ca[] = {"ca"}, *gone[] = {"a1", "a2"}, *ab[] = {"A", "B"};
    rank_filter only_cb = {.creators = cb, .n_creators = 1};
    rank_filter not_ca = {.exclude_creators = ca, .n_exclude_creators = 1};
    rank_filter not_ids = {.exclude_item_ids = gone, .n_exclude_item_ids = 2};
    rank_filter any_stock = {.categories = ab, .n_categories = 2, .include_out_of_stock = 1};
    rank_result r;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &only_cb, &r) == 0);
    TEST_CHECK(r.n == 10);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK_STR(r.hits[i].item.creator_id, "cb");
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &not_ca, &r) == 0);
    TEST_CHECK(r.n == 10 && !has(&r, "a3"));
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &not_ids, &r) == 0);
    TEST_CHECK(r.n == 16 && !has(&r, "a1") && !has(&r, "a2") && has(&r, "a3"));
    rank_result_free(&r);
    TEST_REQUIRE(rank(c, &p, NULL, 0, 30, &any_stock, &r) == 0);
    TEST_CHECK(r.n == 19 && has(&r, "a9")); /* out of stock, asked for */
    rank_result_free(&r);
    catalog_free(c);
}

/* A user who likes A more than B: the exact ranker gives A only; MMR on
 * the home surface brings B onto the first page and says why. */
static void test_mmr_shows_both_interests(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 3.0}, {"b0", 2.0}};
    rank_profile p = {.items = items, .n_items = 2};
    rank_result r;
    char err[256];
    int saw_b = 0;
    TEST_REQUIRE(c != NULL);
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 4}, &r, err) == 0);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK(r.hits[i].item.item_id[0] == 'a');
    rank_result_free(&r);
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 4,
                                            .settings = rank_surface("home")},
                          &r, err) == 0);
    TEST_REQUIRE(r.n == 4);
    TEST_CHECK(r.hits[0].item.item_id[0] == 'a');
    for (size_t i = 0; i < r.n; i++)
        if (r.hits[i].item.item_id[0] == 'b') {
            saw_b = 1;
            TEST_CHECK(has_reason(&r.hits[i], "variety"));
            TEST_CHECK(has_source(&r.hits[i], RANK_SRC_PROFILE));
        }
    TEST_CHECK(saw_b);
    rank_result_free(&r);
    catalog_free(c);
}

/* Adds items x0..x(n-1) on axis 3, each from its own creator. */
static void add_singles(catalog *c, int n) {
    char id[16], creator[16], err[256];
    float v[DIM] = {0.3f, 0, 0, 1};
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        snprintf(creator, sizeof(creator), "cx%d", i);
        catalog_item it = {id, id, creator, "X", "", 100, 1, ""};
        TEST_REQUIRE(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == AISLE_OK);
    }
}

static void test_creator_cap(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}};
    rank_profile p = {.items = items, .n_items = 1};
    rank_settings capped = *rank_surface("home");
    rank_result r;
    char err[256];
    int from_ca = 0, told = 0;
    TEST_REQUIRE(c != NULL);
    add_singles(c, 8);
    capped.cap_creator = 2;
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 8, .settings = &capped},
                          &r, err) == 0);
    TEST_CHECK(r.n == 8);
    for (size_t i = 0; i < r.n; i++) {
        from_ca += strcmp(r.hits[i].item.creator_id, "ca") == 0;
        told |= has_reason(&r.hits[i], "at most 2 per creator");
    }
    TEST_CHECK(from_ca == 2);
    TEST_CHECK(told);
    rank_result_free(&r);
    catalog_free(c);
}

static void test_request_sources(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}};
    rank_profile p = {.items = items, .n_items = 1};
    float near_b[DIM] = {0, 1, 0, 0}, bad[DIM] = {0, NAN, 0, 0};
    char err[256];
    rank_result r;
    TEST_REQUIRE(c != NULL);
    /* A query vector near B for a user of A: B first, labelled. */
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 3, .query_vector = near_b},
                          &r, err) == 0);
    TEST_REQUIRE(r.n == 3);
    for (size_t i = 0; i < r.n; i++) {
        TEST_CHECK(r.hits[i].item.item_id[0] == 'b');
        TEST_CHECK(has_source(&r.hits[i], RANK_SRC_VECTOR));
        TEST_CHECK(has_reason(&r.hits[i], "searched with"));
    }
    rank_result_free(&r);
    TEST_CHECK(rank_req(c, (rank_request){.limit = 3, .query_vector = bad}, &r, err) ==
               AISLE_EINVAL);
    TEST_CHECK(strstr(err, "query_vector[1]") != NULL);
    /* The product page of b3: its neighbours, never b3 itself. */
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 3, .context_item_id = "b3",
                                            .settings = rank_surface("product_page")},
                          &r, err) == 0);
    TEST_REQUIRE(r.n == 3);
    for (size_t i = 0; i < r.n; i++) {
        TEST_CHECK(r.hits[i].item.item_id[0] == 'b');
        TEST_CHECK(has_source(&r.hits[i], RANK_SRC_CONTEXT));
        TEST_CHECK(has_reason(&r.hits[i], "the product you are looking at"));
    }
    TEST_CHECK(!has(&r, "b3"));
    rank_result_free(&r);
    TEST_CHECK(rank_req(c, (rank_request){.limit = 3, .context_item_id = "nope"}, &r, err) ==
               AISLE_ENOTFOUND);
    catalog_free(c);
}

static void test_query_words_and_price(void) {
    catalog *c = make_catalog();
    const char *titles[] = {"Trail Runner 2", "Road shoe", "Trail shoes pro", "Coffee mug"};
    const int64_t prices[] = {7000, 5000, 12000, 900};
    rank_filter under80 = {.max_price_cents = 8000};
    rank_result r;
    char id[16], err[256];
    float v[DIM] = {0, 0, 0, 1};
    TEST_REQUIRE(c != NULL);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "t%d", i);
        catalog_item it = {id, (char *)titles[i], "ct", "outdoor", "Stride", prices[i], 1, ""};
        TEST_REQUIRE(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == AISLE_OK);
    }
    TEST_REQUIRE(rank_req(c, (rank_request){.limit = 10, .query = "trail shoes",
                                            .filter = &under80},
                          &r, err) == 0);
    TEST_CHECK(r.n == 2); /* t0 (trail) and t1 (shoe); t2 is too dear */
    TEST_CHECK(has(&r, "t0") && has(&r, "t1") && !has(&r, "t2"));
    for (size_t i = 0; i < r.n; i++) {
        TEST_CHECK(has_source(&r.hits[i], RANK_SRC_QUERY));
        TEST_CHECK(has_reason(&r.hits[i], "Matches your search \"trail shoes\""));
        TEST_CHECK(has_reason(&r.hits[i], "Under $80, as you asked"));
    }
    rank_result_free(&r);
    catalog_free(c);
}

static void test_served_items_are_left_out(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"a0", 1.0}};
    rank_profile p = {.items = items, .n_items = 1};
    uint32_t served[] = {rank_item_hash("a1"), rank_item_hash("a2"), rank_item_hash("b5")};
    rank_result r;
    char err[256];
    TEST_REQUIRE(c != NULL);
    qsort(served, 3, sizeof(served[0]), cmp_u32);
    TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = 30, .served = served,
                                            .n_served = 3},
                          &r, err) == 0);
    TEST_CHECK(r.n == 15 && !has(&r, "a1") && !has(&r, "a2") && !has(&r, "b5"));
    rank_result_free(&r);
    catalog_free(c);
}

/* The exact surface's threshold pass (only the neighbour-only candidates
 * that can still reach the page get their u·Q[j], and those whose bound is
 * below the search hits' page never enter the pool) gives the page that
 * scoring the whole pool gives: the same items, scores and features as
 * the same settings with a creator cap no page can reach, which turns the
 * pass off. A learned snapshot over 400 items with random vectors,
 * neighbour lists and biases. */
static void test_threshold_pass_keeps_the_page(void) {
    enum { N = 400, NB = 60, D = 8 };
    static float P[N * D], Q[N * D], w[N * NB], bias[N];
    static uint64_t off[N + 1];
    static uint32_t nbi[N * NB];
    static char ids[N][16];
    const char *idp[N];
    uint64_t rng = 99;
    catalog *c;
    catalog_config cfg;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = D;
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == AISLE_OK);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            P[i * D + j] = (float)(rng >> 40) / (float)(1 << 24) - 0.5f;
            Q[i * D + j] = P[i * D + j] * 0.5f + (float)((rng >> 20) & 1023) / 4096.0f;
        }
        for (int e = 0; e < NB; e++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            nbi[i * NB + e] = (uint32_t)((rng >> 33) % N);
            w[i * NB + e] = (float)((rng >> 13) & 255) / 512.0f;
        }
        off[i + 1] = (uint64_t)(i + 1) * NB;
        bias[i] = (float)(i % 7) / 50.0f;
        snprintf(ids[i], sizeof(ids[i]), "s%03d", i);
        idp[i] = ids[i];
        catalog_item it = {.item_id = ids[i], .title = ids[i], .creator_id = i % 3 ? "cx" : "cy",
                           .category = "", .brand = "", .price_cents = 100, .in_stock = 1,
                           .creator_name = ""};
        TEST_REQUIRE(catalog_upsert(c, &it, Q + i * D, D, err, sizeof(err)) == AISLE_OK);
    }
    catalog_snapshot snap = {.version = "t", .n_items = N, .dim = D, .item_ids = idp, .P = P,
                             .Q = Q, .nb_off = off, .nb_item = nbi, .nb_weight = w,
                             .bias = bias};
    TEST_REQUIRE(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    rank_entry items[] = {{"s001", 3}, {"s050", 2}, {"s123", 1.5}, {"s300", 1}, {"s399", 0.5}};
    rank_entry creators[] = {{"cy", 2}};
    /* With a creator the loose bound counts its boost; without (a learned
     * snapshot's profiles) the loose bound is the exact one and prunes. */
    rank_profile ps[] = {{.items = items, .n_items = 5, .creators = creators, .n_creators = 1},
                         {.items = items, .n_items = 5}};
    rank_settings whole = *rank_surface("");
    whole.cap_creator = RANK_MAX_LIMIT;
    for (int run = 0; run < 4; run++) {
        int limit = run % 2 ? 60 : 1;
        rank_profile p = ps[run / 2];
        rank_result a, b;
        TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = limit}, &a, err) ==
                     AISLE_OK);
        TEST_REQUIRE(rank_req(c, (rank_request){.profile = &p, .limit = limit, .settings = &whole},
                              &b, err) == AISLE_OK);
        TEST_CHECK(a.n == (size_t)limit && a.n == b.n);
        for (size_t i = 0; i < a.n && i < b.n; i++) {
            TEST_CHECK_STR(a.hits[i].item.item_id, b.hits[i].item.item_id);
            TEST_CHECK(a.hits[i].score == b.hits[i].score);
            TEST_CHECK(memcmp(a.hits[i].features, b.hits[i].features, sizeof(a.hits[i].features)) ==
                       0);
        }
        rank_result_free(&a);
        rank_result_free(&b);
    }
    catalog_free(c);
}

static void test_surfaces_by_name(void) {
    TEST_CHECK(rank_surface("") != NULL && rank_surface(NULL) == rank_surface(""));
    TEST_CHECK(rank_surface("home") && rank_surface("product_page") && rank_surface("cart"));
    TEST_CHECK(rank_surface("homepage") == NULL);
    TEST_CHECK_STR(rank_source_name(RANK_SRC_VECTOR), "query_vector");
}

/* Requests rank while the catalog feed upserts, moves and deletes items
 * (run under --config=tsan too): every answer is whole and only names items
 * that existed. */
typedef struct churn {
    catalog *c;
    atomic_int stop;
    atomic_int bad;
} churn;

static void *churn_reader(void *arg) {
    churn *ch = arg;
    rank_entry items[] = {{"a0", 1.0}, {"b1", 1.0}, {"n3", 2.0}};
    rank_profile p = {.items = items, .n_items = 3};
    rank_request rq = {.profile = &p, .limit = 8, .settings = rank_surface("home")};
    while (!atomic_load(&ch->stop)) {
        rank_result r;
        char err[256];
        if (rank_recommend(ch->c, &rq, &r, err, sizeof(err)) != AISLE_OK) atomic_fetch_add(&ch->bad, 1);
        for (size_t i = 0; i < r.n; i++)
            if (!r.hits[i].item.item_id || !*r.hits[i].item.item_id) atomic_fetch_add(&ch->bad, 1);
        rank_result_free(&r);
    }
    return NULL;
}

static void test_concurrent_updates(void) {
    churn ch = {make_catalog(), 0, 0};
    pthread_t t[3];
    char id[16], err[256];
    TEST_REQUIRE(ch.c != NULL);
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn_reader, &ch);
    for (int round = 0; round < 300; round++) {
        float v[DIM] = {0};
        v[round % DIM] = 1;
        snprintf(id, sizeof(id), "n%d", round % 40);
        catalog_item it = {id, id, "cn", "N", "", 100, round % 3 != 0, ""};
        TEST_CHECK(catalog_upsert(ch.c, &it, v, DIM, err, sizeof(err)) == AISLE_OK);
        if (round % 5 == 0) catalog_delete(ch.c, id);
    }
    atomic_store(&ch.stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    TEST_CHECK(atomic_load(&ch.bad) == 0);
    catalog_free(ch.c);
}

int main(void) {
    TEST_RUN(test_concurrent_updates);
    TEST_RUN(test_personalized_and_filtered);
    TEST_RUN(test_creator_boost_and_reason);
    TEST_RUN(test_features_are_what_was_scored);
    TEST_RUN(test_cold_start_uses_popular);
    TEST_RUN(test_resolved_list_follows_the_catalog);
    TEST_RUN(test_dismissed_items_are_left_out_and_repel);
    TEST_RUN(test_filters);
    TEST_RUN(test_price_floor_and_excluded_categories);
    TEST_RUN(test_filter_lists);
    TEST_RUN(test_mmr_shows_both_interests);
    TEST_RUN(test_creator_cap);
    TEST_RUN(test_request_sources);
    TEST_RUN(test_query_words_and_price);
    TEST_RUN(test_served_items_are_left_out);
    TEST_RUN(test_surfaces_by_name);
    TEST_RUN(test_threshold_pass_keeps_the_page);
    TEST_RUN(test_limit_is_clamped);
    TEST_RUN(test_popular_failure_keeps_its_code);
    return test_summary();
}
