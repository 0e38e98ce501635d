/* numfmt: doubles as short decimal text that reads back exactly, fast.
 *
 * Every weight the profile write sends or stores is text (Redis arguments
 * and hash values), and glibc's "%.17g" was the largest single cost of
 * both the worker and Redis per event: it divides in multiple precision.
 * This formats with one long-double multiply instead: integers as
 * integers, anything else as 17 significant digits (trailing zeros
 * dropped), which strtod, Lua's tonumber and Python's float read back to
 * the same double. Shared by the store (profile.c) and the Redis module
 * (redis_module.c), so both writes store the same text. */
#ifndef AISLE_NUMFMT_H
#define AISLE_NUMFMT_H

#include <stddef.h>

#define NUMFMT_MAX 32 /* bytes numfmt_double writes at most, NUL included */

/* Writes v into out (NUMFMT_MAX bytes) and returns its length. NaN and
 * infinities are written as "%.17g" writes them. */
size_t numfmt_double(char *out, double v);

#endif
