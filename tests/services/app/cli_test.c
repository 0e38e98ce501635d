/* Tests for services/cli number parsing: whole-argument, in-range values
 * only, so a typo is a usage error and never a silent default. */
#include "services/app/cli.h"

#include "tests/test.h"

static void test_int(void) {
    long long v = 0;
    TEST_CHECK(cli_int("t", "n", "42", 0, 100, &v) == 0 && v == 42);
    TEST_CHECK(cli_int("t", "n", "-1", 0, 100, &v) == -1);
    TEST_CHECK(cli_int("t", "n", "101", 0, 100, &v) == -1);
    TEST_CHECK(cli_int("t", "n", "12abc", 0, 100, &v) == -1);
    TEST_CHECK(cli_int("t", "n", "", 0, 100, &v) == -1);
    TEST_CHECK(cli_int("t", "n", "99999999999999999999999", 0, 100, &v) == -1);
    TEST_CHECK(v == 42);
}

static void test_double(void) {
    double d = 0;
    TEST_CHECK(cli_double("t", "x", "2.5", 1, 3, &d) == 0 && d == 2.5);
    TEST_CHECK(cli_double("t", "x", "nan", 1, 3, &d) == -1);
    TEST_CHECK(cli_double("t", "x", "inf", 1, 3, &d) == -1);
    TEST_CHECK(cli_double("t", "x", "0.5", 1, 3, &d) == -1);
    TEST_CHECK(cli_double("t", "x", "2.5x", 1, 3, &d) == -1);
}

int main(void) {
    TEST_RUN(test_int);
    TEST_RUN(test_double);
    return test_summary();
}
