/* Tests for services/synth: determinism and the taste structure the demo
 * and the benchmarks rely on, and the tastes file simulations read. */
#include "services/devtools/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static float dot(const float *a, const float *b, int d) {
    float s = 0;
    for (int i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static void test_deterministic_and_normalized(void) {
    synth_config cfg;
    synth_world *a, *b;
    char err[256];
    synth_config_default(&cfg);
    cfg.n_items = 600;
    TEST_REQUIRE(synth_world_new(&cfg, &a, err, sizeof(err)) == 0);
    TEST_REQUIRE(synth_world_new(&cfg, &b, err, sizeof(err)) == 0);
    TEST_CHECK(memcmp(a->vecs, b->vecs, cfg.n_items * cfg.dim * sizeof(float)) == 0);
    TEST_CHECK_STR(a->items[17].title, b->items[17].title);
    for (size_t i = 0; i < cfg.n_items; i++) {
        TEST_CHECK(fabsf(dot(a->items[i].vec, a->items[i].vec, cfg.dim) - 1) < 1e-4f);
        TEST_CHECK(a->items[i].price_cents > 0);
    }
    synth_world_free(a);
    synth_world_free(b);
}

static void test_categories_cluster(void) {
    synth_config cfg;
    synth_world *w;
    char err[256];
    double same = 0, diff = 0;
    int ns = 0, nd = 0;
    synth_config_default(&cfg);
    cfg.n_items = 400;
    TEST_REQUIRE(synth_world_new(&cfg, &w, err, sizeof(err)) == 0);
    for (size_t i = 0; i < 200; i++)
        for (size_t j = i + 1; j < 200; j++) {
            float d = dot(w->items[i].vec, w->items[j].vec, cfg.dim);
            if (w->items[i].cat == w->items[j].cat) same += d, ns++;
            else diff += d, nd++;
        }
    TEST_CHECK(ns > 0 && nd > 0 && same / ns > diff / nd + 0.3);
    synth_world_free(w);
}

static void test_signals_follow_tastes(void) {
    synth_config cfg;
    synth_world *w;
    char err[256], ev[32];
    uint64_t rng = 7;
    int fav = 0, total = 2000;
    synth_config_default(&cfg);
    TEST_REQUIRE(synth_world_new(&cfg, &w, err, sizeof(err)) == 0);
    for (int i = 0; i < total; i++) {
        Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
        synth_next_signal(w, 3, &rng, 1, ev, &s);
        TEST_CHECK_STR(s.user_id, w->users[3].id);
        if (s.kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR) continue;
        int k = w->items[strtoul(s.item_id + 1, NULL, 10)].cat;
        fav += k == w->users[3].cats[0] || k == w->users[3].cats[1];
    }
    TEST_CHECK(fav > total * 6 / 10);
    synth_world_free(w);
}

/* A line per shopper naming what their signals follow. */
static void test_tastes_file(void) {
    synth_config cfg;
    synth_world *w;
    char err[256], line[256], user[32], c1[32], c2[32], creator[32];
    long long budget;
    synth_config_default(&cfg);
    cfg.n_users = 20;
    TEST_REQUIRE(synth_world_new(&cfg, &w, err, sizeof(err)) == 0);
    FILE *f = tmpfile();
    TEST_REQUIRE(f && synth_write_tastes(w, f) == 0);
    rewind(f);
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        const synth_user *u = &w->users[n];
        TEST_REQUIRE(n < cfg.n_users);
        TEST_CHECK(sscanf(line, "%31s %31s %31s %31s %lld", user, c1, c2, creator, &budget) == 5);
        TEST_CHECK_STR(user, u->id);
        TEST_CHECK_STR(c1, synth_category(w, u->cats[0]));
        TEST_CHECK_STR(c2, synth_category(w, u->cats[1]));
        TEST_CHECK(atoi(creator + 1) == (int)u->fav_creator && budget == u->budget_cents);
        n++;
    }
    TEST_CHECK(n == cfg.n_users);
    fclose(f);
    synth_world_free(w);
}

/* Creators have names, distinct for the default 200 and the same for
 * every item of one creator. */
static void test_creator_names(void) {
    synth_config cfg;
    synth_world *w;
    char err[256], a[40], b[40];
    synth_config_default(&cfg);
    TEST_REQUIRE(synth_world_new(&cfg, &w, err, sizeof(err)) == 0);
    for (size_t i = 0; i < cfg.n_items; i++) {
        synth_creator_name(strtoul(w->items[i].creator_id + 1, NULL, 10), a, sizeof(a));
        TEST_CHECK_STR(w->items[i].creator_name, a);
    }
    for (size_t c = 1; c < 300; c++) {
        synth_creator_name(c - 1, a, sizeof(a));
        synth_creator_name(c, b, sizeof(b));
        TEST_CHECK(*a && strcmp(a, b) != 0);
    }
    synth_creator_name(0, a, sizeof(a));
    synth_creator_name(256, b, sizeof(b));
    TEST_CHECK(strcmp(a, b) != 0); /* past first × last, a number tells them apart */
    synth_world_free(w);
}

static void test_bad_sizes(void) {
    synth_config cfg;
    synth_world *w;
    char err[256];
    synth_config_default(&cfg);
    cfg.dim = 0;
    TEST_CHECK(synth_world_new(&cfg, &w, err, sizeof(err)) == -1);
}

int main(void) {
    TEST_RUN(test_deterministic_and_normalized);
    TEST_RUN(test_categories_cluster);
    TEST_RUN(test_signals_follow_tastes);
    TEST_RUN(test_tastes_file);
    TEST_RUN(test_creator_names);
    TEST_RUN(test_bad_sizes);
    return test_summary();
}
