/* status: the one vocabulary of error codes every Aisle module returns.
 *
 * A function that can fail returns AISLE_OK (0) or one of the negative codes
 * below, never a number of its own, so a code keeps its meaning as it
 * travels up the layers: the gRPC transport maps it to a status once
 * (services/serve/grpcstatus.h), the commands to an exit code. Where a
 * caller needs the reason in words, the function also takes an error
 * buffer (pointer and length) and fills it with status_fmt. */
#ifndef AISLE_STATUS_H
#define AISLE_STATUS_H

#include <stddef.h>

enum {
    AISLE_OK = 0,
    AISLE_EINVAL = -1,    /* the caller's input is invalid */
    AISLE_EIO = -2,       /* a file, a server or the network failed */
    AISLE_ENOMEM = -3,    /* out of memory */
    AISLE_EFORMAT = -4,   /* data that is corrupt, truncated or unsupported */
    AISLE_ENOTFOUND = -5, /* what was asked for does not exist */
    AISLE_EFULL = -6,     /* a fixed capacity is used up */
    AISLE_EUNAVAIL = -7,  /* a dependency is down for now: retry later */
    AISLE_ECANCELED = -8, /* the caller gave up or the deadline passed */
    AISLE_EINTERNAL = -9, /* a broken invariant or a library's failure */
    AISLE_EUNAUTH = -10,  /* no credentials, or ones nobody issued */
    AISLE_EDENIED = -11,  /* known credentials without the right for this */
    AISLE_ETIMEDOUT = -12, /* the deadline passed before the work started */
};

/* A short name for code ("invalid argument", ...); "unknown status" for a
 * number outside the set. */
const char *status_str(int code);

/* Formats the reason into err (errlen bytes, always terminated when errlen
 * is not 0). err may be NULL or errlen 0: the caller wants only the code. */
void status_fmt(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* status_fmt, then returns code: `return status_fail(AISLE_EINVAL, err,
 * errlen, "...")` reports and fails in one statement. */
int status_fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
