/* msg: the engine's one formatter for error messages into caller buffers.
 * Every loader reports why a file was refused; a NULL or empty buffer
 * means the caller wants only the return code. */
#ifndef AISLE_MODEL_MSG_H
#define AISLE_MODEL_MSG_H

#include <stddef.h>

void msg_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
