/* Tests for `aisle report`: from length-delimited files and from Kafka (the
 * mock cluster, exposures produced by the exposure logger), with --html;
 * bad flags exit 2. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/app/report.h"
#include "services/base/status.h"
#include "services/experiment/exposure.h"
#include "services/experiment/report.h"
#include "services/experiment/spec.h"
#include "services/kafka/kafka.h"
#include "tests/test.h"

#define USERS 400

static char dir[] = "/tmp/aisle-report-XXXXXX", path_e[64], path_s[64], path_h[64], path_o[64];
static char err[512];

/* Calls report_main with args, its stdout into path_o; returns its status. */
static int run(int argc, char **argv) {
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(path_o, "w");
    if (!f || saved < 0) return -1;
    dup2(fileno(f), 1);
    int rc = report_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    return rc;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

typedef void (*emit_fn)(void *ctx, const Aisle__V1__Exposure *e, const Aisle__V1__Signal *s);

/* USERS users split control/treat, one page of three items each; treated
 * users click 60 % of the time, control users 20 %. */
static void generate(emit_fn emit, void *ctx) {
    exp_set *empty, *set = NULL;
    Aisle__V1__Experiment *x;
    if (exp_set_empty(&empty) != AISLE_OK ||
        exp_spec_parse_line("name=learned layer=rank share=100% variant=control variant=treat",
                            &x, err, sizeof(err)) != AISLE_OK)
        return;
    exp_set_put_experiment(empty, x, &set, err, sizeof(err));
    aisle__v1__experiment__free_unpacked(x, NULL);
    exp_set_release(empty);
    for (int u = 0; u < USERS && set; u++) {
        char user[16], req[16], ev[16];
        snprintf(user, sizeof(user), "u%d", u);
        snprintf(req, sizeof(req), "r%d", u);
        snprintf(ev, sizeof(ev), "e%d", u);
        exp_assignment a;
        exp_assign(set, user, &a);
        Aisle__V1__Exposure e;
        Aisle__V1__VariantAssignment va[EXP_MAX_LAYERS], *vp[EXP_MAX_LAYERS];
        Aisle__V1__ExposureItem it[3], *ip[3];
        const char *ids[3] = {"p1", "p2", "p3"};
        aisle__v1__exposure__init(&e);
        e.request_id = req;
        e.user_id = user;
        e.surface = "recommend";
        e.ts_ms = 1000000 + u;
        exposure_set_variants(&e, &a, va, vp);
        for (int i = 0; i < 3; i++) {
            aisle__v1__exposure_item__init(&it[i]);
            it[i].item_id = (char *)ids[i];
            it[i].position = (uint32_t)i;
            ip[i] = &it[i];
        }
        e.items = ip;
        e.n_items = 3;
        int treated = strcmp(a.picks[0].variant, "treat") == 0;
        Aisle__V1__Signal s;
        aisle__v1__signal__init(&s);
        s.event_id = ev;
        s.user_id = user;
        s.item_id = "p2";
        s.kind = AISLE__V1__SIGNAL_KIND__CLICK;
        s.ts_ms = e.ts_ms + 5000;
        emit(ctx, &e, u % 10 < (treated ? 6 : 2) ? &s : NULL);
    }
    exp_set_release(set);
}

static void to_files(void *ctx, const Aisle__V1__Exposure *e, const Aisle__V1__Signal *s) {
    FILE **f = ctx;
    exp_delim_write(f[0], &e->base);
    if (s) exp_delim_write(f[1], &s->base);
}

static void check_output(void) {
    const char *out = slurp(path_o);
    TEST_REQUIRE(out);
    TEST_CHECK(strstr(out, "experiment learned: 2 variants, 400 users") != NULL);
    TEST_CHECK(strstr(out, "  significant") != NULL);
    const char *html = slurp(path_h);
    TEST_CHECK(html && strstr(html, "<svg") && strstr(html, "<h2>learned</h2>"));
}

static void test_from_files(void) {
    FILE *f[2] = {fopen(path_e, "wb"), fopen(path_s, "wb")};
    TEST_REQUIRE(f[0] && f[1]);
    generate(to_files, f);
    fclose(f[0]);
    fclose(f[1]);
    char *argv[] = {"report", "--exposures", path_e, "--signals", path_s, "--html", path_h, NULL};
    TEST_CHECK(run(7, argv) == 0);
    check_output();
}

typedef struct kafka_ctx {
    exposure_log *log;
    rd_kafka_t *rk;
} kafka_ctx;

static void to_kafka(void *ctx, const Aisle__V1__Exposure *e, const Aisle__V1__Signal *s) {
    kafka_ctx *k = ctx;
    exposure_log_submit(k->log, e);
    if (s) kafka_produce_msg(k->rk, KAFKA_TOPIC_SIGNALS, s->user_id, &s->base, err, sizeof(err));
}

static void test_from_kafka(void) {
    kafka_mock *m;
    TEST_REQUIRE(kafka_mock_start(1, 2, &m, err, sizeof(err)) == 0);
    const char *brokers = kafka_mock_bootstraps(m);
    kafka_ctx k = {0};
    TEST_REQUIRE(exposure_log_start(brokers, NULL, 0, &k.log, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE((k.rk = kafka_producer_new(brokers, err, sizeof(err))) != NULL);
    generate(to_kafka, &k);
    exposure_log_stop(k.log, 10000);
    rd_kafka_flush(k.rk, 10000);
    rd_kafka_destroy(k.rk);
    char *argv[] = {"report", "--kafka-brokers", (char *)brokers, "--html", path_h, NULL};
    TEST_CHECK(run(5, argv) == 0);
    check_output();
    kafka_mock_stop(m);
}

static void test_bad_flags(void) {
    char *none[] = {"report", NULL};
    char *half[] = {"report", "--exposures", path_e, NULL};
    char *alpha[] = {"report", "--kafka-brokers", "x", "--alpha", "2", NULL};
    char *expect[] = {"report", "--exposures", path_e, "--signals",
                      path_s,   "--expect",    "a=b",  NULL};
    TEST_CHECK(run(1, none) == 2);
    TEST_CHECK(run(3, half) == 2);
    TEST_CHECK(run(5, alpha) == 2);
    TEST_CHECK(run(7, expect) == 2);
    char *missing[] = {"report", "--exposures", "/nonexistent", "--signals", path_s, NULL};
    TEST_CHECK(run(5, missing) == 1);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    snprintf(path_e, sizeof(path_e), "%s/exposures", dir);
    snprintf(path_s, sizeof(path_s), "%s/signals", dir);
    snprintf(path_h, sizeof(path_h), "%s/report.html", dir);
    snprintf(path_o, sizeof(path_o), "%s/stdout", dir);
    TEST_RUN(test_from_files);
    TEST_RUN(test_from_kafka);
    TEST_RUN(test_bad_flags);
    unlink(path_e), unlink(path_s), unlink(path_h), unlink(path_o), rmdir(dir);
    return test_summary();
}
