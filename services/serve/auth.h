/* auth: who may call which method, from bearer tokens in call metadata.
 *
 * A tokens file lists one token a line as "ROLE SHA256-HEX" (the hash of
 * the token, so the file itself grants nothing if it leaks; '#' starts a
 * comment). Roles are ordered: `app` may call the shopper-facing methods,
 * `admin` everything `app` may and the erasing and operator methods. A
 * call presents "authorization: Bearer TOKEN"; the token's hash is
 * compared with every listed hash in constant time, so timing tells
 * nothing about how close a guess was. Tokens are never logged. */
#ifndef AISLE_AUTH_H
#define AISLE_AUTH_H

#include <grpc/grpc.h>
#include <stddef.h>

enum auth_role {
    AUTH_ROLE_NONE = 0, /* a method anyone may call (health) */
    AUTH_ROLE_APP = 1,
    AUTH_ROLE_ADMIN = 2,
};

typedef struct auth auth;

/* Reads the tokens file. Returns AISLE_OK, or AISLE_EIO / AISLE_EFORMAT
 * with err naming the file and line (never a hash's value). Free with
 * auth_free. */
int auth_load(const char *path, auth **out, char *err, size_t errlen);
void auth_free(auth *a); /* NULL is a no-op */

/* How many tokens the file listed. */
size_t auth_count(const auth *a);

/* Whether the call's metadata grants need (an enum auth_role): AISLE_OK,
 * AISLE_EUNAUTH (no bearer token, or one not listed) or AISLE_EDENIED (a
 * listed token whose role is below need). A NULL auth grants everything. */
int auth_check(const auth *a, const grpc_metadata_array *md, int need);

/* The role of a raw token, for tests and tools: AUTH_ROLE_NONE if unknown. */
int auth_role_of(const auth *a, const char *token, size_t len);

#endif
