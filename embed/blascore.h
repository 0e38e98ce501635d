/* blascore: makes Debian's OpenBLAS use the kernels this CPU can run.
 *
 * OpenBLAS picks its kernels once, when the library loads, from the CPU
 * model. Debian's 0.3.21 does not know recent Intel server parts and falls
 * back to its generic "Prescott" (SSE3) kernels: on this machine kind a
 * full Gowalla eval then takes 3.1 times the CPU (78 against 25 s). Its
 * only switch is the OPENBLAS_CORETYPE environment variable, read at load,
 * so a process that finds the fallback sets it and executes itself again
 * before doing anything else. */
#ifndef AISLE_EMBED_BLASCORE_H
#define AISLE_EMBED_BLASCORE_H

/* The core type to ask for, given what OpenBLAS chose (corename) and what
 * the CPU has; NULL when OpenBLAS's own choice stands: it is not the
 * generic fallback, or the CPU has neither AVX-512 nor AVX2 with FMA. */
const char *blascore_wanted(const char *corename, int has_avx512, int has_avx2_fma);

/* Call first in main, with main's argv. When OPENBLAS_CORETYPE is unset
 * and blascore_wanted names a core, sets it and re-executes
 * /proc/self/exe with argv (it does not return then); otherwise, or if the
 * exec fails, returns and the process goes on with OpenBLAS's choice. An
 * operator keeps any choice by setting OPENBLAS_CORETYPE themselves. */
void blascore_fix(char **argv);

#endif
