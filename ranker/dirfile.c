/* dirfile: header, directives, "end" (see dirfile.h). */
#include "ranker/dirfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

int dirfile_float(const char *s, double lo, double hi, float *out) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = (float)v;
    return 0;
}

int dirfile_int(const char *s, long lo, long hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Splits line into at most DIRFILE_MAX_WORDS words (comments dropped);
 * returns the count, one more when there are more. */
static int dirfile_words(char *line, char **w) {
    int n = 0;
    char *hash = strchr(line, '#'), *save = NULL, *tok;
    if (hash) *hash = 0;
    for (tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == DIRFILE_MAX_WORDS) return n + 1;
        w[n++] = tok;
    }
    return n;
}

/* Checks the header line (words w[0..n)). */
static int dirfile_header(const char *path, int lineno, const char *name, int version,
                          char **w, int n, char *err, size_t errlen) {
    int got;
    if (n != 2 || strcmp(w[0], name) || dirfile_int(w[1], 1, 1000, &got))
        return status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: not an %s file (want '%s %d')",
                           path, lineno, name, name, version);
    if (got != version)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s:%d: version %d; this server reads version %d", path, lineno, got,
                           version);
    return AISLE_OK;
}

int dirfile_read(const char *path, const char *name, int version, dirfile_fn fn, void *arg,
                 char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    char line[DIRFILE_MAX_LINE], why[160], *w[DIRFILE_MAX_WORDS];
    int lineno = 0, header = 0, ended = 0, rc = AISLE_OK;

    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    while (rc == AISLE_OK && fgets(line, sizeof(line), f)) {
        int n;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: line too long", path, lineno);
            break;
        }
        if ((n = dirfile_words(line, w)) == 0) continue;
        why[0] = 0;
        if (ended) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: text after 'end'", path,
                             lineno);
        } else if (!header) {
            rc = dirfile_header(path, lineno, name, version, w, n, err, errlen);
            header = 1;
        } else if (n == 1 && strcmp(w[0], "end") == 0) {
            ended = 1;
        } else if (n > DIRFILE_MAX_WORDS || fn(arg, w, n, why, sizeof(why)) != 0) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: bad directive '%s'%s%s", path,
                             lineno, w[0], *why ? ": " : "", why);
        }
    }
    if (rc == AISLE_OK && !ended)
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s: no 'end' line (cut short?)", path);
    fclose(f);
    return rc;
}
