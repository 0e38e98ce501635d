/* blascore: re-executes the process with OPENBLAS_CORETYPE set when
 * Debian's OpenBLAS fell back to its generic kernels on a CPU that has
 * AVX-512 or AVX2 (blascore.h says why). */
#include "embed/blascore.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *blascore_wanted(const char *corename, int has_avx512, int has_avx2_fma) {
    if (!corename || strcasecmp(corename, "prescott") != 0) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2_fma) return "Haswell";
    return NULL;
}

void blascore_fix(char **argv) {
    const char *want;
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    want = blascore_wanted(openblas_get_corename(),
                           __builtin_cpu_supports("avx512f") &&
                               __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512dq") &&
                               __builtin_cpu_supports("avx512vl"),
                           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* The exec failed (no /proc): go on with the generic kernels, and let
     * a child process not try again. */
}
