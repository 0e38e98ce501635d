/* Tests for experiment reports: attribution rules on a hand-made case,
 * a simulated experiment with a known true lift (detected, and inside the
 * interval), A/A experiments over many seeds read every day (the verdict's
 * false positive rate stays within its stated alpha of 5 %), a sample
 * ratio mismatch flagged, the text and HTML forms, and the file format. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/experiment/expset.h"
#include "services/experiment/report.h"
#include "services/experiment/spec.h"
#include "tests/test.h"

#define DAY 86400000LL
#define PAGE 5

static uint64_t rng;
static double uniform(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void expose(exp_report *r, const char *user, const char *exp, const char *var,
                   int64_t ts, const char *const *items, int n) {
    Aisle__V1__Exposure e;
    Aisle__V1__VariantAssignment va, *vp = &va;
    Aisle__V1__ExposureItem it[PAGE], *ip[PAGE];
    aisle__v1__exposure__init(&e);
    aisle__v1__variant_assignment__init(&va);
    va.layer = "rank";
    va.experiment = (char *)exp;
    va.variant = (char *)var;
    e.user_id = (char *)user;
    e.ts_ms = ts;
    e.variants = &vp;
    e.n_variants = 1;
    for (int i = 0; i < n; i++) {
        aisle__v1__exposure_item__init(&it[i]);
        it[i].item_id = (char *)items[i];
        it[i].position = (uint32_t)i;
        ip[i] = &it[i];
    }
    e.items = ip;
    e.n_items = (size_t)n;
    exp_report_add_exposure(r, &e);
}

static void signal(exp_report *r, const char *id, const char *user, const char *item,
                   Aisle__V1__SignalKind kind, int64_t ts) {
    Aisle__V1__Signal s;
    aisle__v1__signal__init(&s);
    s.event_id = (char *)id;
    s.user_id = (char *)user;
    s.item_id = (char *)item;
    s.kind = kind;
    s.ts_ms = ts;
    exp_report_add_signal(r, &s);
}

static void test_attribution(void) {
    exp_report *r;
    TEST_REQUIRE(exp_report_new(NULL, &r) == AISLE_OK);
    const char *page1[] = {"a", "b"}, *page2[] = {"c"};
    expose(r, "u1", "x", "control", 1000, page1, 2);
    expose(r, "u2", "x", "treat", 1000, page1, 2);
    expose(r, "u2", "x", "treat", 5000, page2, 1);
    signal(r, "e1", "u1", "b", AISLE__V1__SIGNAL_KIND__CLICK, 2000);     /* counted */
    signal(r, "e1", "u1", "b", AISLE__V1__SIGNAL_KIND__CLICK, 2000);     /* a replay */
    signal(r, "e2", "u1", "z", AISLE__V1__SIGNAL_KIND__CLICK, 2000);     /* not shown */
    signal(r, "e3", "u1", "a", AISLE__V1__SIGNAL_KIND__CLICK, 500);      /* before the page */
    signal(r, "e4", "u1", "a", AISLE__V1__SIGNAL_KIND__CLICK, 2 * DAY);  /* past the window */
    signal(r, "e5", "u2", "a", AISLE__V1__SIGNAL_KIND__PURCHASE, 9000);  /* the first page's */
    signal(r, "e6", "u2", "c", AISLE__V1__SIGNAL_KIND__ADD_TO_CART, 6000);
    signal(r, "e7", "u2", "c", AISLE__V1__SIGNAL_KIND__VIEW, 6000);      /* not an outcome */
    const exp_report_exp *res;
    size_t n;
    TEST_REQUIRE(exp_report_compute(r, INT64_MAX, &res, &n) == AISLE_OK && n == 1);
    TEST_REQUIRE(res[0].n_arms == 2);
    const exp_report_arm *c = &res[0].arms[0], *t = &res[0].arms[1];
    TEST_CHECK_STR(c->variant, "control");
    TEST_CHECK(c->users == 1 && c->pages == 1 && c->events[REPORT_CLICK] == 1);
    TEST_CHECK(c->converted[REPORT_CLICK] == 1 && c->rate[REPORT_CLICK] == 1.0);
    TEST_CHECK(t->users == 1 && t->pages == 2 && t->events[REPORT_CLICK] == 0);
    TEST_CHECK(t->events[REPORT_PURCHASE] == 1 && t->events[REPORT_CART] == 1);
    /* As of before the click, nothing is attributed. */
    TEST_REQUIRE(exp_report_compute(r, 1500, &res, &n) == AISLE_OK && n == 1);
    TEST_CHECK(res[0].arms[0].events[REPORT_CLICK] == 0 && res[0].arms[1].pages == 1);
    exp_report_free(r);
}

typedef struct sim {
    int users, pages;
    double p_page, lift;  /* click probability per page; treatment's relative lift */
    double lose_treated;  /* share of treated users whose exposures are lost */
} sim;

/* One simulated experiment over ten days: users split 50/50 by exp_assign;
 * each page is clicked with p_page (times 1 + lift in treatment), a click
 * leads to a cart with 0.3 and a cart to a purchase with 0.5; every user
 * also clicks an item never shown and one shown two days earlier (neither
 * may count). */
static exp_report *simulate(const sim *s, const exp_set *set) {
    exp_report *r;
    if (exp_report_new(NULL, &r) != AISLE_OK) return NULL;
    char user[32], id[48], items[PAGE][16];
    const char *ip[PAGE];
    for (int u = 0; u < s->users; u++) {
        snprintf(user, sizeof(user), "s%llx-%d", (unsigned long long)rng, u);
        exp_assignment a;
        exp_assign(set, user, &a);
        const char *var = a.picks[0].variant;
        int treated = strcmp(var, "treat") == 0;
        if (treated && uniform() < s->lose_treated) continue;
        double p = s->p_page * (treated ? 1 + s->lift : 1);
        for (int k = 0; k < s->pages; k++) {
            int64_t ts = (int64_t)(uniform() * 10 * DAY);
            for (int i = 0; i < PAGE; i++) {
                snprintf(items[i], sizeof(items[i]), "p%d", (int)(uniform() * 5000));
                ip[i] = items[i];
            }
            expose(r, user, "ranker", var, ts, ip, PAGE);
            snprintf(id, sizeof(id), "%s-%d", user, k);
            if (uniform() < p) {
                const char *item = items[(int)(uniform() * PAGE)];
                int64_t at = ts + 1000 + (int64_t)(uniform() * 600000);
                signal(r, id, user, item, AISLE__V1__SIGNAL_KIND__CLICK, at);
                if (uniform() < 0.3) {
                    snprintf(id, sizeof(id), "%s-%d-c", user, k);
                    signal(r, id, user, item, AISLE__V1__SIGNAL_KIND__ADD_TO_CART, at + 1000);
                    if (uniform() < 0.5) {
                        snprintf(id, sizeof(id), "%s-%d-p", user, k);
                        signal(r, id, user, item, AISLE__V1__SIGNAL_KIND__PURCHASE, at + 2000);
                    }
                }
            }
            if (k == 0) {
                signal(r, "", user, "never-shown", AISLE__V1__SIGNAL_KIND__CLICK, ts + 5000);
                signal(r, "", user, items[0], AISLE__V1__SIGNAL_KIND__CLICK, ts + 2 * DAY);
            }
        }
    }
    return r;
}

static exp_set *half_half(void) {
    exp_set *empty, *s = NULL;
    Aisle__V1__Experiment *e;
    char err[256];
    if (exp_set_empty(&empty) != AISLE_OK) return NULL;
    if (exp_spec_parse_line("name=ranker layer=rank share=100% variant=control variant=treat",
                            &e, err, sizeof(err)) == AISLE_OK) {
        exp_set_put_experiment(empty, e, &s, err, sizeof(err));
        aisle__v1__experiment__free_unpacked(e, NULL);
    }
    exp_set_release(empty);
    return s;
}

static void test_known_lift(void) {
    exp_set *set = half_half();
    TEST_REQUIRE(set);
    rng = 0x9e3779b97f4a7c15ULL;
    sim s = {20000, 3, 0.05, 0.15, 0};
    exp_report *r = simulate(&s, set);
    const exp_report_exp *res;
    size_t n;
    TEST_REQUIRE(r && exp_report_compute(r, INT64_MAX, &res, &n) == AISLE_OK && n == 1);
    const exp_report_arm *t = &res[0].arms[1];
    /* The user-level truth: P(at least one click in 3 pages). */
    double pc = 1 - pow(1 - 0.05, 3), pt = 1 - pow(1 - 0.05 * 1.15, 3), truth = pt / pc - 1;
    printf("known lift: true %+.2f%%, measured %+.2f%% [%+.2f%%, %+.2f%%], p %.2g, p(seq) %.2g, "
           "SRM p %.3f\n", 100 * truth, 100 * t->lift[REPORT_CLICK], 100 * t->lift_lo[REPORT_CLICK],
           100 * t->lift_hi[REPORT_CLICK], t->p_fixed[REPORT_CLICK], t->p_seq[REPORT_CLICK],
           res[0].srm_p);
    TEST_CHECK(t->significant[REPORT_CLICK] && t->lift[REPORT_CLICK] > 0);
    TEST_CHECK(t->lift_lo[REPORT_CLICK] <= truth && truth <= t->lift_hi[REPORT_CLICK]);
    TEST_CHECK(!res[0].srm);
    /* Noise clicks were not attributed: at most one click per page. */
    TEST_CHECK(t->events[REPORT_CLICK] <= t->pages);

    buf text = {0}, html = {0};
    exp_report_text(r, &text);
    exp_report_html(r, &html);
    printf("%s", buf_str(&text));
    TEST_CHECK(strstr(buf_str(&text), "experiment ranker: 2 variants") != NULL);
    TEST_CHECK(strstr(buf_str(&text), "  significant") != NULL);
    TEST_CHECK(strstr(buf_str(&html), "<svg") != NULL && strstr(buf_str(&html), "<h2>ranker</h2>"));
    buf_free(&text);
    buf_free(&html);
    exp_report_free(r);
    exp_set_release(set);
}

/* A/A: no true difference. Read every day for ten days, the mSPRT verdict
 * must fire in at most alpha = 5 % of experiments; the fixed-horizon test
 * read once is near 5 %, and read daily it is not valid (shown, not
 * checked: that is why the verdict is sequential). */
static void test_aa_false_positive_rate(void) {
    exp_set *set = half_half();
    TEST_REQUIRE(set);
    const int seeds = 200;
    int seq_any = 0, fixed_final = 0, fixed_any = 0, srm = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        rng = 0x2545f4914f6cdd1dULL * (uint64_t)seed;
        sim s = {2000, 3, 0.05, 0, 0};
        exp_report *r = simulate(&s, set);
        TEST_REQUIRE(r);
        int seq = 0, fixed = 0;
        for (int day = 1; day <= 10; day++) {
            const exp_report_exp *res;
            size_t n;
            TEST_REQUIRE(exp_report_compute(r, day * DAY, &res, &n) == AISLE_OK && n == 1);
            const exp_report_arm *t = &res[0].arms[1];
            seq |= t->significant[REPORT_CLICK];
            fixed |= t->p_fixed[REPORT_CLICK] < 0.05;
            if (day == 10) {
                fixed_final += t->p_fixed[REPORT_CLICK] < 0.05;
                srm += res[0].srm;
            }
        }
        seq_any += seq;
        fixed_any += fixed;
        exp_report_free(r);
    }
    printf("A/A over %d seeds, 10 daily reads: mSPRT verdict %.1f%%; fixed z-test once %.1f%%, "
           "daily %.1f%%; SRM alarms %d\n", seeds, 100.0 * seq_any / seeds,
           100.0 * fixed_final / seeds, 100.0 * fixed_any / seeds, srm);
    TEST_CHECK(seq_any <= seeds * 5 / 100);
    /* 5 % plus three binomial standard deviations. */
    TEST_CHECK(fixed_final <= seeds * 5 / 100 + 3 * (int)ceil(sqrt(seeds * 0.05 * 0.95)));
    TEST_CHECK(srm <= 2);
    exp_set_release(set);
}

static void test_sample_ratio_mismatch(void) {
    exp_set *set = half_half();
    TEST_REQUIRE(set);
    rng = 77;
    sim s = {20000, 1, 0.05, 0, 0.08}; /* 8 % of treated users' logs lost */
    exp_report *r = simulate(&s, set);
    const exp_report_exp *res;
    size_t n;
    TEST_REQUIRE(r && exp_report_compute(r, INT64_MAX, &res, &n) == AISLE_OK && n == 1);
    printf("lost 8%% of treatment: users %llu vs %llu, SRM p %.2g\n",
           (unsigned long long)res[0].arms[0].users, (unsigned long long)res[0].arms[1].users,
           res[0].srm_p);
    TEST_CHECK(res[0].srm);
    /* Expecting a 52:48 split, the same data is fine. */
    exp_report_expect(r, "ranker", "control", 52);
    exp_report_expect(r, "ranker", "treat", 48);
    TEST_REQUIRE(exp_report_compute(r, INT64_MAX, &res, &n) == AISLE_OK);
    TEST_CHECK(!res[0].srm);
    buf text = {0};
    exp_report_text(r, &text);
    exp_report_free(r);
    buf_free(&text);
    exp_set_release(set);
}

static void test_delimited_file(void) {
    FILE *f = tmpfile();
    TEST_REQUIRE(f);
    Aisle__V1__Signal s;
    aisle__v1__signal__init(&s);
    s.user_id = "u1";
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    s.item_id = big; /* a length over 127: a two-byte varint */
    TEST_CHECK(exp_delim_write(f, &s.base) == AISLE_OK);
    s.item_id = "i2";
    TEST_CHECK(exp_delim_write(f, &s.base) == AISLE_OK);
    rewind(f);
    buf b = {0};
    TEST_REQUIRE(exp_delim_read(f, &b) == 1);
    Aisle__V1__Signal *got = aisle__v1__signal__unpack(NULL, b.len, (const uint8_t *)b.data);
    TEST_CHECK(got && strcmp(got->item_id, big) == 0);
    aisle__v1__signal__free_unpacked(got, NULL);
    TEST_CHECK(exp_delim_read(f, &b) == 1 && b.len == aisle__v1__signal__get_packed_size(&s));
    TEST_CHECK(exp_delim_read(f, &b) == 0);
    fputc(0x05, f); /* a length and no body */
    fseek(f, -1, SEEK_END);
    TEST_CHECK(exp_delim_read(f, &b) == AISLE_EFORMAT);
    buf_free(&b);
    fclose(f);
}

int main(void) {
    TEST_RUN(test_attribution);
    TEST_RUN(test_known_lift);
    TEST_RUN(test_aa_false_positive_rate);
    TEST_RUN(test_sample_ratio_mismatch);
    TEST_RUN(test_delimited_file);
    return test_summary();
}
