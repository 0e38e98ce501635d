/* The costs experiments add to a served page: logging its exposure (the
 * caller's time per submit, and the whole process's CPU per exposure with
 * the producer thread, librdkafka and the in-process Kafka mock broker
 * included, so an upper bound), and scoring candidates with a LambdaMART
 * model (per candidate, in batches of a page's candidate count) against
 * the hand weights over the same features. Prints "KEY value" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <librdkafka/rdkafka.h>

#include "ranker/ltr/model.h"
#include "ranker/rank.h"
#include "services/experiment/ltr_train.h"
#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/experiment/exposure.h"
#include "services/kafka/kafka.h"

#define PAGE 10
#define NF RANK_N_FEATURES /* what serve logs and a served model takes */

static uint64_t rng = 42;
static float uniform(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(rng >> 40) / (float)(1 << 24);
}

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds page p of the benchmark into e (storage in the arrays given). */
static void page(int p, Aisle__V1__Exposure *e, Aisle__V1__ExposureItem *it,
                 Aisle__V1__ExposureItem **ip, char ids[PAGE][24], float f[PAGE][NF], char *user,
                 char *req, Aisle__V1__VariantAssignment *va, Aisle__V1__VariantAssignment **vp) {
    aisle__v1__exposure__init(e);
    snprintf(user, 16, "u%d", p % 5000);
    snprintf(req, 16, "r%d", p);
    e->user_id = user;
    e->request_id = req;
    e->surface = "recommend";
    e->ts_ms = 1700000000000LL + p;
    aisle__v1__variant_assignment__init(va);
    va->layer = "rank", va->experiment = "ranker", va->variant = p % 2 ? "learned" : "control";
    *vp = va;
    e->variants = vp;
    e->n_variants = 1;
    for (int i = 0; i < PAGE; i++) {
        aisle__v1__exposure_item__init(&it[i]);
        snprintf(ids[i], 24, "p%06d", (p * PAGE + i) % 100000);
        for (int k = 0; k < NF; k++) f[i][k] = uniform();
        it[i].item_id = ids[i];
        it[i].position = (uint32_t)i;
        it[i].source = "similar";
        it[i].score = f[i][0];
        it[i].features = f[i];
        it[i].n_features = NF;
        ip[i] = &it[i];
    }
    e->items = ip;
    e->n_items = PAGE;
}

static int bench_exposures(int n) {
    char err[512];
    kafka_mock *m;
    exposure_log *l;
    /* The mock cluster has Aisle's topics, the exposures' among them. */
    if (kafka_mock_start(1, 4, &m, err, sizeof(err)) ||
        exposure_log_start(kafka_mock_bootstraps(m), NULL, 0, &l, err, sizeof(err))) {
        fprintf(stderr, "exposure bench: %s\n", err);
        return 1;
    }
    int64_t *us = malloc(n * sizeof(*us));
    double c0 = cpu_s();
    int64_t t0 = clock_mono_us();
    for (int p = 0; p < n; p++) {
        Aisle__V1__Exposure e;
        Aisle__V1__ExposureItem it[PAGE], *ip[PAGE];
        Aisle__V1__VariantAssignment va, *vp;
        char ids[PAGE][24], user[16], req[16];
        float f[PAGE][NF];
        page(p, &e, it, ip, ids, f, user, req, &va, &vp);
        int64_t a = clock_mono_us();
        exposure_log_submit(l, &e);
        us[p] = clock_mono_us() - a;
    }
    exposure_log_stop(l, 30000); /* flushed: every exposure's whole cost is in */
    double cpu = cpu_s() - c0, wall = (clock_mono_us() - t0) / 1e6;
    qsort(us, n, sizeof(*us), cmp64);
    printf("exposures %d\n", n);
    printf("submit_p50_us %lld\nsubmit_p99_us %lld\n", (long long)us[n / 2],
           (long long)us[n * 99 / 100]);
    printf("cpu_us_per_exposure %.1f\nwall_s %.2f\n", cpu * 1e6 / n, wall);
    free(us);
    kafka_mock_stop(m);
    return 0;
}

static int bench_scoring(void) {
    char err[512];
    ltr_data *d;
    if (ltr_data_new(0, &d) != AISLE_OK) return 1;
    for (int p = 0; p < 6000; p++) { /* three days of random pages with clicks on f0 */
        Aisle__V1__Exposure e;
        Aisle__V1__ExposureItem it[PAGE], *ip[PAGE];
        Aisle__V1__VariantAssignment va, *vp;
        char ids[PAGE][24], user[16], req[16];
        float f[PAGE][NF];
        page(p, &e, it, ip, ids, f, user, req, &va, &vp);
        e.ts_ms = (int64_t)p * 3 * 86400000LL / 6000;
        ltr_data_add_exposure(d, &e);
        for (int i = 0; i < PAGE; i++) {
            if (f[i][0] + 0.5f * f[i][1] < 1.0f) continue;
            Aisle__V1__Signal s;
            aisle__v1__signal__init(&s);
            s.user_id = user, s.item_id = ids[i], s.ts_ms = e.ts_ms + 1000;
            s.kind = AISLE__V1__SIGNAL_KIND__CLICK;
            ltr_data_add_signal(d, &s);
        }
    }
    ltr_train_config cfg = {.rounds = 200};
    ltr_train_result res;
    ltr_model *m;
    int64_t t0 = clock_mono_ms();
    if (ltr_train(d, &cfg, &m, &res, err, sizeof(err)) != AISLE_OK) {
        fprintf(stderr, "scoring bench: %s\n", err);
        return 1;
    }
    printf("train_rows %zu\ntrain_ms %lld\n", res.train_rows, (long long)(clock_mono_ms() - t0));
    static const int batches[] = {10, 100, 500};
    static float rows[500 * NF], out[500];
    for (int i = 0; i < 500 * NF; i++) rows[i] = uniform();
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        int n = batches[b], reps = 200000 / n;
        int64_t a = clock_mono_us();
        for (int r = 0; r < reps; r++) ltr_model_score(m, rows, (size_t)n, out, err, sizeof(err));
        printf("score_us_per_candidate_batch%d %.2f\n", n,
               (double)(clock_mono_us() - a) / ((double)reps * n));
    }
    /* The hand weights of the home surface over the same rows. */
    const rank_settings *home = rank_surface("home");
    volatile float sink = 0;
    int64_t a = clock_mono_us();
    for (int r = 0; r < 4000; r++)
        for (int i = 0; i < 500; i++) sink += rank_hand_score(home, rows + i * NF);
    printf("hand_weights_us_per_candidate %.4f\n", (double)(clock_mono_us() - a) / 2e6);
    ltr_model_release(m);
    ltr_data_free(d);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    return bench_exposures(n > 0 ? n : 100000) || bench_scoring();
}
