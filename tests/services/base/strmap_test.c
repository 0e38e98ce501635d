/* Tests for services/base/strmap: puts, overwrites, deletes, tombstone reuse and
 * growth past many rehashes. */
#include "services/base/strmap.h"

#include <stdio.h>

#include "services/base/status.h"

#include "tests/test.h"

static void test_put_get_del(void) {
    strmap m;
    size_t v = 0;
    strmap_init(&m);
    TEST_CHECK(strmap_get(&m, "a", strlen("a"), &v) == AISLE_ENOTFOUND);
    TEST_CHECK(strmap_put(&m, "a", strlen("a"), 1) == 0);
    TEST_CHECK(strmap_put(&m, "b", strlen("b"), 2) == 0);
    TEST_CHECK(strmap_put(&m, "a", strlen("a"), 3) == 0);
    TEST_CHECK(strmap_get(&m, "a", strlen("a"), &v) == 0 && v == 3);
    TEST_CHECK(m.used == 2);
    TEST_CHECK(strmap_del(&m, "a", strlen("a")) == 0);
    TEST_CHECK(strmap_del(&m, "a", strlen("a")) == AISLE_ENOTFOUND);
    TEST_CHECK(strmap_get(&m, "a", strlen("a"), &v) == AISLE_ENOTFOUND);
    TEST_CHECK(strmap_get(&m, "b", strlen("b"), &v) == 0 && v == 2);
    strmap_free(&m);
}

static void test_many_with_churn(void) {
    strmap m;
    char key[32];
    size_t v;
    int bad = 0;
    strmap_init(&m);
    for (size_t i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "item-%zu", i);
        if (strmap_put(&m, key, strlen(key), i)) bad++;
        if (i % 3 == 0) {
            snprintf(key, sizeof(key), "item-%zu", i / 2);
            strmap_del(&m, key, strlen(key));
        }
    }
    for (size_t i = 25000; i < 50000; i++) {
        snprintf(key, sizeof(key), "item-%zu", i);
        if (strmap_get(&m, key, strlen(key), &v) != 0 || v != i) bad++;
    }
    TEST_CHECK(bad == 0);
    TEST_CHECK(m.used + m.tombs < m.cap);
    strmap_free(&m);
}

/* Keys are bytes of a given length: embedded NULs and prefixes are
 * distinct keys, as token pieces need. */
static void test_binary_keys(void) {
    strmap m = {0};
    size_t v = 0;
    TEST_CHECK(strmap_put(&m, "a\0b", 3, 1) == AISLE_OK);
    TEST_CHECK(strmap_put(&m, "a", 1, 2) == AISLE_OK);
    TEST_CHECK(strmap_put(&m, "", 0, 3) == AISLE_OK);
    TEST_CHECK(strmap_get(&m, "a\0b", 3, &v) == AISLE_OK && v == 1);
    TEST_CHECK(strmap_get(&m, "a\0c", 3, &v) == AISLE_ENOTFOUND);
    TEST_CHECK(strmap_get(&m, "a", 1, &v) == AISLE_OK && v == 2);
    TEST_CHECK(strmap_get(&m, "", 0, &v) == AISLE_OK && v == 3);
    TEST_CHECK(m.used == 3);
    strmap_free(&m);
}

int main(void) {
    TEST_RUN(test_binary_keys);
    TEST_RUN(test_put_get_del);
    TEST_RUN(test_many_with_churn);
    return test_summary();
}
