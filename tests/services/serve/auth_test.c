/* Tests for services/serve/auth: the tokens file (comments, roles, errors
 * naming file and line without echoing hashes), and every token case of
 * auth_check: none, unknown, malformed header, wrong role, right role. */
#include "services/serve/auth.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/base/status.h"
#include "tests/test.h"

static void sha_hex(const char *token, char *hex) {
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), h);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) sprintf(hex + 2 * i, "%02x", h[i]);
}

static char *write_file(const char *text) {
    static char path[64];
    int fd;
    strcpy(path, "/tmp/aisle-auth-XXXXXX");
    if ((fd = mkstemp(path)) < 0) return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) return NULL;
    close(fd);
    return path;
}

static int load(const char *text, auth **a, char *err, size_t errlen) {
    char *path = write_file(text);
    int rc = path ? auth_load(path, a, err, errlen) : AISLE_EIO;
    if (path) unlink(path);
    return rc;
}

/* Metadata with one header. */
static int check(const auth *a, const char *key, const char *value, int need) {
    grpc_metadata md = {grpc_slice_from_static_string(key),
                        grpc_slice_from_static_string(value), {{0}}};
    grpc_metadata_array arr = {1, 1, &md};
    return auth_check(a, &arr, need);
}

static void test_roles_and_tokens(void) {
    char app[65], admin[65], file[512], err[256];
    auth *a;
    sha_hex("app-secret", app);
    sha_hex("admin-secret", admin);
    snprintf(file, sizeof(file), "# tokens\n\napp %s\n  admin %s   # ops\n", app, admin);
    TEST_REQUIRE(load(file, &a, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(auth_count(a) == 2);
    TEST_CHECK(auth_role_of(a, "app-secret", 10) == AUTH_ROLE_APP);
    TEST_CHECK(auth_role_of(a, "admin-secret", 12) == AUTH_ROLE_ADMIN);
    TEST_CHECK(auth_role_of(a, "app-secreT", 10) == AUTH_ROLE_NONE);

    grpc_metadata_array none = {0, 0, NULL};
    TEST_CHECK(auth_check(a, &none, AUTH_ROLE_APP) == AISLE_EUNAUTH);
    TEST_CHECK(auth_check(a, &none, AUTH_ROLE_NONE) == AISLE_OK);
    TEST_CHECK(check(a, "authorization", "Bearer app-secret", AUTH_ROLE_APP) == AISLE_OK);
    TEST_CHECK(check(a, "authorization", "bearer app-secret", AUTH_ROLE_APP) == AISLE_OK);
    TEST_CHECK(check(a, "authorization", "Bearer app-secret", AUTH_ROLE_ADMIN) == AISLE_EDENIED);
    TEST_CHECK(check(a, "authorization", "Bearer admin-secret", AUTH_ROLE_ADMIN) == AISLE_OK);
    TEST_CHECK(check(a, "authorization", "Bearer nope", AUTH_ROLE_APP) == AISLE_EUNAUTH);
    TEST_CHECK(check(a, "authorization", "app-secret", AUTH_ROLE_APP) == AISLE_EUNAUTH);
    TEST_CHECK(check(a, "authorization", "Bearer ", AUTH_ROLE_APP) == AISLE_EUNAUTH);
    TEST_CHECK(check(a, "x-token", "Bearer app-secret", AUTH_ROLE_APP) == AISLE_EUNAUTH);
    TEST_CHECK(auth_check(NULL, &none, AUTH_ROLE_ADMIN) == AISLE_OK); /* no tokens file */
    auth_free(a);
}

static void test_file_errors(void) {
    char err[256], hash[65], file[256];
    auth *a;
    sha_hex("x", hash);
    snprintf(file, sizeof(file), "app %s\nroot %s\n", hash, hash);
    TEST_CHECK(load(file, &a, err, sizeof(err)) == AISLE_EFORMAT);
    TEST_CHECK(strstr(err, ":2: unknown role 'root'") != NULL);
    TEST_CHECK(strstr(err, hash) == NULL); /* never echo a hash */
    TEST_CHECK(load("app 1234\n", &a, err, sizeof(err)) == AISLE_EFORMAT);
    TEST_CHECK(strstr(err, ":1: the hash is not 64 hexadecimal digits") != NULL);
    TEST_CHECK(load("app\n", &a, err, sizeof(err)) == AISLE_EFORMAT);
    TEST_CHECK(strstr(err, "expected \"ROLE SHA256-HEX\"") != NULL);
    TEST_CHECK(load("# nothing\n", &a, err, sizeof(err)) == AISLE_EFORMAT);
    TEST_CHECK(strstr(err, "lists no token") != NULL);
    TEST_CHECK(auth_load("/nonexistent/tokens", &a, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(strstr(err, "/nonexistent/tokens") != NULL);
}

int main(void) {
    TEST_RUN(test_roles_and_tokens);
    TEST_RUN(test_file_errors);
    return test_summary();
}
