/* Tests for ranker/rules (the file: directives, refusals with FILE:LINE)
 * and the ranker's use of them: pins at their positions when eligible,
 * boosts multiplying a candidate's score, both "Featured". */
#include "ranker/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/base/status.h"
#include "tests/test.h"

#define DIM 4

static char path[64];

/* Writes text to a temporary file named in path. */
static int write_file(const char *text) {
    FILE *f;
    snprintf(path, sizeof(path), "/tmp/rules_test_%d.txt", (int)getpid());
    if (!(f = fopen(path, "w"))) return -1;
    fputs(text, f);
    return fclose(f);
}

static int load(const char *text, rules **r, char *err, size_t errlen) {
    if (write_file(text)) return AISLE_EIO;
    return rules_load(path, r, err, errlen);
}

static void test_file_reads_and_refuses(void) {
    rules *r;
    char err[256];
    const rank_rule *rr;
    size_t n;
    TEST_REQUIRE(load("aisle-rules 1\n# merchandising\nsurface home\npin p1 1\nboost p1 2.5\n"
                      "boost p2 0.5\nsurface cart\npin p3 4\nend\n",
                      &r, err, sizeof(err)) == AISLE_OK);
    rr = rules_for(r, "home", &n);
    TEST_REQUIRE(rr && n == 2);
    TEST_CHECK_STR(rr[0].item_id, "p1");
    TEST_CHECK(rr[0].pin == 1 && rr[0].boost == 2.5f);
    TEST_CHECK(rr[1].pin == 0 && rr[1].boost == 0.5f);
    TEST_CHECK(rules_for(r, "cart", &n) && n == 1);
    TEST_CHECK(!rules_for(r, "", &n) && n == 0);
    rules_free(r);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"aisle-rules 2\nend\n", ":1: version 2; this server reads version 1"},
        {"aisle-scorer 1\nend\n", ":1: not an aisle-rules file"},
        {"aisle-rules 1\npin p1 1\nend\n", ":2: bad directive 'pin': a 'surface NAME' line"},
        {"aisle-rules 1\nsurface home\npin p1 0\nend\n", ":3: bad directive 'pin': position '0'"},
        {"aisle-rules 1\nsurface home\npin p1 1\npin p2 1\nend\n",
         ":4: bad directive 'pin': position 1 is p1's already"},
        {"aisle-rules 1\nsurface home\npin p1 1\npin p1 2\nend\n", ":4: bad directive 'pin': p1 is"},
        {"aisle-rules 1\nsurface home\nboost p1 0\nend\n", ":3: bad directive 'boost': factor '0'"},
        {"aisle-rules 1\nsurface home\nboost p1 1e9\nend\n", ":3: bad directive 'boost'"},
        {"aisle-rules 1\nsurface home\nhide p1\nend\n", ":3: bad directive 'hide'"},
        {"aisle-rules 1\nsurface home\npin p1 1\n", ": no 'end' line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = NULL;
        TEST_CHECK(load(bad[i].text, &r, err, sizeof(err)) == AISLE_EFORMAT);
        TEST_CHECK(r == NULL);
        if (!strstr(err, bad[i].want) || strncmp(err, path, strlen(path)))
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err, bad[i].want);
        TEST_CHECK(strstr(err, bad[i].want) != NULL && strncmp(err, path, strlen(path)) == 0);
    }
    TEST_CHECK(rules_load("/nonexistent/rules", &r, err, sizeof(err)) == AISLE_EIO);
    unlink(path);
}

/* Items i0..i9 along one axis, better the higher the number (for a user of
 * i9), "x" out of stock. */
static catalog *make_catalog(void) {
    catalog *c;
    catalog_config cfg;
    char err[256], id[16];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (catalog_new(&cfg, &c, err, sizeof(err))) return NULL;
    for (int i = 0; i <= 10; i++) {
        float v[DIM] = {1, 0.1f * (float)i, 0, 0};
        snprintf(id, sizeof(id), i == 10 ? "x" : "i%d", i);
        catalog_item it = {id, id, "c", "K", "", 100, i != 10, ""};
        if (catalog_upsert(c, &it, v, DIM, err, sizeof(err))) return NULL;
    }
    return c;
}

static int has_reason(const rank_hit *h, const char *want) {
    for (int i = 0; i < h->n_reasons; i++)
        if (strcmp(h->reasons[i], want) == 0) return 1;
    return 0;
}

static void test_pins_and_boosts_on_the_page(void) {
    catalog *c = make_catalog();
    rank_entry items[] = {{"i9", 1}};
    rank_profile p = {.items = items, .n_items = 1};
    rank_rule rules[] = {{"i0", 2, 1}, {"x", 1, 1}, {"i3", 0, 50}, {"i8", 5, 1}, {"i1", 3, 1}};
    rank_request rq = {.profile = &p, .limit = 4, .settings = rank_surface("home"),
                       .rules = rules, .n_rules = 5};
    rank_result r;
    char err[256];
    TEST_REQUIRE(c);
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(r.n == 4);
    /* The boost lifts i3 above i8 and i7; i0 and i1 come in at 2 and 3
     * (two hits leave the full page); x is out of stock, so its pin does
     * not show; i8's pin at 5 is past the page. */
    TEST_CHECK_STR(r.hits[0].item.item_id, "i3");
    TEST_CHECK_STR(r.hits[1].item.item_id, "i0");
    TEST_CHECK_STR(r.hits[2].item.item_id, "i1");
    TEST_CHECK_STR(r.hits[0].reasons[0], "Featured");
    TEST_CHECK_STR(r.hits[1].reasons[0], "Featured");
    TEST_CHECK(r.hits[1].score <= r.hits[0].score && r.hits[2].score >= r.hits[3].score);
    for (size_t i = 0; i < r.n; i++) {
        TEST_CHECK(strcmp(r.hits[i].item.item_id, "x") != 0);
        TEST_CHECK((i < 3) == has_reason(&r.hits[i], "Featured"));
    }
    rank_result_free(&r);
    /* A filter holds against a pin. */
    const char *not_i0[] = {"i0"};
    rank_filter f = {.exclude_item_ids = not_i0, .n_exclude_item_ids = 1};
    rq.filter = &f;
    TEST_REQUIRE(rank_recommend(c, &rq, &r, err, sizeof(err)) == AISLE_OK);
    for (size_t i = 0; i < r.n; i++) TEST_CHECK(strcmp(r.hits[i].item.item_id, "i0") != 0);
    rank_result_free(&r);
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_file_reads_and_refuses);
    TEST_RUN(test_pins_and_boosts_on_the_page);
    return test_summary();
}
