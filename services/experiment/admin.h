/* admin: the Admin service's handlers (proto/aisle/v1/experiments.proto),
 * free of any transport: serve's gRPC server hands each call's method name
 * and request bytes here and sends back the bytes or the status the code
 * maps to (services/serve/grpcstatus.h: AISLE_EINVAL is INVALID_ARGUMENT
 * with the reason, AISLE_ENOTFOUND NOT_FOUND, AISLE_EUNAVAIL UNAVAILABLE).
 *
 * Edits go to the store (validated as a whole; an invalid one is refused
 * and the running definitions stay); GetAssignment answers from the
 * watcher, i.e. from the set this replica serves with. Calls are
 * serialised by a lock: they are rare, and the store is one connection. */
#ifndef AISLE_EXP_ADMIN_H
#define AISLE_EXP_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "services/experiment/watch.h"

typedef struct exp_admin exp_admin;

/* An Admin service on the store at redis_addr; w (borrowed, may be NULL:
 * then GetAssignment reads the store) is the replica's watcher. */
int exp_admin_new(const char *redis_addr, exp_watch *w, exp_admin **out, char *err,
                  size_t errlen);
void exp_admin_free(exp_admin *a);

/* Whether method ("SetExperiment", ...) is one of the service's; the
 * transport answers UNIMPLEMENTED for the others. */
int exp_admin_has(const char *method);
/* Runs one call. On AISLE_OK, *resp (malloc'd, the caller frees) holds
 * resp_len bytes of the serialized response; else err says why: a request
 * that does not parse or is invalid is AISLE_EINVAL. Thread-safe. */
int exp_admin_call(exp_admin *a, const char *method, const uint8_t *req, size_t len,
                   uint8_t **resp, size_t *resp_len, char *err, size_t errlen);

#endif
