/* Tests for services/feed against the Kafka mock cluster: upserts, updates,
 * deletes by flag and by tombstone, invalid messages skipped with a count,
 * creator names kept and bounded, and readiness once every partition has been read to its end. */
#include "services/serve/feed.h"

#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/kafka/kafka.h"
#include "services/base/status.h"
#include "tests/test.h"

#define DIM 4

static kafka_mock *mock;
static rd_kafka_t *producer;

static void produce_item(const char *id, float x, int deleted, size_t dim) {
    Aisle__V1__CatalogItem it = AISLE__V1__CATALOG_ITEM__INIT;
    float v[DIM + 1] = {x, 1, 0, 0, 0};
    char err[256];
    it.item_id = (char *)id;
    it.title = "t";
    it.in_stock = 1;
    it.deleted = deleted;
    it.embedding = v;
    it.n_embedding = dim;
    kafka_produce_msg(producer, KAFKA_TOPIC_CATALOG, id, &it.base, err, sizeof(err));
}

static void produce_raw(const char *key, const void *val, size_t len) {
    rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(KAFKA_TOPIC_CATALOG),
                      RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

static int wait_until(feed *f, uint64_t applied, uint64_t rejected) {
    feed_stats st;
    for (int64_t until = clock_mono_ms() + 20000; clock_mono_ms() < until;) {
        feed_get_stats(f, &st);
        if (feed_ready(f) && st.applied >= applied && st.rejected >= rejected) return 1;
        clock_sleep_ms(10);
    }
    return 0;
}

static void test_feed_applies_and_skips(void) {
    catalog_config cfg;
    catalog *c;
    feed *f;
    char err[256];
    size_t slot;
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == 0);
    produce_item("keep", 1, 0, DIM);
    produce_item("moved", 1, 0, DIM);
    produce_item("flagged", 1, 0, DIM);
    produce_item("tomb", 1, 0, DIM);
    produce_item("moved", 5, 0, DIM);       /* update */
    produce_item("flagged", 0, 1, DIM);     /* delete by flag */
    produce_raw("tomb", NULL, 0);           /* delete by tombstone */
    produce_item("short", 1, 0, DIM - 1);   /* wrong length: skipped */
    produce_raw("junk", "\xff\xff\xff", 3); /* not a CatalogItem: skipped */
    TEST_REQUIRE(rd_kafka_flush(producer, 10000) == 0);

    feed_config fc;
    feed_config_default(&fc);
    fc.brokers = kafka_mock_bootstraps(mock);
    TEST_REQUIRE(feed_start(&fc, c, &f, err, sizeof(err)) == 0);
    TEST_CHECK(wait_until(f, 7, 2));
    catalog_read_begin(c);
    TEST_CHECK(catalog_count(c) == 2);
    TEST_CHECK(catalog_lookup(c, "keep", &slot) == 0);
    TEST_CHECK(catalog_lookup(c, "moved", &slot) == 0 && catalog_vector(c, slot)[0] == 5);
    TEST_CHECK(catalog_lookup(c, "flagged", &slot) == AISLE_ENOTFOUND);
    TEST_CHECK(catalog_lookup(c, "tomb", &slot) == AISLE_ENOTFOUND);
    TEST_CHECK(catalog_lookup(c, "short", &slot) == AISLE_ENOTFOUND);
    catalog_read_end(c);

    /* Live updates after catching up. */
    produce_item("late", 2, 0, DIM);
    rd_kafka_flush(producer, 10000);
    for (int64_t until = clock_mono_ms() + 10000; clock_mono_ms() < until;) {
        catalog_read_begin(c);
        int found = catalog_lookup(c, "late", &slot) == 0;
        catalog_read_end(c);
        if (found) break;
        clock_sleep_ms(5);
    }
    catalog_read_begin(c);
    TEST_CHECK(catalog_lookup(c, "late", &slot) == 0);
    catalog_read_end(c);
    feed_stop(f);
    catalog_free(c);
}

/* A creator's display name is carried into the catalog, and refused past
 * the longest field, like every string of an item. */
static void test_creator_name_is_kept_and_bounded(void) {
    Aisle__V1__CatalogItem it = AISLE__V1__CATALOG_ITEM__INIT;
    float v[DIM] = {1, 0, 0, 0};
    uint8_t buf[4096];
    char err[256], name[CATALOG_MAX_FIELD + 2];
    catalog_config cfg;
    catalog *c;
    size_t slot, n;
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == AISLE_OK);
    it.item_id = "n1";
    it.creator_id = "c1";
    it.creator_name = "Mia Chen";
    it.embedding = v;
    it.n_embedding = DIM;
    n = aisle__v1__catalog_item__pack(&it, buf);
    TEST_CHECK(feed_apply_message(c, "n1", 2, buf, n, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(catalog_lookup(c, "n1", &slot) == AISLE_OK);
    TEST_CHECK_STR(catalog_at(c, slot)->creator_name, "Mia Chen");
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    it.creator_name = name;
    n = aisle__v1__catalog_item__pack(&it, buf);
    TEST_CHECK(feed_apply_message(c, "n1", 2, buf, n, err, sizeof(err)) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "creator_name is longer than") != NULL);
    TEST_CHECK_STR(catalog_at(c, slot)->creator_name, "Mia Chen"); /* as it was */
    catalog_free(c);
}

static void test_bad_topic_is_not_ready(void) {
    catalog_config cfg;
    catalog *c;
    feed *f;
    char err[256];
    catalog_config_default(&cfg);
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == 0);
    feed_config fc;
    feed_config_default(&fc);
    fc.brokers = kafka_mock_bootstraps(mock);
    fc.topic = "no.such.topic";
    TEST_REQUIRE(feed_start(&fc, c, &f, err, sizeof(err)) == 0);
    clock_sleep_ms(300);
    TEST_CHECK(!feed_ready(f));
    feed_stop(f);
    catalog_free(c);
}

int main(void) {
    char err[256];
    if (kafka_mock_start(1, 4, &mock, err, sizeof(err)) != 0 ||
        !(producer = kafka_producer_new(kafka_mock_bootstraps(mock), err, sizeof(err)))) {
        fprintf(stderr, "kafka mock: %s\n", err);
        return 1;
    }
    TEST_RUN(test_feed_applies_and_skips);
    TEST_RUN(test_creator_name_is_kept_and_bounded);
    TEST_RUN(test_bad_topic_is_not_ready);
    rd_kafka_destroy(producer);
    kafka_mock_stop(mock);
    return test_summary();
}
