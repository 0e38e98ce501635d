/* auth: tokens file, SHA-256 (OpenSSL's libcrypto) and constant-time match. */
#include "services/serve/auth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/status.h"

#define AUTH_MAX_TOKENS 1024
#define AUTH_BEARER "Bearer "

typedef struct auth_token {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int role;
} auth_token;

struct auth {
    auth_token *tokens;
    size_t n;
};

static int auth_role_named(const char *s) {
    if (strcmp(s, "app") == 0) return AUTH_ROLE_APP;
    if (strcmp(s, "admin") == 0) return AUTH_ROLE_ADMIN;
    return AUTH_ROLE_NONE;
}

static int auth_hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 64 hex digits into hash; AISLE_OK or AISLE_EFORMAT. */
static int auth_parse_hash(const char *hex, unsigned char *hash) {
    if (strlen(hex) != 2 * SHA256_DIGEST_LENGTH) return AISLE_EFORMAT;
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        int hi = auth_hexval(hex[2 * i]), lo = auth_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return AISLE_EFORMAT;
        hash[i] = (unsigned char)(hi << 4 | lo);
    }
    return AISLE_OK;
}

/* One line of the file into a->tokens; blank and comment lines add nothing. */
static int auth_parse_line(auth *a, char *line, const char *path, int lineno, char *err,
                           size_t errlen) {
    char *hash_hex, *role, *extra, *save = NULL;
    char *hash = strchr(line, '#');
    int r;
    if (hash) *hash = '\0';
    if (!(role = strtok_r(line, " \t\r\n", &save))) return AISLE_OK;
    hash_hex = strtok_r(NULL, " \t\r\n", &save);
    extra = strtok_r(NULL, " \t\r\n", &save);
    if (!hash_hex || extra)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s:%d: expected \"ROLE SHA256-HEX\"", path, lineno);
    if ((r = auth_role_named(role)) == AUTH_ROLE_NONE)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s:%d: unknown role '%.32s' (app or admin)", path, lineno, role);
    if (a->n == AUTH_MAX_TOKENS)
        return status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: more than %d tokens", path,
                           lineno, AUTH_MAX_TOKENS);
    if (auth_parse_hash(hash_hex, a->tokens[a->n].hash) != AISLE_OK)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s:%d: the hash is not 64 hexadecimal digits", path, lineno);
    a->tokens[a->n++].role = r;
    return AISLE_OK;
}

int auth_load(const char *path, auth **out, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    auth *a = NULL;
    char line[512];
    int lineno = 0, rc = AISLE_ENOMEM;

    *out = NULL;
    if (!f)
        return status_fail(AISLE_EIO, err, errlen, "cannot read tokens file %s: %s", path,
                           strerror(errno));
    if (!(a = calloc(1, sizeof(*a))) || !(a->tokens = calloc(AUTH_MAX_TOKENS, sizeof(auth_token)))) {
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        if ((rc = auth_parse_line(a, line, path, lineno, err, errlen)) != AISLE_OK) goto fail;
    }
    if (a->n == 0) {
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s lists no token", path);
        goto fail;
    }
    fclose(f);
    *out = a;
    return AISLE_OK;
fail:
    fclose(f);
    auth_free(a);
    return rc;
}

void auth_free(auth *a) {
    if (!a) return;
    OPENSSL_cleanse(a->tokens, AUTH_MAX_TOKENS * sizeof(auth_token));
    free(a->tokens);
    free(a);
}

size_t auth_count(const auth *a) { return a ? a->n : 0; }

int auth_role_of(const auth *a, const char *token, size_t len) {
    unsigned char h[SHA256_DIGEST_LENGTH];
    int role = AUTH_ROLE_NONE;
    SHA256((const unsigned char *)token, len, h);
    /* Every entry is compared, matched or not, so the time does not depend
     * on which entry (if any) matches. */
    for (size_t i = 0; i < a->n; i++) {
        int same = CRYPTO_memcmp(h, a->tokens[i].hash, sizeof(h)) == 0;
        role |= same ? a->tokens[i].role : 0;
    }
    OPENSSL_cleanse(h, sizeof(h));
    return role & AUTH_ROLE_ADMIN ? AUTH_ROLE_ADMIN : role;
}

int auth_check(const auth *a, const grpc_metadata_array *md, int need) {
    const size_t blen = strlen(AUTH_BEARER);
    int role = AUTH_ROLE_NONE, presented = 0;
    if (!a || need == AUTH_ROLE_NONE) return AISLE_OK;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key, *v = &md->metadata[i].value;
        const char *val = (const char *)GRPC_SLICE_START_PTR(*v);
        size_t vlen = GRPC_SLICE_LENGTH(*v);
        if (GRPC_SLICE_LENGTH(*k) != 13 || memcmp(GRPC_SLICE_START_PTR(*k), "authorization", 13))
            continue;
        presented = 1;
        if (vlen > blen && strncasecmp(val, AUTH_BEARER, blen) == 0) {
            int r = auth_role_of(a, val + blen, vlen - blen);
            if (r > role) role = r;
        }
    }
    if (!presented || role == AUTH_ROLE_NONE) return AISLE_EUNAUTH;
    return role >= need ? AISLE_OK : AISLE_EDENIED;
}
