/* util.h — shared helpers for the model tests: locating shared/ (models
 * live beside the repository, not in it), scratch files, random weight
 * blocks and the top logit. */
#ifndef AISLE_TESTS_MODEL_UTIL_H
#define AISLE_TESTS_MODEL_UTIL_H

#include <stddef.h>

/* Directory of stories260K (".../shared/models/stories260K"), or NULL after
 * printing a skip notice when shared/ is not beside the workspace. */
const char *tu_stories_dir(void);

/* ".../shared/models/gguf" (llama.cpp's reference data), or NULL after a
 * skip notice. */
const char *tu_gguf_dir(void);

/* Path of a file in the stories260K directory; static storage. */
const char *tu_stories(const char *name);

/* A fresh path under the test's scratch directory; static storage rotated
 * among 8 slots. */
const char *tu_tmp(const char *name);

/* Copies src to dst keeping only the first n bytes; 0 or -1. */
int tu_copy_prefix(const char *src, const char *dst, size_t n);

/* Reads a whole file into a malloc'd buffer (caller frees); NULL on error. */
unsigned char *tu_read(const char *path, size_t *size);
int tu_write(const char *path, const void *data, size_t size);

/* n values of a GGUF block type as random bytes drawn from rand (values in
 * [-1, 1)), with sane half-precision scales (any bit pattern is a valid
 * block otherwise); malloc'd, the caller frees. */
void *tu_random_blocks(int type, size_t n, float (*rand)(void));

/* Index of the largest of x[0..n), the first on ties. */
int tu_argmax(const float *x, int n);

#endif
