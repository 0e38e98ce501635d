/* Helpers shared by the embed tests: scratch directories, small files and
 * the location of the shared data sets beside the workspace. */
#ifndef AISLE_TESTS_EMBED_UTIL_H
#define AISLE_TESTS_EMBED_UTIL_H

#include <stddef.h>

/* A fresh directory under $TEST_TMPDIR (or /tmp); the path is static
 * storage overwritten by the next call. NULL on failure. */
const char *tu_mkdtemp(void);
/* Writes text to dir/name; returns the static full path or NULL. */
const char *tu_write(const char *dir, const char *name, const char *text);
/* Removes dir and everything below it. */
void tu_rmtree(const char *dir);
/* Rewrites dir/MANIFEST with the snapshot files' current sizes and
 * checksums (files absent are not listed), as a forger would, so that only
 * the parsers' own checks stand in the way. 0, or -1. */
int tu_reseal(const char *dir);
/* <workspace root>/../shared, found from the realpath of the runfile
 * `runfile`, or NULL (with a printed reason) when it is not there. */
const char *tu_shared_dir(const char *runfile);

#endif
