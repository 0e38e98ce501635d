/* pagetoken: opaque, signed page tokens for Recommend and SimilarItems.
 *
 * Paging is stateless: a token carries what the session has served so far
 * (a 32-bit hash per item, which the ranker leaves out), when it was
 * issued, and a fingerprint of the request it belongs to (user, surface,
 * filter, words, vector, context), all under an HMAC-SHA256 tag (16 bytes
 * kept) with a key of the process: AISLE_PAGE_SECRET when set (replicas
 * behind one address share it), else 32 random bytes drawn at start, so a
 * restart makes old tokens stale. A token that does not verify, belongs to
 * another request or is older than PAGETOKEN_TTL_MS is refused. */
#ifndef AISLE_PAGETOKEN_H
#define AISLE_PAGETOKEN_H

#include <stddef.h>
#include <stdint.h>

#define PAGETOKEN_TTL_MS (60 * 60 * 1000)
#define PAGETOKEN_MAX_SERVED 5000 /* a session ends after this many items */

/* Reads token for the request with fingerprint fp as of now_ms into
 * *served (ascending, owned by the caller, free()) and *n. Returns
 * AISLE_OK, AISLE_EINVAL (forged, damaged, another request's, or stale)
 * or AISLE_ENOMEM, with err set. */
int pagetoken_read(const char *token, uint64_t fp, int64_t now_ms, uint32_t **served,
                   size_t *n, char *err, size_t errlen);

/* A token for fp issued at now_ms over served (n hashes, any order; may
 * hold repeats) into *out (owned by the caller, free()). Returns AISLE_OK,
 * AISLE_EFULL (the session would pass PAGETOKEN_MAX_SERVED: no next page)
 * or AISLE_ENOMEM. */
int pagetoken_write(uint64_t fp, int64_t now_ms, const uint32_t *served, size_t n, char **out);

/* A running fingerprint: feed each part of the request, length-framed. */
typedef struct pagetoken_fp {
    uint64_t h;
} pagetoken_fp;

void pagetoken_fp_init(pagetoken_fp *f);
void pagetoken_fp_add(pagetoken_fp *f, const void *data, size_t len);

#endif
