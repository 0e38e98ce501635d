/* Tests for services/kafka on the librdkafka mock cluster: refused settings
 * and bad mock sizes give AISLE_EINVAL with a reason; a produced message
 * reaches a tail; a tail from the beginning reads every partition to its end
 * and reports it caught up, one from the end sees only what comes next. */
#include "services/kafka/kafka.h"
#include "services/kafka/tail.h"

#include <stdio.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/base/status.h"
#include "tests/test.h"

static void test_settings_and_sizes(void) {
    char err[256] = "";
    kafka_mock *m = NULL;
    rd_kafka_conf_t *conf = kafka_conf_new("127.0.0.1:1", err, sizeof(err));
    TEST_REQUIRE(conf != NULL);
    TEST_CHECK(kafka_conf_set(conf, "no.such.setting", "1", err, sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "no.such.setting"));
    TEST_CHECK(kafka_conf_set(conf, "linger.ms", "7", err, sizeof(err)) == AISLE_OK);
    rd_kafka_conf_destroy(conf);
    TEST_CHECK(kafka_mock_start(0, 1, &m, err, sizeof(err)) == AISLE_EINVAL && !m &&
               strstr(err, "brokers"));
    TEST_CHECK(kafka_mock_start(1, 5000, &m, err, sizeof(err)) == AISLE_EINVAL && !m);
}

static void produce(rd_kafka_t *p, const char *key, const char *event) {
    Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
    char err[256];
    s.event_id = (char *)event;
    s.user_id = (char *)key;
    TEST_CHECK(kafka_produce_msg(p, KAFKA_TOPIC_SIGNALS, key, &s.base, err, sizeof(err)) ==
               AISLE_OK);
}

/* Reads t until it is caught up and quiet; returns the messages seen. */
static int drain(tail *t, int want) {
    int n = 0;
    for (int64_t end = clock_mono_ms() + 10000; clock_mono_ms() < end;) {
        rd_kafka_message_t *m = tail_poll(t, 100);
        if (m) {
            n++;
            rd_kafka_message_destroy(m);
        } else if (n >= want && tail_caught_up(t)) {
            break;
        }
    }
    return n;
}

static void test_tail_from_either_end(void) {
    kafka_mock *m;
    rd_kafka_t *p;
    tail *all, *next;
    char err[256], key[16];
    TEST_REQUIRE(kafka_mock_start(1, 3, &m, err, sizeof(err)) == AISLE_OK);
    p = kafka_producer_new(kafka_mock_bootstraps(m), err, sizeof(err));
    TEST_REQUIRE(p != NULL);
    for (int i = 0; i < 30; i++) { /* keys spread over the three partitions */
        snprintf(key, sizeof(key), "k%d", i);
        produce(p, key, "old");
    }
    TEST_REQUIRE(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    TEST_REQUIRE(tail_open(kafka_mock_bootstraps(m), KAFKA_TOPIC_SIGNALS,
                           RD_KAFKA_OFFSET_BEGINNING, "test", &all, err, sizeof(err)) == 0);
    TEST_REQUIRE(tail_open(kafka_mock_bootstraps(m), KAFKA_TOPIC_SIGNALS, RD_KAFKA_OFFSET_END,
                           "test", &next, err, sizeof(err)) == 0);
    TEST_CHECK(!tail_caught_up(all));
    TEST_CHECK(drain(all, 30) == 30);
    TEST_CHECK(tail_caught_up(all));
    TEST_CHECK(drain(next, 0) == 0);
    produce(p, "k1", "new");
    produce(p, "k2", "new");
    rd_kafka_flush(p, 10000);
    TEST_CHECK(drain(next, 2) == 2);
    TEST_CHECK(drain(all, 2) == 2);
    tail_close(all);
    tail_close(next);
    rd_kafka_destroy(p);
    kafka_mock_stop(m);
}

int main(void) {
    TEST_RUN(test_settings_and_sizes);
    TEST_RUN(test_tail_from_either_end);
    return test_summary();
}
