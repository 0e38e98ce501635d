/* Error text for the embed modules.
 *
 * Functions that can fail on bad input take `char *err` pointing at a buffer
 * of EMBED_ERR_LEN bytes (may be NULL) and fill it with one line saying what
 * went wrong and where, so the CLI can print it and tests can match it. */
#ifndef AISLE_EMBED_ERR_H
#define AISLE_EMBED_ERR_H

#define EMBED_ERR_LEN 512

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void embed_err_set(char *err, const char *fmt, ...);

#endif
