/* Tests for services/ingest/facts on the librdkafka mock cluster: items
 * learned from the catalog topic, replaced by later versions, kept after a
 * delete, refused with an over-long category or brand, and unknown items
 * reported as such. */
#include "services/ingest/facts.h"

#include <stdio.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/kafka/kafka.h"
#include "tests/test.h"

static void put(rd_kafka_t *p, const char *id, const char *cat, const char *brand,
                int deleted) {
    Aisle__V1__CatalogItem ci = AISLE__V1__CATALOG_ITEM__INIT;
    char err[256];
    ci.item_id = (char *)id;
    ci.category = (char *)cat;
    ci.brand = (char *)brand;
    ci.deleted = deleted;
    TEST_CHECK(kafka_produce_msg(p, KAFKA_TOPIC_CATALOG, id, &ci.base, err, sizeof(err)) ==
               AISLE_OK);
}

/* Polls until item has category cat (or 10 s pass). */
static int wait_for(facts *f, const char *item, const char *cat) {
    int64_t deadline = clock_mono_ms() + 10000;
    const char *c, *b;
    while (clock_mono_ms() < deadline) {
        facts_poll(f, 100);
        if (facts_lookup(f, item, &c, &b) == AISLE_OK && c && strcmp(c, cat) == 0) return 1;
    }
    return 0;
}

static void test_learn_replace_keep(void) {
    kafka_mock *m;
    rd_kafka_t *p;
    facts *f;
    char err[256];
    const char *cat, *brand;
    TEST_REQUIRE(kafka_mock_start(1, 2, &m, err, sizeof(err)) == AISLE_OK);
    p = kafka_producer_new(kafka_mock_bootstraps(m), err, sizeof(err));
    TEST_REQUIRE(p != NULL);
    put(p, "a", "shoes", "acme", 0);
    put(p, "b", "hats", "", 0);
    rd_kafka_flush(p, 10000);
    TEST_REQUIRE(facts_open(kafka_mock_bootstraps(m), KAFKA_TOPIC_CATALOG, &f, err,
                            sizeof(err)) == AISLE_OK);
    TEST_CHECK(wait_for(f, "b", "hats") && wait_for(f, "a", "shoes"));
    TEST_CHECK(facts_count(f) == 2);
    TEST_CHECK(facts_lookup(f, "b", &cat, &brand) == AISLE_OK && brand == NULL);
    TEST_CHECK(facts_lookup(f, "zzz", &cat, &brand) == AISLE_ENOTFOUND && !cat && !brand);

    {
        static char huge[FACTS_MAX_FIELD + 2];
        memset(huge, 'x', sizeof(huge) - 1);
        put(p, "a", huge, "acme", 0); /* refused, as serve refuses it: "a" keeps shoes */
        put(p, "c", "ok", huge, 0);   /* refused: "c" stays unknown */
    }
    put(p, "a", "boots", "acme", 0); /* a new version replaces the old */
    put(p, "b", "", "", 1);          /* a delete keeps what was known */
    rd_kafka_flush(p, 10000);
    TEST_CHECK(wait_for(f, "a", "boots"));
    /* The delete of "b" may sit on the other partition: read both to their
     * ends (a bounded wait, not a timing check) before looking. */
    for (int i = 0; i < 200 && !facts_caught_up(f); i++) facts_poll(f, 50);
    TEST_CHECK(facts_lookup(f, "a", &cat, &brand) == AISLE_OK && strcmp(brand, "acme") == 0);
    TEST_CHECK(facts_lookup(f, "b", &cat, &brand) == AISLE_OK && strcmp(cat, "hats") == 0);
    TEST_CHECK(facts_count(f) == 2);
    TEST_CHECK(facts_lookup(f, "c", &cat, &brand) == AISLE_ENOTFOUND);
    TEST_CHECK(facts_caught_up(f));
    facts_close(f);
    rd_kafka_destroy(p);
    kafka_mock_stop(m);
}

static void test_many_items(void) {
    kafka_mock *m;
    rd_kafka_t *p;
    facts *f;
    char err[256], id[32], cat[32];
    const char *c, *b;
    int ok = 1;
    TEST_REQUIRE(kafka_mock_start(1, 4, &m, err, sizeof(err)) == AISLE_OK);
    p = kafka_producer_new(kafka_mock_bootstraps(m), err, sizeof(err));
    TEST_REQUIRE(p != NULL);
    for (int i = 0; i < 3000; i++) { /* past the first table's growth */
        snprintf(id, sizeof(id), "item-%d", i);
        snprintf(cat, sizeof(cat), "cat-%d", i % 7);
        put(p, id, cat, "b", 0);
    }
    rd_kafka_flush(p, 10000);
    TEST_REQUIRE(facts_open(kafka_mock_bootstraps(m), KAFKA_TOPIC_CATALOG, &f, err,
                            sizeof(err)) == AISLE_OK);
    for (int64_t end = clock_mono_ms() + 10000; facts_count(f) < 3000 && clock_mono_ms() < end;)
        facts_poll(f, 100);
    TEST_CHECK(facts_count(f) == 3000);
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "item-%d", i);
        snprintf(cat, sizeof(cat), "cat-%d", i % 7);
        ok &= facts_lookup(f, id, &c, &b) == AISLE_OK && strcmp(c, cat) == 0;
    }
    TEST_CHECK(ok);
    facts_close(f);
    rd_kafka_destroy(p);
    kafka_mock_stop(m);
}

int main(void) {
    TEST_RUN(test_learn_replace_keep);
    TEST_RUN(test_many_items);
    return test_summary();
}
