/* fuzzfile: fuzz targets whose decoder reads a file (model and tokenizer
 * loaders, the configuration file) get their input as one. */
#ifndef AISLE_FUZZFILE_H
#define AISLE_FUZZFILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes data to this process's scratch file (named after suffix, e.g.
 * ".gguf") and returns its path (static storage), or NULL. */
const char *fuzzfile_write(const uint8_t *data, size_t size, const char *suffix);

#endif
