/* pagetoken: layout, tag, base64url. */
#include "services/recommend/pagetoken.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/base/strmap.h"

/* version | issued ms | fingerprint | count | hashes…, then the tag. */
#define PAGETOKEN_VERSION 1
#define PAGETOKEN_HEAD (1 + 8 + 8 + 4)
#define PAGETOKEN_TAG 16

#define PAGETOKEN_BLOCK 64 /* SHA-256's block: HMAC's pads are this long */

static unsigned char pagetoken_key[32];
/* SHA-256 having read the key's inner and outer pads (HMAC's first block
 * of each hash), made once: a tag then copies them rather than looking
 * the digest up and hashing the pads anew, which OpenSSL 3's one-shot
 * HMAC does on every call (some 1.6 % of a home call's server CPU). Read
 * only after pagetoken_once; NULL when they could not be made. */
static EVP_MD_CTX *pagetoken_pads[2];
static pthread_once_t pagetoken_once = PTHREAD_ONCE_INIT;

static void pagetoken_init_pads(void) {
    unsigned char pad[PAGETOKEN_BLOCK];
    for (int k = 0; k < 2; k++) {
        memset(pad, k ? 0x5c : 0x36, sizeof(pad));
        for (size_t i = 0; i < sizeof(pagetoken_key); i++) pad[i] ^= pagetoken_key[i];
        if (!(pagetoken_pads[k] = EVP_MD_CTX_new()) ||
            EVP_DigestInit_ex(pagetoken_pads[k], EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(pagetoken_pads[k], pad, sizeof(pad)) != 1) {
            EVP_MD_CTX_free(pagetoken_pads[k]);
            pagetoken_pads[k] = NULL;
        }
    }
    OPENSSL_cleanse(pad, sizeof(pad));
}

static void pagetoken_init_key(void) {
    const char *secret = getenv("AISLE_PAGE_SECRET");
    unsigned int len = sizeof(pagetoken_key);
    if (secret && *secret) {
        EVP_Digest(secret, strlen(secret), pagetoken_key, &len, EVP_sha256(), NULL);
    } else if (RAND_bytes(pagetoken_key, sizeof(pagetoken_key)) != 1) {
        /* Without randomness no token could be trusted: a broken invariant. */
        abort();
    }
    pagetoken_init_pads();
}

/* HMAC-SHA256 of data from the prepared pads into full (32 bytes);
 * 0 when OpenSSL fails (out of memory). */
static int pagetoken_hmac_padded(const unsigned char *data, size_t len, unsigned char *full) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char inner[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = c && pagetoken_pads[0] && pagetoken_pads[1] &&
             EVP_MD_CTX_copy_ex(c, pagetoken_pads[0]) == 1 &&
             EVP_DigestUpdate(c, data, len) == 1 && EVP_DigestFinal_ex(c, inner, &n) == 1 &&
             EVP_MD_CTX_copy_ex(c, pagetoken_pads[1]) == 1 &&
             EVP_DigestUpdate(c, inner, n) == 1 && EVP_DigestFinal_ex(c, full, &n) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

static void pagetoken_tag(const unsigned char *data, size_t len, unsigned char *tag) {
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    pthread_once(&pagetoken_once, pagetoken_init_key);
    /* The one-shot HMAC gives the same tag when the pads could not be used. */
    if (!pagetoken_hmac_padded(data, len, full))
        HMAC(EVP_sha256(), pagetoken_key, sizeof(pagetoken_key), data, len, full, &n);
    memcpy(tag, full, PAGETOKEN_TAG);
}

void pagetoken_fp_init(pagetoken_fp *f) { f->h = 1469598103934665603ULL; }

void pagetoken_fp_add(pagetoken_fp *f, const void *data, size_t len) {
    uint64_t framed[2] = {len, strmap_hash(data, len)};
    f->h = strmap_hash((const char *)framed, sizeof(framed)) ^ (f->h * 1099511628211ULL);
}

static const char pagetoken_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *pagetoken_b64_encode(const unsigned char *in, size_t n) {
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        *o++ = pagetoken_b64[v >> 18 & 63];
        *o++ = pagetoken_b64[v >> 12 & 63];
        if (i + 1 < n) *o++ = pagetoken_b64[v >> 6 & 63];
        if (i + 2 < n) *o++ = pagetoken_b64[v & 63];
    }
    *o = 0;
    return out;
}

/* Decodes s into *out (owned); returns the length, or -1 when s is not
 * base64url or out of memory (*out NULL). */
static long pagetoken_b64_decode(const char *s, unsigned char **out) {
    size_t n = strlen(s), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (!(*out = malloc(n * 3 / 4 + 1))) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(pagetoken_b64, s[i], 64);
        if (!p) return -1;
        acc = acc << 6 | (uint32_t)(p - pagetoken_b64);
        if ((bits += 6) >= 8) {
            bits -= 8;
            (*out)[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

static void pagetoken_put(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t pagetoken_get(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int pagetoken_u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int pagetoken_read(const char *token, uint64_t fp, int64_t now_ms, uint32_t **served,
                   size_t *n, char *err, size_t errlen) {
    unsigned char *raw = NULL, tag[PAGETOKEN_TAG];
    long len = pagetoken_b64_decode(token, &raw);
    size_t count;
    int64_t issued;
    int rc = AISLE_EINVAL;

    *served = NULL;
    *n = 0;
    if (len < PAGETOKEN_HEAD + PAGETOKEN_TAG) {
        status_fmt(err, errlen, "page_token is not a token this server issued");
        goto fail;
    }
    pagetoken_tag(raw, (size_t)len - PAGETOKEN_TAG, tag);
    if (CRYPTO_memcmp(tag, raw + len - PAGETOKEN_TAG, PAGETOKEN_TAG) != 0 ||
        raw[0] != PAGETOKEN_VERSION) {
        status_fmt(err, errlen, "page_token does not verify (forged, damaged or from an "
                                "earlier run of the server)");
        goto fail;
    }
    issued = (int64_t)pagetoken_get(raw + 1, 8);
    count = pagetoken_get(raw + 17, 4);
    if (pagetoken_get(raw + 9, 8) != fp) {
        status_fmt(err, errlen, "page_token belongs to another request (user, surface, filter "
                                "or query changed)");
        goto fail;
    }
    if (now_ms - issued > PAGETOKEN_TTL_MS || issued - now_ms > 60000) {
        status_fmt(err, errlen, "page_token is stale (issued %lld s ago); start from page 1",
                   (long long)((now_ms - issued) / 1000));
        goto fail;
    }
    /* The tag covers the count, so a mismatch is our own bug. */
    if ((size_t)len != PAGETOKEN_HEAD + 4 * count + PAGETOKEN_TAG) {
        status_fmt(err, errlen, "page_token is damaged");
        goto fail;
    }
    if (!(*served = malloc(4 * count + 4))) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < count; i++)
        (*served)[i] = (uint32_t)pagetoken_get(raw + PAGETOKEN_HEAD + 4 * i, 4);
    *n = count;
    free(raw);
    return AISLE_OK;
fail:
    free(raw);
    return rc;
}

int pagetoken_write(uint64_t fp, int64_t now_ms, const uint32_t *served, size_t n, char **out) {
    uint32_t *sorted;
    unsigned char *raw;
    size_t m = 0, len;

    *out = NULL;
    if (!(sorted = malloc(n * sizeof(*sorted) + 4))) return AISLE_ENOMEM;
    memcpy(sorted, served, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), pagetoken_u32_cmp);
    for (size_t i = 0; i < n; i++)
        if (!m || sorted[m - 1] != sorted[i]) sorted[m++] = sorted[i];
    if (m > PAGETOKEN_MAX_SERVED) {
        free(sorted);
        return AISLE_EFULL;
    }
    len = PAGETOKEN_HEAD + 4 * m + PAGETOKEN_TAG;
    if (!(raw = malloc(len))) {
        free(sorted);
        return AISLE_ENOMEM;
    }
    raw[0] = PAGETOKEN_VERSION;
    pagetoken_put(raw + 1, (uint64_t)now_ms, 8);
    pagetoken_put(raw + 9, fp, 8);
    pagetoken_put(raw + 17, m, 4);
    for (size_t i = 0; i < m; i++) pagetoken_put(raw + PAGETOKEN_HEAD + 4 * i, sorted[i], 4);
    pagetoken_tag(raw, len - PAGETOKEN_TAG, raw + len - PAGETOKEN_TAG);
    *out = pagetoken_b64_encode(raw, len);
    free(sorted);
    free(raw);
    return *out ? AISLE_OK : AISLE_ENOMEM;
}
