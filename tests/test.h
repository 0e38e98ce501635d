/* Minimal unit-test support shared by every cc_test in tests/.
 *
 * A test file defines static test functions and lists them in main() with
 * TEST_RUN(); a failed check reports file:line and the test goes on to the
 * next function. main() returns test_summary(), which prints
 * "N passed, N failed" and is non-zero when anything failed, so Bazel and the
 * CI script agree on the outcome. */
#ifndef AISLE_TEST_H
#define AISLE_TEST_H

#include <stdio.h>
#include <string.h>

extern int test_failed_checks; /* checks failed inside the current test */
extern int test_passed;
extern int test_failed;

#define TEST_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
            test_failed_checks++;                                             \
        }                                                                     \
    } while (0)

/* Stops the current test: for checks later lines depend on (a NULL that
 * would be dereferenced next). */
#define TEST_REQUIRE(cond)                                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                         \
            test_failed_checks++;                                             \
            return;                                                           \
        }                                                                     \
    } while (0)

#define TEST_CHECK_STR(a, b) TEST_CHECK(strcmp((a), (b)) == 0)

#define TEST_RUN(fn) test_run_one(#fn, fn)

void test_run_one(const char *name, void (*fn)(void));
int test_summary(void);

#endif
