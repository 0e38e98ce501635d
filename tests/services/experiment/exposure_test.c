/* Tests for the exposure logger against the Kafka mock cluster: records
 * read back from aisle.exposures as they were submitted (keys, variants,
 * items with positions, sources and scores), every one confirmed; and a
 * logger whose Kafka is unreachable never blocking its callers, counting
 * its drops. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/experiment/exposure.h"
#include "services/experiment/spec.h"
#include "services/kafka/kafka.h"
#include "services/kafka/tail.h"
#include "tests/test.h"

#define N 2000
#define PAGE 10

static char err[512];

static exp_set *one_experiment(void) {
    exp_set *empty, *s = NULL;
    Aisle__V1__Experiment *e;
    if (exp_set_empty(&empty) != AISLE_OK) return NULL;
    if (exp_spec_parse_line("name=mmr layer=rank share=100% variant=a variant=b", &e, err,
                            sizeof(err)) == AISLE_OK) {
        exp_set_put_experiment(empty, e, &s, err, sizeof(err));
        aisle__v1__experiment__free_unpacked(e, NULL);
    }
    exp_set_release(empty);
    return s;
}

/* Submits exposure i: user u<i % 100>, a page of PAGE items. */
static int submit(exposure_log *l, const exp_set *s, int i) {
    char req[32], user[32], ids[PAGE][16];
    snprintf(req, sizeof(req), "req-%d", i);
    snprintf(user, sizeof(user), "u%d", i % 100);
    exp_assignment a;
    exp_assign(s, user, &a);
    Aisle__V1__Exposure e;
    Aisle__V1__VariantAssignment va[EXP_MAX_LAYERS], *vp[EXP_MAX_LAYERS];
    Aisle__V1__ExposureItem items[PAGE], *ip[PAGE];
    float features[PAGE][3];
    aisle__v1__exposure__init(&e);
    e.request_id = req;
    e.user_id = user;
    e.surface = "recommend";
    e.ts_ms = 1700000000000LL + i;
    exposure_set_variants(&e, &a, va, vp);
    for (int k = 0; k < PAGE; k++) {
        aisle__v1__exposure_item__init(&items[k]);
        snprintf(ids[k], sizeof(ids[k]), "p%05d", i * PAGE + k);
        items[k].item_id = ids[k];
        items[k].position = (uint32_t)k;
        items[k].source = k % 2 ? "similar" : "creator";
        items[k].score = 1.0f - 0.05f * k;
        for (int f = 0; f < 3; f++) features[k][f] = (float)(f + k);
        items[k].features = features[k];
        items[k].n_features = 3;
        ip[k] = &items[k];
    }
    e.items = ip;
    e.n_items = PAGE;
    return exposure_log_submit(l, &e);
}

static void test_records_reach_kafka(void) {
    kafka_mock *m;
    TEST_REQUIRE(kafka_mock_start(1, 1, &m, err, sizeof(err)) == 0);
    exp_set *s = one_experiment();
    exposure_log *l;
    TEST_REQUIRE(s);
    TEST_REQUIRE(exposure_log_start(kafka_mock_bootstraps(m), NULL, 0, &l, err, sizeof(err)) ==
                 AISLE_OK);
    int64_t t0 = clock_mono_us();
    for (int i = 0; i < N; i++) TEST_CHECK(submit(l, s, i) == AISLE_OK);
    printf("%d submits: %.2f us each\n", N, (double)(clock_mono_us() - t0) / N);
    exposure_log_stats st;
    exposure_log_get_stats(l, &st);
    TEST_CHECK(st.submitted == N && st.dropped == 0);
    exposure_log_stop(l, 10000);

    tail *t;
    TEST_REQUIRE(tail_open(kafka_mock_bootstraps(m), EXPOSURE_TOPIC, RD_KAFKA_OFFSET_BEGINNING,
                           "test", &t, err, sizeof(err)) == 0);
    static char seen[N];
    int got = 0;
    int64_t deadline = clock_mono_ms() + 10000;
    while (got < N && clock_mono_ms() < deadline) {
        rd_kafka_message_t *msg = tail_poll(t, 100);
        if (!msg) continue;
        Aisle__V1__Exposure *e = aisle__v1__exposure__unpack(NULL, msg->len, msg->payload);
        TEST_REQUIRE(e);
        int i = atoi(e->request_id + 4);
        TEST_CHECK(i >= 0 && i < N && !seen[i]);
        seen[i] = 1;
        got++;
        char user[32];
        snprintf(user, sizeof(user), "u%d", i % 100);
        exp_assignment a;
        exp_assign(s, user, &a);
        TEST_CHECK(msg->key_len == strlen(user) && memcmp(msg->key, user, msg->key_len) == 0);
        TEST_CHECK_STR(e->user_id, user);
        TEST_CHECK_STR(e->surface, "recommend");
        TEST_CHECK(e->ts_ms == 1700000000000LL + i && e->experiments_version == 1);
        TEST_CHECK(e->n_variants == 1 && strcmp(e->variants[0]->experiment, "mmr") == 0 &&
                   strcmp(e->variants[0]->variant, a.picks[0].variant) == 0 &&
                   strcmp(e->variants[0]->layer, "rank") == 0);
        TEST_CHECK(e->n_items == PAGE);
        for (size_t k = 0; k < e->n_items && k < PAGE; k++) {
            TEST_CHECK(e->items[k]->position == k);
            TEST_CHECK_STR(e->items[k]->source, k % 2 ? "similar" : "creator");
            TEST_CHECK(e->items[k]->score == 1.0f - 0.05f * k);
            TEST_CHECK(e->items[k]->n_features == 3 && e->items[k]->features[2] == 2.0f + k);
        }
        aisle__v1__exposure__free_unpacked(e, NULL);
        rd_kafka_message_destroy(msg);
    }
    TEST_CHECK(got == N);
    tail_close(t);
    exp_set_release(s);
    kafka_mock_stop(m);
}

/* Kafka down: librdkafka's own queue fills (100,000 messages), then the
 * logger's (16), then every further record is dropped at once. */
static void test_never_blocks(void) {
    exp_set *s = one_experiment();
    exposure_log *l;
    TEST_REQUIRE(s);
    TEST_REQUIRE(exposure_log_start("127.0.0.1:1", NULL, 16, &l, err, sizeof(err)) == AISLE_OK);
    const int n = 200000;
    int64_t worst = 0, t0 = clock_mono_us();
    for (int i = 0; i < n; i++) {
        int64_t a = clock_mono_us();
        submit(l, s, i);
        int64_t d = clock_mono_us() - a;
        if (d > worst) worst = d;
    }
    exposure_log_stats st;
    exposure_log_get_stats(l, &st);
    printf("Kafka down: %d submits in %lld ms, slowest %lld us; %llu accepted, %llu dropped\n", n,
           (long long)(clock_mono_us() - t0) / 1000, (long long)worst,
           (unsigned long long)st.submitted, (unsigned long long)st.dropped);
    TEST_CHECK(st.submitted + st.dropped == (uint64_t)n);
    /* A logger that waited for Kafka would hang here or drop nothing; the
     * slowest submit is printed, not asserted (timings belong in bench/). */
    TEST_CHECK(st.dropped >= 50000);
    exposure_log_stop(l, 100);
    exp_set_release(s);
}

int main(void) {
    TEST_RUN(test_records_reach_kafka);
    TEST_RUN(test_never_blocks);
    return test_summary();
}
