/* Tests for experiment definitions and assignment: SipHash vectors, bucket
 * and variant distributions (chi-square), layer orthogonality and
 * exclusivity, stability across independent builds and reloads, allowlists,
 * the holdout, parameter lookup and validation errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/experiment/expset.h"
#include "services/experiment/spec.h"
#include "services/experiment/stats.h"
#include "tests/test.h"

#define USERS 200000

static char err[512];

/* s with the experiment of spec put in (s is released); NULL on failure,
 * with err set. */
static exp_set *put(exp_set *s, const char *spec) {
    Aisle__V1__Experiment *e;
    exp_set *next = NULL;
    if (exp_spec_parse_line(spec, &e, err, sizeof(err)) != AISLE_OK) return NULL;
    int rc = exp_set_put_experiment(s, e, &next, err, sizeof(err));
    aisle__v1__experiment__free_unpacked(e, NULL);
    if (rc != AISLE_OK) return NULL;
    exp_set_release(s);
    return next;
}

static exp_set *empty(void) {
    exp_set *s;
    return exp_set_empty(&s) == AISLE_OK ? s : NULL;
}

static const char *uid(int i) {
    static char b[32];
    snprintf(b, sizeof(b), "u%07d", i);
    return b;
}

static void test_siphash_vectors(void) {
    /* The reference vectors of the SipHash paper: key 00..0f. */
    uint8_t k[16], m[15];
    for (int i = 0; i < 16; i++) k[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++) m[i] = (uint8_t)i;
    TEST_CHECK(exp_siphash(k, m, 0) == 0x726fdb47dd0e0e31ULL);
    TEST_CHECK(exp_siphash(k, m, 15) == 0xa129ca6149be45e5ULL);
    TEST_CHECK(exp_siphash(k, m, 8) == 0x93f5f5799a932462ULL);
    /* Any id length: hashed in pieces, never copied. */
    static char longid[5000];
    memset(longid, 'x', sizeof(longid) - 1);
    TEST_CHECK(exp_bucket("salt", longid) < EXP_BUCKETS);
    TEST_CHECK(exp_bucket("ab", "c") != exp_bucket("a", "bc"));
}

static void test_bucket_uniform(void) {
    /* 10,000 buckets over 500,000 users: chi-square with 9,999 degrees of
     * freedom, refused only below p = 0.0001. */
    static unsigned count[EXP_BUCKETS];
    memset(count, 0, sizeof(count));
    const int n = 500000;
    for (int i = 0; i < n; i++) count[exp_bucket("salt", uid(i))]++;
    double e = (double)n / EXP_BUCKETS, chi = 0;
    for (int b = 0; b < EXP_BUCKETS; b++) chi += (count[b] - e) * (count[b] - e) / e;
    double p = stats_chi2_sf(chi, EXP_BUCKETS - 1);
    printf("buckets: chi2 %.0f on 9999 df, p %.3f\n", chi, p);
    TEST_CHECK(p > 1e-4);
}

static void test_variant_distribution(void) {
    exp_set *s = put(empty(), "name=split layer=rank share=100% variant=a variant=b variant=c "
                              "weight=2");
    TEST_REQUIRE(s);
    unsigned n[3] = {0};
    for (int i = 0; i < USERS; i++) {
        exp_assignment a;
        exp_assign(s, uid(i), &a);
        TEST_REQUIRE(a.n == 1);
        n[a.picks[0].variant[0] - 'a']++;
    }
    double want[3] = {USERS / 4.0, USERS / 4.0, USERS / 2.0}, chi = 0;
    for (int i = 0; i < 3; i++) chi += (n[i] - want[i]) * (n[i] - want[i]) / want[i];
    printf("variants 1:1:2: %u %u %u, chi2 %.2f p %.3f\n", n[0], n[1], n[2], chi,
           stats_chi2_sf(chi, 2));
    TEST_CHECK(stats_chi2_sf(chi, 2) > 1e-3);
    exp_set_release(s);
}

/* Two layers of 50/50 experiments: a user's variant in one says nothing of
 * the other (2x2 independence chi-square); within a layer three experiments
 * 20/30/50 % never share a user and get their shares. */
static void test_layers(void) {
    exp_set *s = put(empty(), "name=r1 layer=rank share=20% variant=a variant=b");
    s = s ? put(s, "name=r2 layer=rank share=30% variant=a variant=b") : NULL;
    s = s ? put(s, "name=r3 layer=rank share=50% variant=a variant=b") : NULL;
    s = s ? put(s, "name=shop layer=shop share=100% variant=fast shop.mode=fast variant=slow "
                   "shop.mode=contemplating") : NULL;
    TEST_REQUIRE(s);
    unsigned in[3] = {0}, table[2][2] = {{0}};
    for (int i = 0; i < USERS; i++) {
        exp_assignment a;
        exp_assign(s, uid(i), &a);
        TEST_REQUIRE(a.n == 2);
        TEST_CHECK_STR(a.picks[0].layer, "rank");
        in[a.picks[0].experiment[1] - '1']++;
        table[a.picks[0].variant[0] == 'b'][strcmp(a.picks[1].variant, "slow") == 0]++;
    }
    TEST_CHECK(in[0] + in[1] + in[2] == USERS);
    TEST_CHECK(abs((int)in[0] - USERS / 5) < 1500 && abs((int)in[1] - USERS * 3 / 10) < 1500);
    double chi = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            double e = (double)(table[r][0] + table[r][1]) * (table[0][c] + table[1][c]) / USERS;
            chi += (table[r][c] - e) * (table[r][c] - e) / e;
        }
    printf("layers rank x shop: chi2 %.2f p %.3f\n", chi, stats_chi2_sf(chi, 1));
    TEST_CHECK(stats_chi2_sf(chi, 1) > 1e-3);
    exp_set_release(s);
}

/* The same definitions built twice, independently, and reloaded from their
 * bytes, assign every user alike; so do pinned values (a change of hash or
 * bucketing would move live users). */
static void test_stability(void) {
    const char *spec = "name=mmr layer=rank share=60% salt=mmr-1 variant=a variant=b variant=c";
    exp_set *x = put(empty(), spec), *y = put(empty(), spec), *z = NULL;
    TEST_REQUIRE(x && y);
    size_t len;
    uint8_t *bytes = exp_set_encode(x, &len);
    TEST_REQUIRE(bytes && exp_set_decode(bytes, len, &z, err, sizeof(err)) == AISLE_OK);
    free(bytes);
    for (int i = 0; i < 20000; i++) {
        exp_assignment a, b, c;
        exp_assign(x, uid(i), &a);
        exp_assign(y, uid(i), &b);
        exp_assign(z, uid(19999 - i), &c); /* another user first: order must not matter */
        exp_assign(z, uid(i), &c);
        TEST_REQUIRE(a.n == b.n && a.n == c.n);
        if (a.n) TEST_CHECK(
                            strcmp(a.picks[0].variant, b.picks[0].variant) == 0 &&
                            strcmp(a.picks[0].variant, c.picks[0].variant) == 0);
    }
    TEST_CHECK(exp_bucket("layer:rank", "u0000001") == 9502);
    TEST_CHECK(exp_bucket("mmr-1", "u0000042") == 9689);
    exp_set_release(x);
    exp_set_release(y);
    exp_set_release(z);
}

/* Growing an experiment into free buckets next to it and adding another
 * keep everyone where they were. */
static void test_offsets_kept(void) {
    exp_set *s = put(empty(), "name=a layer=rank share=30% variant=x variant=y");
    TEST_REQUIRE(s);
    exp_set *t = put(exp_set_ref(s), "name=a layer=rank share=40% variant=x variant=y");
    t = t ? put(t, "name=b layer=rank share=40% variant=x") : NULL;
    TEST_REQUIRE(t);
    TEST_CHECK(exp_set_version(t) == 3);
    for (int i = 0; i < 20000; i++) {
        exp_assignment a, b;
        exp_assign(s, uid(i), &a);
        exp_assign(t, uid(i), &b);
        if (a.n) TEST_CHECK(b.n && strcmp(b.picks[0].experiment, "a") == 0 &&
                            strcmp(a.picks[0].variant, b.picks[0].variant) == 0);
    }
    exp_set_release(s);
    exp_set_release(t);
}

static void test_allowlist_and_holdout(void) {
    exp_set *s = put(empty(), "name=tiny layer=rank share=0.01% variant=a variant=b "
                              "rank.mmr_lambda=0.25 allow=qa1:b allow=qa2:a");
    exp_set *t = NULL;
    TEST_REQUIRE(s);
    TEST_REQUIRE(exp_set_put_holdout(s, "hold-1", 1000, &t, err, sizeof(err)) == AISLE_OK);
    exp_set_release(s);
    s = NULL;
    TEST_REQUIRE(exp_set_put_toggle(t, "rank.creator_cap", "3", &s, err, sizeof(err)) == AISLE_OK);
    exp_set_release(t);
    exp_assignment a;
    exp_assign(s, "qa1", &a);
    TEST_CHECK(a.n == 1 && a.picks[0].forced && strcmp(a.picks[0].variant, "b") == 0);
    TEST_CHECK(exp_assignment_num(&a, "rank.mmr_lambda", 0.7) == 0.25);
    TEST_CHECK(exp_assignment_num(&a, "rank.creator_cap", 2) == 3);
    exp_assign(s, "qa2", &a);
    TEST_CHECK(a.n == 1 && strcmp(a.picks[0].variant, "a") == 0);
    TEST_CHECK(exp_assignment_num(&a, "rank.mmr_lambda", 0.7) == 0.7);
    int held = 0;
    for (int i = 0; i < USERS; i++) {
        exp_assign(s, uid(i), &a);
        held += a.holdout;
        if (a.holdout) TEST_CHECK(a.n == 0 && exp_assignment_num(&a, "rank.creator_cap", 2) == 3);
    }
    printf("holdout 10%%: %d of %d\n", held, USERS);
    TEST_CHECK(abs(held - USERS / 10) < 700);
    exp_set_release(s);
}

static void test_params(void) {
    exp_set *s = put(empty(), "name=src layer=retrieval share=100% variant=v "
                              "sources.similar.budget=150 "
                              "ranker.model_file=/etc/aisle/ltr-2.model");
    TEST_REQUIRE(s);
    exp_assignment a;
    exp_assign(s, "anyone", &a);
    TEST_CHECK(exp_assignment_num(&a, "sources.similar.budget", 50) == 150);
    TEST_CHECK(exp_assignment_num(&a, "sources.creator.budget", 50) == 50);
    TEST_CHECK_STR(exp_assignment_text(&a, "ranker.model_file", ""), "/etc/aisle/ltr-2.model");
    exp_set_release(s);
}

/* Each invalid edit fails with its message; the set it was applied to is
 * untouched (the running definition stays). */
static void expect_refused(const char *spec, const char *msg) {
    exp_set *s = put(empty(), "name=base layer=rank share=60% variant=a rank.mmr_lambda=0.5");
    TEST_REQUIRE(s);
    Aisle__V1__Experiment *e;
    exp_set *next = NULL;
    int rc = exp_spec_parse_line(spec, &e, err, sizeof(err));
    if (rc == AISLE_OK) {
        rc = exp_set_put_experiment(s, e, &next, err, sizeof(err));
        aisle__v1__experiment__free_unpacked(e, NULL);
    }
    printf("refused: %s\n", err);
    TEST_CHECK(rc == AISLE_EINVAL && next == NULL);
    TEST_CHECK(strstr(err, msg) != NULL);
    TEST_CHECK(exp_set_version(s) == 1 && exp_set_def(s)->n_experiments == 1);
    exp_set_release(s);
}

static void test_validation(void) {
    expect_refused("name=big layer=rank share=50% variant=a",
                   "shares add up to 110.00 %, over 100 %");
    expect_refused("name=x layer=rank share=10% variant=a rank.foo=1",
                   "unknown parameter 'rank.foo'");
    expect_refused("name=x layer=rank share=10% variant=a rank.mmr_lambda=1.5",
                   "rank.mmr_lambda: '1.5' is not a number in [0, 1]");
    expect_refused("name=x layer=rank share=10% variant=a rank.creator_cap=2.5", "not an integer");
    expect_refused("name=x layer=shop share=10% variant=a shop.mode=slow",
                   "'slow' is not one of fast|contemplating");
    expect_refused("name=x layer=shop share=10% variant=a rank.mmr_lambda=0.2",
                   "'rank.mmr_lambda' is overridden in layers");
    expect_refused("name=x layer=shop share=10% variant=a allow=u1:b", "unknown variant 'b'");
    expect_refused("name=x layer=shop share=10% variant=a variant=a", "variant 'a' given twice");
    expect_refused("name=x layer=shop share=10%", "has no variants");
    expect_refused("name=x share=150% variant=a", "share '150%' is not a percentage");
    expect_refused("name=x share=10% weight=2", "before any variant");
}

int main(void) {
    TEST_RUN(test_siphash_vectors);
    TEST_RUN(test_bucket_uniform);
    TEST_RUN(test_variant_distribution);
    TEST_RUN(test_layers);
    TEST_RUN(test_stability);
    TEST_RUN(test_offsets_kept);
    TEST_RUN(test_allowlist_and_holdout);
    TEST_RUN(test_params);
    TEST_RUN(test_validation);
    return test_summary();
}
