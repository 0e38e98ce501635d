/* Tests for services/base/buf: appends of every kind, growth, taking the
 * contents, and the sticky failure. */
#include "services/base/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "tests/test.h"

static void test_appends_and_growth(void) {
    buf b = {0};
    TEST_CHECK_STR(buf_str(&b), "");
    buf_puts(&b, "price ");
    buf_printf(&b, "$%d.%02d", 12, 5);
    buf_putc(&b, '!');
    TEST_CHECK_STR(buf_str(&b), "price $12.05!");
    TEST_CHECK(b.len == strlen("price $12.05!"));
    for (int i = 0; i < 10000; i++) buf_put(&b, "0123456789", 10);
    TEST_CHECK(b.len == 13 + 100000);
    TEST_CHECK(b.data[b.len] == '\0');
    TEST_CHECK(buf_status(&b) == AISLE_OK);
    buf_reset(&b);
    TEST_CHECK(b.len == 0 && *buf_str(&b) == '\0');
    buf_free(&b);
}

static void test_take_hands_over(void) {
    buf b = {0};
    char *s;
    buf_printf(&b, "%s-%s", "a", "b");
    s = buf_take(&b);
    TEST_REQUIRE(s != NULL);
    TEST_CHECK_STR(s, "a-b");
    TEST_CHECK(b.data == NULL && b.len == 0);
    free(s);
    s = buf_take(&b); /* an empty buffer gives "" */
    TEST_REQUIRE(s != NULL);
    TEST_CHECK_STR(s, "");
    free(s);
}

static void test_failure_is_sticky(void) {
    buf b = {0};
    buf_puts(&b, "kept");
    /* A reservation no allocator can satisfy fails and poisons the buffer. */
    TEST_CHECK(buf_reserve(&b, SIZE_MAX / 2) == AISLE_ENOMEM);
    buf_puts(&b, " more");
    TEST_CHECK(buf_status(&b) == AISLE_ENOMEM);
    TEST_CHECK(buf_take(&b) == NULL);
    TEST_CHECK(b.data == NULL);
}

int main(void) {
    TEST_RUN(test_appends_and_growth);
    TEST_RUN(test_take_hands_over);
    TEST_RUN(test_failure_is_sticky);
    return test_summary();
}
