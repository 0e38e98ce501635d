/* status: names of the shared error codes and the error-buffer formatter. */
#include "services/base/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *status_str(int code) {
    switch (code) {
    case AISLE_OK: return "ok";
    case AISLE_EINVAL: return "invalid argument";
    case AISLE_EIO: return "input/output error";
    case AISLE_ENOMEM: return "out of memory";
    case AISLE_EFORMAT: return "bad format";
    case AISLE_ENOTFOUND: return "not found";
    case AISLE_EFULL: return "capacity used up";
    case AISLE_EUNAVAIL: return "unavailable";
    case AISLE_ECANCELED: return "cancelled";
    case AISLE_EINTERNAL: return "internal error";
    case AISLE_EUNAUTH: return "unauthenticated";
    case AISLE_EDENIED: return "permission denied";
    case AISLE_ETIMEDOUT: return "deadline exceeded";
    default: return "unknown status";
    }
}

static void status_vfmt(char *err, size_t errlen, const char *fmt, va_list ap) {
    if (!err || errlen == 0) return;
    vsnprintf(err, errlen, fmt, ap);
}

void status_fmt(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    status_vfmt(err, errlen, fmt, ap);
    va_end(ap);
}

int status_fail(int code, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    status_vfmt(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}
