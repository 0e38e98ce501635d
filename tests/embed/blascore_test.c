/* blascore: the generic fallback alone is replaced, by the best core the
 * CPU can run; and once this process has been through blascore_fix,
 * OpenBLAS runs kernels no later fix would change. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "embed/blascore.h"
#include "tests/test.h"

static void test_only_the_fallback_is_replaced(void) {
    TEST_CHECK(strcmp(blascore_wanted("Prescott", 1, 1), "SkylakeX") == 0);
    TEST_CHECK(strcmp(blascore_wanted("PRESCOTT", 0, 1), "Haswell") == 0);
    TEST_CHECK(blascore_wanted("Prescott", 0, 0) == NULL);
    TEST_CHECK(blascore_wanted("Haswell", 1, 1) == NULL);
    TEST_CHECK(blascore_wanted("SkylakeX", 1, 1) == NULL);
    TEST_CHECK(blascore_wanted(NULL, 1, 1) == NULL);
}

static void test_this_process_runs_native_kernels(void) {
    int avx512, avx2;
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    printf("OpenBLAS core: %s\n", openblas_get_corename());
    TEST_CHECK(blascore_wanted(openblas_get_corename(), avx512, avx2) == NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    blascore_fix(argv);
    TEST_RUN(test_only_the_fallback_is_replaced);
    TEST_RUN(test_this_process_runs_native_kernels);
    return test_summary();
}
