/* Tests for services/recommend on a real redis-server: one read of the
 * profile gives the ranker a faithful view, the page leaves out what the
 * user has seen, every bound of a call is checked, pages never repeat and
 * their tokens cannot be forged, reused by another request or kept past
 * their time; with Redis gone recommend_rank keeps its code (AISLE_EIO)
 * while a call is answered degraded. */
#include "services/recommend/recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        catalog_item it = {(char *)ids[i], (char *)ids[i], "cr", "cat", "", 100, 1, ""};
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
    return profile_apply(ps, &e, 1, NULL, err, sizeof(err));
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

/* A plain call for user, every string set as the handlers set them. */
static recommend_call plain(const char *user, int limit) {
    return (recommend_call){.user_id = user, .limit = limit, .query = "",
                            .context_item_id = "", .surface = "", .page_token = ""};
}

static int call_fails(catalog *c, profile_store *ps, const recommend_call *call, int code,
                      const char *part) {
    recommend_answer a;
    char err[256] = "";
    int rc = recommend_answer_call(c, ps, call, clock_wall_ms(), &a, err, sizeof(err));
    recommend_answer_clear(&a);
    if (rc != code || !strstr(err, part)) {
        fprintf(stderr, "got %d '%s', wanted %d '%s'\n", rc, err, code, part);
        return 0;
    }
    return 1;
}

static void test_bounds(void) {
    catalog *c = make_catalog();
    profile_store *ps = open_store();
    Aisle__V1__Filter band = AISLE__V1__FILTER__INIT, many = AISLE__V1__FILTER__INIT;
    char *names[RECOMMEND_MAX_FILTER_VALUES + 1], longq[RECOMMEND_MAX_QUERY + 2];
    float short_v[DIM - 1] = {0}, nan_v[DIM] = {0, NAN, 0, 0};
    recommend_call k;
    TEST_REQUIRE(c && ps);
    k = plain("", 5);
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "user_id is empty"));
    k = plain("u", RANK_MAX_LIMIT + 1);
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "limit 501 is outside 1..500"));
    k = plain("u", -1);
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "limit -1"));
    k = plain("u", 5);
    k.surface = "homepage";
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "unknown surface 'homepage'"));
    k = plain("u", 5);
    k.query_vector = short_v;
    k.n_query_vector = DIM - 1;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "query_vector has 3 values"));
    k.query_vector = nan_v;
    k.n_query_vector = DIM;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "query_vector[1] is not a finite"));
    k = plain("u", 5);
    band.min_price_cents = 500;
    band.max_price_cents = 100;
    k.filter = &band;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "min_price_cents 500 is above"));
    for (int i = 0; i <= RECOMMEND_MAX_FILTER_VALUES; i++) names[i] = "x";
    many.categories = names;
    many.n_categories = RECOMMEND_MAX_FILTER_VALUES + 1;
    k.filter = &many;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "filter categories has 257 values"));
    k = plain("u", 5);
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = 0;
    k.query = longq;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "query is 1001 bytes"));
    k = plain("", 5);
    k.similar = 1;
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "item_id is empty"));
    k.context_item_id = "nope";
    TEST_CHECK(call_fails(c, ps, &k, AISLE_ENOTFOUND, "'nope' is not in the catalog"));
    k = plain("u", 5);
    k.page_token = "AAAA";
    TEST_CHECK(call_fails(c, ps, &k, AISLE_EINVAL, "page_token"));
    profile_store_close(ps);
    catalog_free(c);
}

/* Reads page k into ids (appending to *n) and returns its next token
 * (owned), or NULL. */
static char *page(catalog *c, profile_store *ps, const recommend_call *k, char ids[][8],
                  size_t *n, size_t *got) {
    recommend_answer a;
    char err[256], *next = NULL;
    *got = 0;
    if (recommend_answer_call(c, ps, k, clock_wall_ms(), &a, err, sizeof(err)) != AISLE_OK) {
        fprintf(stderr, "page: %s\n", err);
        return NULL;
    }
    for (size_t i = 0; i < a.rr.n; i++) {
        for (size_t j = 0; j < *n; j++) TEST_CHECK(strcmp(ids[j], a.rr.hits[i].item.item_id));
        snprintf(ids[(*n)++], 8, "%s", a.rr.hits[i].item.item_id);
    }
    *got = a.rr.n;
    if (a.next_page_token) next = strdup(a.next_page_token);
    recommend_answer_clear(&a);
    return next;
}

/* Four unseen items in pages of 2: two full pages, then an empty one
 * without a token; no repeats; a token verifies only for its own request,
 * undamaged and fresh. */
static void test_paging(void) {
    catalog *c = make_catalog();
    profile_store *ps = open_store();
    recommend_answer a;
    recommend_call k = plain("u3", 2), other;
    char err[256], ids[8][8], *t1, *t2, *t3, keep;
    size_t n = 0, got;
    TEST_REQUIRE(c && ps);
    TEST_REQUIRE(view(ps, "u3", "a0", AISLE__V1__SIGNAL_KIND__CLICK) == 1);
    t1 = page(c, ps, &k, ids, &n, &got);
    TEST_REQUIRE(t1 && got == 2);
    other = k;
    other.page_token = t1;
    other.user_id = "u4";
    TEST_CHECK(call_fails(c, ps, &other, AISLE_EINVAL, "another request"));
    other.user_id = "u3";
    other.surface = "home";
    TEST_CHECK(call_fails(c, ps, &other, AISLE_EINVAL, "another request"));
    other.surface = "";
    TEST_CHECK(recommend_answer_call(c, ps, &other, clock_wall_ms() + 2 * 3600 * 1000, &a, err,
                                     sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "stale"));
    recommend_answer_clear(&a);
    keep = t1[5];
    t1[5] = keep == 'A' ? 'B' : 'A';
    TEST_CHECK(call_fails(c, ps, &other, AISLE_EINVAL, "does not verify"));
    t1[5] = keep;
    k.page_token = t1;
    t2 = page(c, ps, &k, ids, &n, &got);
    TEST_REQUIRE(t2 && got == 2);
    k.page_token = t2;
    t3 = page(c, ps, &k, ids, &n, &got);
    TEST_CHECK(t3 == NULL && got == 0);
    free(t1);
    free(t2);
    free(t3);
    profile_store_close(ps);
    catalog_free(c);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* The first item of user's page on surface, now_ms later than the start. */
static char first_of(catalog *c, profile_store *ps, const char *surface, int64_t now_ms) {
    recommend_answer a;
    recommend_call k = plain("u5", 1);
    char err[256], first = 0;
    k.surface = surface;
    if (recommend_answer_call(c, ps, &k, now_ms, &a, err, sizeof(err)) == AISLE_OK && a.rr.n)
        first = a.rr.hits[0].item.item_id[0];
    else
        fprintf(stderr, "first_of: %s\n", err);
    recommend_answer_clear(&a);
    return first;
}

/* AISLE_SCORER names a file read again when it changes: a new surface, a
 * weight turned around changes the order, a corrupt file is refused and
 * the settings in use stay. */
static void test_scorer_file_reloads(void) {
    catalog *c = make_catalog();
    profile_store *ps = open_store();
    char path[64];
    int64_t now = clock_wall_ms();
    TEST_REQUIRE(c && ps);
    TEST_REQUIRE(view(ps, "u5", "a0", AISLE__V1__SIGNAL_KIND__CLICK) == 1);
    snprintf(path, sizeof(path), "/tmp/aisle-recommend-scorer-%d.txt", (int)getpid());
    write_text(path, "aisle-scorer 1\nsurface t\nweight profile 1\nend\n");
    setenv("AISLE_SCORER", path, 1);
    TEST_CHECK(first_of(c, ps, "t", now) == 'a');
    write_text(path, "aisle-scorer 1\nsurface t\nweight profile -1\nend\n");
    TEST_CHECK(first_of(c, ps, "t", now + 2000) == 'b');
    write_text(path, "aisle-scorer 1\nsurface t\nweight profile 1\n");
    TEST_CHECK(first_of(c, ps, "t", now + 4000) == 'b');
    unsetenv("AISLE_SCORER");
    remove(path);
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
    /* Past the shared popular list's second, the list must come from Redis. */
    clock_sleep_ms(RECOMMEND_CACHE_MS + 100);
    TEST_REQUIRE(recommend_user_load(ps, "u2", clock_wall_ms(), &u, err, sizeof(err)) == AISLE_OK);
    redisproc_stop(&rp);
    /* Four unseen items cannot fill ten places: the popular list is asked. */
    TEST_CHECK(recommend_rank(c, ps, &u, 10, NULL, &rr, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(rr.n == 0);
    TEST_CHECK(recommend_for(c, ps, "u2", 3, NULL, &rr, err, sizeof(err)) == AISLE_EIO);
    recommend_user_clear(&u);
    /* A call is answered all the same: not personalized, marked, full. */
    recommend_answer a;
    recommend_call k = plain("u2", 3);
    TEST_REQUIRE(recommend_answer_call(c, ps, &k, clock_wall_ms(), &a, err, sizeof(err)) ==
                 AISLE_OK);
    TEST_CHECK(a.degraded && strstr(a.degraded_reason, "unreachable") != NULL);
    TEST_CHECK(a.rr.n == 3);
    recommend_answer_clear(&a);
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
    TEST_RUN(test_bounds);
    TEST_RUN(test_paging);
    TEST_RUN(test_scorer_file_reloads);
    TEST_RUN(test_redis_down_while_filling);
    redisproc_stop(&rp);
    return test_summary();
}
