/* Tests for services/base/clock: a sleep until a time never returns before
 * it, a time already past (or none) returns at once, and the monotonic
 * clocks agree with each other. No bound on how late a sleep ends: that
 * is the machine's, and a figure for bench/, not a test. */
#include "services/base/clock.h"

#include <stdint.h>

#include "tests/test.h"

static void test_sleep_until_never_early(void) {
    for (int i = 0; i < 20; i++) {
        int64_t until = clock_mono_us() + 200 + 100 * i;
        clock_sleep_until_us(until);
        TEST_CHECK(clock_mono_us() >= until);
    }
}

static void test_past_returns(void) {
    clock_sleep_until_us(clock_mono_us() - 1000000);
    clock_sleep_until_us(0);
    clock_sleep_until_us(-5); /* returning is the test */
}

static void test_mono_units_agree(void) {
    int64_t ms = clock_mono_ms(), us = clock_mono_us();
    TEST_CHECK(us / 1000 >= ms && us / 1000 - ms < 1000);
}

int main(void) {
    TEST_RUN(test_sleep_until_never_early);
    TEST_RUN(test_past_returns);
    TEST_RUN(test_mono_units_agree);
    return test_summary();
}
