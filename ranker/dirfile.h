/* dirfile: the line format of the ranker's hand-edited settings files (the
 * scorer's weights, the merchandising rules), read one way so they fail
 * the same way.
 *
 * The first line is "NAME VERSION"; then one directive a line, at most
 * DIRFILE_MAX_WORDS words separated by blanks; '#' starts a comment; the
 * last line is "end", so a file cut short is refused. Every error names
 * the file and the line: "rules.txt:7: bad directive 'pin': position 0 is
 * outside 1..500". */
#ifndef AISLE_DIRFILE_H
#define AISLE_DIRFILE_H

#include <stddef.h>

#define DIRFILE_MAX_WORDS 4
#define DIRFILE_MAX_LINE 1200 /* an item id of 1,024 bytes and a number fit */

/* Applies one directive: words w[0..n). Returns 0, or -1 when it is bad,
 * optionally with why (whylen bytes, "" on entry) saying what is wrong. */
typedef int (*dirfile_fn)(void *arg, char **w, int n, char *why, size_t whylen);

/* Reads path, a NAME file of version version, handing each directive to
 * fn. Returns AISLE_OK, AISLE_EIO (cannot be read), AISLE_EFORMAT (err
 * says the file, the line and what is wrong) or fn's other codes. */
int dirfile_read(const char *path, const char *name, int version, dirfile_fn fn, void *arg,
                 char *err, size_t errlen);

/* Number parsing for directives: 0 when s is all a number within [lo, hi]. */
int dirfile_float(const char *s, double lo, double hi, float *out);
int dirfile_int(const char *s, long lo, long hi, int *out);

#endif
