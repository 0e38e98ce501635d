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

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer's suppressions for every unit test (--config=tsan).
 * FAISS trains and fills IVF indexes inside OpenMP parallel regions, and
 * Debian's libgomp is not built with TSan, so the barrier that orders the
 * workers' reads before the caller's free is invisible to it. Only reports
 * with a FAISS, C++ standard library (FAISS's containers: our code is C)
 * or libgomp frame are suppressed. Tests link statically under TSan so
 * that this definition, not the runtime's empty one, is found. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
    return "race:faiss::\nrace:std::\nrace:libgomp.so\n";
}
#endif
