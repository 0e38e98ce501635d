/* Tests for services/base/grow: the first size, doubling, no change while
 * there is room, and an overflowing size refused with the array kept. */
#include "services/base/grow.h"

#include <stdint.h>
#include <stdlib.h>

#include "services/base/status.h"
#include "tests/test.h"

static void test_doubles_from_first(void) {
    uint32_t *a = NULL, *before;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < 100; i++) {
        TEST_REQUIRE(GROW_ROOM(a, n, cap, 4) == AISLE_OK);
        a[n++] = i;
        if (n == 1) TEST_CHECK(cap == 4);
    }
    TEST_CHECK(cap == 128);
    for (uint32_t i = 0; i < 100; i++) TEST_CHECK(a[i] == i);
    before = a;
    TEST_CHECK(GROW_ROOM(a, n, cap, 4) == AISLE_OK); /* room left: unchanged */
    TEST_CHECK(a == before && cap == 128);
    free(a);
}

static void test_overflow_keeps_the_array(void) {
    double *a = malloc(sizeof(*a)), *before = a;
    size_t cap = SIZE_MAX / 2 + 1; /* twice it wraps */
    TEST_REQUIRE(a);
    TEST_CHECK(GROW_ROOM(a, cap, cap, 1) == AISLE_ENOMEM);
    TEST_CHECK(a == before && cap == SIZE_MAX / 2 + 1);
    cap = SIZE_MAX / sizeof(*a) / 2 + 1; /* twice it times the size overflows */
    TEST_CHECK(GROW_ROOM(a, cap, cap, 1) == AISLE_ENOMEM);
    TEST_CHECK(a == before);
    free(a);
}

int main(void) {
    TEST_RUN(test_doubles_from_first);
    TEST_RUN(test_overflow_keeps_the_array);
    return test_summary();
}
