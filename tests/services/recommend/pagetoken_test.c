/* Tests for services/recommend/pagetoken: a token's tag is HMAC-SHA256
 * under the key AISLE_PAGE_SECRET names (so replicas, and servers before
 * and after a change of how the tag is computed, accept each other's
 * tokens), a token reads back, and a changed byte is refused. */
#include "services/recommend/pagetoken.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "tests/test.h"

#define SECRET "test page secret"
#define TAG 16

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding into out; its length. */
static size_t decode(const char *s, unsigned char *out) {
    uint32_t acc = 0;
    size_t o = 0;
    int bits = 0;
    for (; *s; s++) {
        acc = acc << 6 | (uint32_t)(strchr(b64, *s) - b64);
        if ((bits += 6) >= 8) out[o++] = (unsigned char)(acc >> (bits -= 8));
    }
    return o;
}

static void test_tag_is_hmac_under_the_secret(void) {
    const uint32_t served[] = {42, 7, 42, 9};
    unsigned char raw[256], key[32], full[EVP_MAX_MD_SIZE];
    unsigned int klen = sizeof(key), n = 0;
    char *tok = NULL;
    size_t len;
    TEST_REQUIRE(pagetoken_write(77, 1000, served, 4, &tok) == AISLE_OK && tok);
    len = decode(tok, raw);
    TEST_REQUIRE(len > TAG);
    EVP_Digest(SECRET, strlen(SECRET), key, &klen, EVP_sha256(), NULL);
    HMAC(EVP_sha256(), key, sizeof(key), raw, len - TAG, full, &n);
    TEST_CHECK(memcmp(full, raw + len - TAG, TAG) == 0);
    free(tok);
}

static void test_read_back_and_refuse_changes(void) {
    const uint32_t served[] = {5, 3};
    uint32_t *got = NULL;
    size_t n = 0;
    char *tok = NULL, err[256];
    TEST_REQUIRE(pagetoken_write(9, 5000, served, 2, &tok) == AISLE_OK && tok);
    TEST_REQUIRE(pagetoken_read(tok, 9, 6000, &got, &n, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(n == 2 && got[0] == 3 && got[1] == 5);
    free(got);
    got = NULL;
    tok[strlen(tok) / 2] = tok[strlen(tok) / 2] == 'A' ? 'B' : 'A';
    TEST_CHECK(pagetoken_read(tok, 9, 6000, &got, &n, err, sizeof(err)) == AISLE_EINVAL);
    TEST_CHECK(got == NULL);
    free(tok);
}

int main(void) {
    /* Before the first token: the key is read once per process. */
    setenv("AISLE_PAGE_SECRET", SECRET, 1);
    TEST_RUN(test_tag_is_hmac_under_the_secret);
    TEST_RUN(test_read_back_and_refuse_changes);
    return test_summary();
}
