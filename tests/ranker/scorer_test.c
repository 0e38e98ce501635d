/* Tests for ranker/scorer: a good file overrides the built-in surfaces and
 * adds new ones; every kind of bad file is refused with its line; a
 * changed weight changes the order. */
#include "ranker/scorer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test.h"

#define DIM 4

static const char *write_file(const char *text) {
    static char path[64];
    FILE *f;
    snprintf(path, sizeof(path), "/tmp/aisle-scorer-test-%d.txt", (int)getpid());
    if (!(f = fopen(path, "w"))) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_good_file(void) {
    const char *path = write_file("# hand-set weights\n"
                                  "aisle-scorer 1\n"
                                  "surface home\n"
                                  "  weight popular 0.5   # more trending\n"
                                  "  cap creator 2\n"
                                  "surface gift\n"
                                  "  budget popular 50\n"
                                  "  weight popular 1\n"
                                  "  mmr 0.4\n"
                                  "  seed_nprobe 0\n"
                                  "  affinity brand 0.2\n"
                                  "end\n");
    scorer *sc;
    char err[256];
    const rank_settings *home, *gift;
    TEST_REQUIRE(path && scorer_load(path, &sc, err, sizeof(err)) == AISLE_OK);
    home = scorer_surface(sc, "home");
    gift = scorer_surface(sc, "gift");
    TEST_REQUIRE(home && gift);
    TEST_CHECK(home->weight[RANK_SRC_POPULAR] == 0.5f && home->cap_creator == 2);
    /* What the file does not say stays as built in. */
    TEST_CHECK(home->mmr_lambda == rank_surface("home")->mmr_lambda);
    TEST_CHECK(home->seed_nprobe == rank_surface("home")->seed_nprobe && home->seed_nprobe > 0);
    TEST_CHECK(home->budget[RANK_SRC_PROFILE] == rank_surface("home")->budget[RANK_SRC_PROFILE]);
    TEST_CHECK(gift->budget[RANK_SRC_POPULAR] == 50 && gift->mmr_lambda == 0.4f &&
               gift->w_brand == 0.2f && gift->seed_nprobe == 0);
    TEST_CHECK_STR(gift->name, "gift");
    TEST_CHECK(scorer_surface(sc, "cart") == rank_surface("cart"));
    TEST_CHECK(scorer_surface(sc, "nope") == NULL && scorer_surface(NULL, "home"));
    free(sc);
    remove(path);
}

static void test_bad_files_are_refused(void) {
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"surface home\nend\n", ":1: not an aisle-scorer file"},
        {"aisle-scorer 2\nend\n", "version 2; this server reads version 1"},
        {"aisle-scorer 1\nsurface home\nweight popular 0.5\n", "no 'end' line"},
        {"aisle-scorer 1\nweight popular 1\nend\n", ":2: bad directive 'weight'"},
        {"aisle-scorer 1\nsurface home\nweight fame 1\nend\n", ":3: bad directive"},
        {"aisle-scorer 1\nsurface home\nweight popular nan\nend\n", ":3: bad directive"},
        {"aisle-scorer 1\nsurface home\nmmr 1.5\nend\n", ":3: bad directive 'mmr'"},
        {"aisle-scorer 1\nsurface home\nbudget profile 9999\nend\n", ":3:"},
        {"aisle-scorer 1\nsurface home\ncap colour 2\nend\n", ":3:"},
        {"aisle-scorer 1\nend\nsurface home\n", ":3: text after 'end'"},
    };
    scorer *sc;
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = write_file(bad[i].text);
        TEST_REQUIRE(path);
        TEST_CHECK(scorer_load(path, &sc, err, sizeof(err)) == AISLE_EFORMAT);
        TEST_CHECK(sc == NULL);
        if (!strstr(err, bad[i].why)) fprintf(stderr, "case %zu: %s\n", i, err);
        TEST_CHECK(strstr(err, bad[i].why) != NULL);
        remove(path);
    }
    TEST_CHECK(scorer_load("/nonexistent/scorer", &sc, err, sizeof(err)) == AISLE_EIO);
}

static const rank_entry hot_list[] = {{"hot", 10}};

static int pop_fetch(void *arg, rank_list *out, char *err, size_t errlen) {
    (void)arg;
    (void)err;
    (void)errlen;
    *out = (rank_list){.items = hot_list, .n = 1};
    return AISLE_OK;
}

/* Two items: "near" the user's vector, "hot" popular. Weights decide. */
static void test_weights_change_the_order(void) {
    catalog_config cfg;
    catalog *c;
    char err[256];
    float vn[DIM] = {1, 0, 0, 0}, vh[DIM] = {0, 1, 0, 0}, vp[DIM] = {1, 0.1f, 0, 0};
    catalog_item near = {"near", "near", "c1", "A", "", 100, 1, ""};
    catalog_item hot = {"hot", "hot", "c2", "B", "", 100, 1, ""};
    catalog_item mine = {"mine", "mine", "c3", "A", "", 100, 1, ""};
    rank_entry items[] = {{"mine", 1}};
    rank_profile p = {.items = items, .n_items = 1};
    rank_result r;
    scorer *sc;
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(catalog_upsert(c, &near, vn, DIM, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(catalog_upsert(c, &hot, vh, DIM, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(catalog_upsert(c, &mine, vp, DIM, err, sizeof(err)) == AISLE_OK);
    for (int trending = 0; trending < 2; trending++) {
        const char *path = write_file(trending ? "aisle-scorer 1\nsurface t\nbudget popular 10\n"
                                                 "weight popular 5\nend\n"
                                               : "aisle-scorer 1\nsurface t\nbudget popular 10\n"
                                                 "weight popular 0.01\nend\n");
        TEST_REQUIRE(path && scorer_load(path, &sc, err, sizeof(err)) == AISLE_OK);
        rank_request rq = {.profile = &p, .limit = 1, .popular = pop_fetch,
                           .settings = scorer_surface(sc, "t")};
        TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
        TEST_REQUIRE(r.n == 1);
        TEST_CHECK_STR(r.hits[0].item.item_id, trending ? "hot" : "near");
        rank_result_free(&r);
        free(sc);
        remove(path);
    }
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_good_file);
    TEST_RUN(test_bad_files_are_refused);
    TEST_RUN(test_weights_change_the_order);
    return test_summary();
}
