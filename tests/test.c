/* Runner half of tests/test.h: counts tests and prints the summary line. */
#include "tests/test.h"

int test_failed_checks;
int test_passed;
int test_failed;

void test_run_one(const char *name, void (*fn)(void)) {
    test_failed_checks = 0;
    fn();
    if (test_failed_checks) {
        fprintf(stderr, "FAIL %s\n", name);
        test_failed++;
    } else {
        fprintf(stderr, "ok   %s\n", name);
        test_passed++;
    }
}

int test_summary(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
