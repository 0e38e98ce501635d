/* Tests for services/obs/metrics and services/obs/http: the text format
 * (HELP, TYPE, labels escaped, cumulative buckets, _sum and _count),
 * get-or-create, collectors, concurrent updates, and the endpoint's
 * routes over a real socket. */
#include "services/obs/metrics.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "services/base/status.h"
#include "services/obs/http.h"
#include "tests/test.h"

static char *render(void) {
    buf b = {0};
    if (metrics_render(&b) != AISLE_OK) return NULL;
    return buf_take(&b);
}

static void test_counter_and_gauge_text(void) {
    metrics_family *c = metrics_counter("t_events_total", "Events by outcome", "outcome");
    metrics_family *g = metrics_gauge("t_items", "Items\nin the catalog", NULL);
    char *s;
    TEST_REQUIRE(c && g);
    TEST_CHECK(metrics_counter("t_events_total", "ignored", "outcome") == c);
    metrics_add(c, (const char *const[]){"applied"}, 3);
    metrics_add(c, (const char *const[]){"applied"}, 2);
    metrics_add(c, (const char *const[]){"odd \"one\"\\"}, 1);
    metrics_set(g, NULL, 42);
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "# HELP t_events_total Events by outcome\n"
                         "# TYPE t_events_total counter\n"
                         "t_events_total{outcome=\"applied\"} 5\n"
                         "t_events_total{outcome=\"odd \\\"one\\\"\\\\\"} 1\n") != NULL);
    TEST_CHECK(strstr(s, "# HELP t_items Items\\nin the catalog\n# TYPE t_items gauge\nt_items 42\n"));
    TEST_CHECK(strstr(s, "aisle_metrics_series_dropped_total 0\n") != NULL);
    free(s);
}

static void test_histogram_buckets_are_cumulative(void) {
    static const double bounds[] = {0.1, 1};
    metrics_family *h = metrics_histogram("t_duration_seconds", "Durations", "method,code",
                                          bounds, 2);
    const char *const v[] = {"Recommend", "OK"};
    char *s;
    metrics_observe(h, v, 0.05);
    metrics_observe(h, v, 0.5);
    metrics_observe(h, v, 5);
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "# TYPE t_duration_seconds histogram\n"
                         "t_duration_seconds_bucket{method=\"Recommend\",code=\"OK\",le=\"0.1\"} 1\n"
                         "t_duration_seconds_bucket{method=\"Recommend\",code=\"OK\",le=\"1\"} 2\n"
                         "t_duration_seconds_bucket{method=\"Recommend\",code=\"OK\",le=\"+Inf\"} 3\n"
                         "t_duration_seconds_sum{method=\"Recommend\",code=\"OK\"} 5.55\n"
                         "t_duration_seconds_count{method=\"Recommend\",code=\"OK\"} 3\n") != NULL);
    free(s);
}

static void collect(void *arg) {
    metrics_set(metrics_gauge("t_collected", "Set by a collector", NULL), NULL, *(double *)arg);
}

static void test_collectors_run_before_render(void) {
    double v = 7;
    char *s;
    TEST_REQUIRE(metrics_collector_add(collect, &v) == AISLE_OK);
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "t_collected 7\n") != NULL);
    free(s);
    metrics_collector_remove(collect, &v);
    v = 9;
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "t_collected 7\n") != NULL); /* not run again */
    free(s);
    metrics_clear(metrics_gauge("t_collected", "", NULL));
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "t_collected 7") == NULL);
    free(s);
}

static void *hammer(void *arg) {
    metrics_family *c = arg;
    for (int i = 0; i < 10000; i++) metrics_add(c, (const char *const[]){i % 2 ? "a" : "b"}, 1);
    return NULL;
}

static void test_concurrent_adds_all_count(void) {
    metrics_family *c = metrics_counter("t_hammered_total", "Concurrent adds", "side");
    pthread_t th[4];
    char *s;
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, c);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "t_hammered_total{side=\"b\"} 20000\n") != NULL);
    TEST_CHECK(strstr(s, "t_hammered_total{side=\"a\"} 20000\n") != NULL);
    free(s);
}

static void test_too_many_series_are_dropped_and_counted(void) {
    metrics_family *c = metrics_counter("t_wide_total", "Unbounded label", "id");
    char id[16], *s;
    for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
        snprintf(id, sizeof(id), "%d", i);
        metrics_add(c, (const char *const[]){id}, 1);
    }
    TEST_REQUIRE((s = render()) != NULL);
    TEST_CHECK(strstr(s, "aisle_metrics_series_dropped_total 5\n") != NULL);
    free(s);
}

/* GET path on 127.0.0.1:port; the whole answer (status line, headers, body). */
static char *http_get(int port, const char *path) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    buf b = {0};
    char chunk[4096];
    ssize_t n;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    buf_printf(&b, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    if (write(fd, b.data, b.len) != (ssize_t)b.len) n = -1;
    buf_reset(&b);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) buf_put(&b, chunk, (size_t)n);
    close(fd);
    return buf_take(&b);
}

static int ready_route(void *arg, obs_http_request *r, buf *body) {
    const char *who = obs_http_query(r, "who");
    buf_printf(body, "%s %s\n", *(int *)arg ? "ready" : "not ready", who ? who : "-");
    return *(int *)arg ? 200 : 503;
}

/* Writes "n=N" and then N lines, each as its own piece. */
static void counting_stream(void *arg, obs_http_request *r, obs_http_stream *st) {
    const char *n = obs_http_query(r, "n");
    char line[32];
    (void)arg;
    for (int i = 0; n && i < atoi(n); i++) {
        int len = snprintf(line, sizeof(line), "line %d\n", i);
        if (obs_http_write(st, line, (size_t)len)) return;
    }
}

static void test_endpoint_routes(void) {
    int ready = 0;
    obs_http_config cfg = {.listen = "127.0.0.1:0",
                           .routes = {{"/readyz", "text/plain", ready_route, &ready, NULL},
                                      {"/count", "text/plain", NULL, NULL, counting_stream}},
                           .n_routes = 2};
    obs_http *h;
    char err[256], *s;
    TEST_REQUIRE(obs_http_start(&cfg, &h, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(obs_http_port(h) > 0);
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/metrics")) != NULL);
    TEST_CHECK(strncmp(s, "HTTP/1.0 200", 12) == 0 || strncmp(s, "HTTP/1.1 200", 12) == 0);
    TEST_CHECK(strstr(s, "text/plain; version=0.0.4") != NULL);
    TEST_CHECK(strstr(s, "# TYPE t_events_total counter") != NULL);
    free(s);
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/healthz")) != NULL);
    TEST_CHECK(strstr(s, " 200 ") && strstr(s, "\r\n\r\nok\n"));
    free(s);
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/readyz?who=me")) != NULL);
    TEST_CHECK(strstr(s, " 503 ") && strstr(s, "not ready me\n"));
    free(s);
    ready = 1;
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/readyz")) != NULL);
    TEST_CHECK(strstr(s, " 200 ") && strstr(s, "ready -\n"));
    free(s);
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/count?n=3")) != NULL);
    TEST_CHECK(strstr(s, " 200 ") && strstr(s, "\r\n\r\nline 0\nline 1\nline 2\n"));
    free(s);
    TEST_REQUIRE((s = http_get(obs_http_port(h), "/nope")) != NULL);
    TEST_CHECK(strstr(s, " 404 ") != NULL);
    free(s);
    obs_http_stop(h);
}

static void test_bad_address_is_an_error(void) {
    obs_http_config cfg = {.listen = "127.0.0.1"};
    obs_http *h;
    char err[256];
    TEST_CHECK(obs_http_start(&cfg, &h, err, sizeof(err)) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "HOST:PORT") != NULL);
    cfg.listen = "127.0.0.1:99999";
    TEST_CHECK(obs_http_start(&cfg, &h, err, sizeof(err)) == AISLE_EINVAL);
}

int main(void) {
    TEST_RUN(test_counter_and_gauge_text);
    TEST_RUN(test_histogram_buckets_are_cumulative);
    TEST_RUN(test_collectors_run_before_render);
    TEST_RUN(test_concurrent_adds_all_count);
    TEST_RUN(test_too_many_series_are_dropped_and_counted);
    TEST_RUN(test_endpoint_routes);
    TEST_RUN(test_bad_address_is_an_error);
    return test_summary();
}
