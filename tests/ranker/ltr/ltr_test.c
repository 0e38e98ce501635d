/* Tests for learning to rank: NDCG by hand; a simulated week of served
 * pages whose clicks follow features the current ranker mostly ignores,
 * where the LambdaMART model beats the logged ranking on the held-out day;
 * the model file round trip; corrupt, truncated and foreign files refused
 * with the loaded model kept; and the loop closed: the learned model on
 * half the traffic of an experiment, its lift read by the report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ranker/ltr/model.h"
#include "services/experiment/ltr_train.h"
#include "services/base/status.h"
#include "services/experiment/exposure.h"
#include "services/experiment/report.h"
#include "services/experiment/spec.h"
#include "tests/test.h"

#define DAY 86400000LL
#define PAGE 10
#define NF 4

static char err[512];
static char path[] = "/tmp/aisle-ltr-XXXXXX";
static uint64_t rng = 0x1234567;

static double uniform(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void test_ndcg(void) {
    float label[] = {3, 0, 1, 0}, best[] = {4, 1, 3, 2}, worst[] = {1, 4, 2, 3};
    TEST_CHECK(fabs(ltr_ndcg(best, label, 4, 10) - 1) < 1e-9);
    /* worst ranks labels 0, 0, 1, 3 */
    double dcg = 1 / log2(4) + 7 / log2(5), ideal = 7 + 1 / log2(3);
    TEST_CHECK(fabs(ltr_ndcg(worst, label, 4, 10) - dcg / ideal) < 1e-9);
    float none[] = {0, 0};
    TEST_CHECK(ltr_ndcg(best, none, 2, 10) == 0);
}

/* Where simulated events go: training data, a report, or both. */
typedef struct sink {
    ltr_data *d;
    exp_report *r;
} sink;

static void signal(const sink *k, const char *user, const char *item, Aisle__V1__SignalKind kind,
                   int64_t ts, int n) {
    char id[64];
    snprintf(id, sizeof(id), "%s-%s-%d-%d", user, item, (int)kind, n);
    Aisle__V1__Signal s;
    aisle__v1__signal__init(&s);
    s.event_id = id;
    s.user_id = (char *)user;
    s.item_id = (char *)item;
    s.kind = kind;
    s.ts_ms = ts;
    if (k->d) ltr_data_add_signal(k->d, &s);
    if (k->r) exp_report_add_signal(k->r, &s);
}

/* Serves one page by score[] (descending) into order[]. */
static void serve_order(const float *score, int *order) {
    for (int i = 0; i < PAGE; i++) order[i] = i;
    for (int i = 1; i < PAGE; i++)
        for (int j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
}

/* A week (or the day after it) of pages. Relevance follows f0 and a bump
 * in f1; the current ranker's score is mostly f3, which relevance
 * ignores; clicks fall off with position. With set and model, each user's
 * variant of the "ranker" experiment decides the order: "learned" pages
 * are served by the model's scores, "control" by the current ones. */
static void simulate(const sink *k, int pages, int users, int64_t t0, const exp_set *set,
                     ltr_model *model) {
    for (int p = 0; p < pages; p++) {
        char user[16], req[16], ids[PAGE][32];
        float f[PAGE][NF], score[PAGE], learned[PAGE];
        int order[PAGE];
        snprintf(user, sizeof(user), "u%d", p % users);
        snprintf(req, sizeof(req), "r%d", p);
        for (int i = 0; i < PAGE; i++) {
            for (int j = 0; j < NF; j++) f[i][j] = (float)uniform();
            score[i] = 0.25f * f[i][0] + 0.75f * f[i][3];
        }
        Aisle__V1__Exposure e;
        Aisle__V1__VariantAssignment va[EXP_MAX_LAYERS], *vp[EXP_MAX_LAYERS];
        Aisle__V1__ExposureItem it[PAGE], *ip[PAGE];
        aisle__v1__exposure__init(&e);
        int use_model = 0;
        if (set) {
            exp_assignment a;
            exp_assign(set, user, &a);
            exposure_set_variants(&e, &a, va, vp);
            use_model = a.n && strcmp(a.picks[0].variant, "learned") == 0;
        }
        if (use_model) ltr_model_score(model, &f[0][0], PAGE, learned, err, sizeof(err));
        serve_order(use_model ? learned : score, order);
        e.request_id = req;
        e.user_id = user;
        e.surface = "recommend";
        e.ts_ms = t0 + (int64_t)p * 7 * DAY / pages + 1000;
        for (int pos = 0; pos < PAGE; pos++) {
            int i = order[pos];
            snprintf(ids[pos], sizeof(ids[pos]), "p%d-%d", p, i);
            aisle__v1__exposure_item__init(&it[pos]);
            it[pos].item_id = ids[pos];
            it[pos].position = (uint32_t)pos;
            it[pos].score = use_model ? learned[i] : score[i];
            it[pos].features = f[i];
            it[pos].n_features = NF;
            ip[pos] = &it[pos];
        }
        e.items = ip;
        e.n_items = PAGE;
        if (k->d) ltr_data_add_exposure(k->d, &e);
        if (k->r) exp_report_add_exposure(k->r, &e);
        for (int pos = 0; pos < PAGE; pos++) {
            const float *x = f[order[pos]];
            double rel = 3 * x[0] + 2 * exp(-20 * (x[1] - 0.5) * (x[1] - 0.5)) - 2.5;
            double pclick = 1 / (1 + exp(-2 * rel)) * 0.5 / (1 + 0.5 * pos);
            if (uniform() >= pclick) continue;
            signal(k, user, ids[pos], AISLE__V1__SIGNAL_KIND__CLICK, e.ts_ms + 10000, p);
            if (uniform() < 0.3)
                signal(k, user, ids[pos], AISLE__V1__SIGNAL_KIND__ADD_TO_CART, e.ts_ms + 20000, p);
        }
    }
}

static ltr_model *trained;

static void test_train_beats_current(void) {
    ltr_data *d;
    TEST_REQUIRE(ltr_data_new(0, &d) == AISLE_OK);
    sink k = {d, NULL};
    simulate(&k, 7000, 500, 0, NULL, NULL);
    ltr_train_config cfg = {.rounds = 100};
    ltr_train_result res;
    int rc = ltr_train(d, &cfg, &trained, &res, err, sizeof(err));
    if (rc != AISLE_OK) fprintf(stderr, "%s\n", err);
    TEST_REQUIRE(rc == AISLE_OK);
    printf("trained on %zu pages (%zu rows), held out %zu pages; NDCG@10 model %.4f, current "
           "%.4f\n", res.train_pages, res.train_rows, res.test_pages, res.ndcg_model,
           res.ndcg_current);
    TEST_CHECK(res.n_features == NF && res.test_pages > 500 && res.train_pages > 5000);
    /* Logged labels favour the logged order (position bias), so the
     * offline gain understates the online one that test_loop measures. */
    TEST_CHECK(res.ndcg_model > res.ndcg_current + 0.01);
    /* A held-out stretch of two days instead of the last day. */
    ltr_train_config two = {.rounds = 5, .holdout_ms = 2 * DAY};
    ltr_train_result res2;
    TEST_REQUIRE(ltr_train(d, &two, NULL, &res2, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(res2.test_pages > res.test_pages * 3 / 2 &&
               res2.train_pages + res2.test_pages == res.train_pages + res.test_pages);
    ltr_data_free(d);
    ltr_data *empty;
    TEST_REQUIRE(ltr_data_new(0, &empty) == AISLE_OK);
    TEST_CHECK(ltr_train(empty, NULL, NULL, &res, err, sizeof(err)) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "too little data") != NULL);
    ltr_data_free(empty);
}

static void write_bytes(const char *p, const void *data, size_t n) {
    FILE *f = fopen(p, "wb");
    if (f) fwrite(data, 1, n, f), fclose(f);
}

static void test_model_file(void) {
    TEST_REQUIRE(trained);
    TEST_REQUIRE(ltr_model_save(trained, path, err, sizeof(err)) == AISLE_OK);
    ltr_slot *slot;
    TEST_REQUIRE(ltr_slot_new(&slot) == AISLE_OK);
    TEST_CHECK(ltr_slot_acquire(slot) == NULL);
    TEST_REQUIRE(ltr_slot_load(slot, path, err, sizeof(err)) == AISLE_OK);
    ltr_model *m = ltr_slot_acquire(slot);
    TEST_REQUIRE(m && ltr_model_features(m) == NF);
    float rows[3 * NF] = {0.9f, 0.5f, 0.1f, 0.1f, 0.1f, 0.1f, 0.9f, 0.9f, 0.5f, 0.5f, 0.5f, 0.5f};
    float a[3], b[3];
    TEST_CHECK(ltr_model_score(trained, rows, 3, a, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(ltr_model_score(m, rows, 3, b, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(memcmp(a, b, sizeof(a)) == 0 && a[0] > a[1]);

    FILE *f = fopen(path, "rb");
    TEST_REQUIRE(f);
    static unsigned char bytes[1 << 24];
    size_t n = fread(bytes, 1, sizeof(bytes), f);
    fclose(f);
    char bad[64];
    snprintf(bad, sizeof(bad), "%s.bad", path);
    struct {
        const char *what, *msg;
        size_t len;
        int flip;
    } cases[] = {{"a flipped byte", "checksum mismatch", n, 1},
                 {"a truncated file", "truncated", n - 100, 0},
                 {"a foreign file", "not an Aisle ranker model", 7, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].flip) bytes[n / 2] ^= 0x20;
        write_bytes(bad, bytes, cases[i].len);
        if (cases[i].flip) bytes[n / 2] ^= 0x20;
        int rc = ltr_slot_load(slot, bad, err, sizeof(err));
        printf("%s: %s\n", cases[i].what, err);
        TEST_CHECK(rc == AISLE_EFORMAT && strstr(err, cases[i].msg) != NULL);
        ltr_model *still = ltr_slot_acquire(slot);
        TEST_CHECK(still == m);
        ltr_model_release(still);
    }
    /* A well-formed file whose body XGBoost cannot read. */
    const char junk[] = "{\"learner\": 42}";
    TEST_REQUIRE(ltr_model_write(bad, junk, sizeof(junk) - 1, NF, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(ltr_slot_load(slot, bad, err, sizeof(err)) == AISLE_EFORMAT);
    printf("an unreadable body: %s\n", err);
    TEST_CHECK(strstr(err, "XGBoost refused") != NULL);
    TEST_CHECK(ltr_slot_load(slot, "/nonexistent/model", err, sizeof(err)) == AISLE_EIO);
    ltr_model *still = ltr_slot_acquire(slot);
    TEST_CHECK(still == m && ltr_model_score(still, rows, 3, b, err, sizeof(err)) == AISLE_OK);
    ltr_model_release(still);
    ltr_model_release(m);
    ltr_slot_free(slot);
    unlink(bad);
}

/* The loop: the learned model on half the users (the "ranker" experiment)
 * for a day after the training week; the report shows its lift. */
static void test_loop(void) {
    TEST_REQUIRE(trained);
    exp_set *empty, *set = NULL;
    Aisle__V1__Experiment *x;
    TEST_REQUIRE(exp_set_empty(&empty) == AISLE_OK);
    TEST_REQUIRE(exp_spec_parse_line("name=ranker layer=rank share=100% variant=control "
                                     "variant=learned ranker.model_file=/models/ltr-1",
                                     &x, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(exp_set_put_experiment(empty, x, &set, err, sizeof(err)) == AISLE_OK);
    aisle__v1__experiment__free_unpacked(x, NULL);
    exp_set_release(empty);
    sink k = {NULL, NULL};
    TEST_REQUIRE(exp_report_new(NULL, &k.r) == AISLE_OK);
    simulate(&k, 20000, 20000, 8 * DAY, set, trained);
    const exp_report_exp *res;
    size_t n;
    TEST_REQUIRE(exp_report_compute(k.r, INT64_MAX, &res, &n) == AISLE_OK && n == 1);
    const exp_report_arm *c = &res[0].arms[0], *t = &res[0].arms[1];
    TEST_CHECK_STR(t->variant, "learned");
    printf("loop: click rate control %.2f%%, learned %.2f%%, lift %+.1f%% [%+.1f%%, %+.1f%%], "
           "p(seq) %.2g\n", 100 * c->rate[REPORT_CLICK], 100 * t->rate[REPORT_CLICK],
           100 * t->lift[REPORT_CLICK], 100 * t->lift_lo[REPORT_CLICK],
           100 * t->lift_hi[REPORT_CLICK], t->p_seq[REPORT_CLICK]);
    TEST_CHECK(t->significant[REPORT_CLICK] && t->lift_lo[REPORT_CLICK] > 0 && !res[0].srm);
    exp_report_free(k.r);
    exp_set_release(set);
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    TEST_RUN(test_ndcg);
    TEST_RUN(test_train_beats_current);
    TEST_RUN(test_model_file);
    TEST_RUN(test_loop);
    ltr_model_release(trained);
    unlink(path);
    return test_summary();
}
