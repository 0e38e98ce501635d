/* See err.h. */
#include "embed/err.h"

#include <stdarg.h>
#include <stdio.h>

void embed_err_set(char *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, EMBED_ERR_LEN, fmt, ap);
    va_end(ap);
}
