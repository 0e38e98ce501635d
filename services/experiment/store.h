/* store: experiment definitions kept durably in Redis.
 *
 * Why Redis and not a compacted Kafka topic: the definitions are a few
 * kilobytes that every edit reads, checks as a whole (shares of a layer,
 * parameters across layers) and replaces; Redis gives that as one atomic
 * compare-and-set, every serve replica already talks to it, and a replica
 * starting up reads the current set with one GET instead of replaying a
 * topic. Redis with AOF or replicas is as durable as the profiles are.
 *
 * The whole ExperimentSet is one serialized value under EXP_KEY_DEFS, and
 * its version is also kept under EXP_KEY_VERSION so watchers can poll one
 * small key. Both share a hash tag (one slot in a Redis Cluster). An edit
 * reads the set, applies one change, validates the result (an invalid one
 * is refused with the reason, and nothing is written) and writes it with a
 * Lua compare-and-set on the version, retrying when another writer came
 * first. Not thread-safe: one exp_store per thread. */
#ifndef AISLE_EXP_STORE_H
#define AISLE_EXP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "services/experiment/expset.h"

#define EXP_KEY_DEFS "{aisle:exp}:defs"
#define EXP_KEY_VERSION "{aisle:exp}:version"

typedef struct exp_store exp_store;

/* Prepares a store on Redis at "host:port" (standalone or a cluster seed);
 * connects on first use. Free with exp_store_close. */
int exp_store_open(const char *redis_addr, exp_store **out, char *err, size_t errlen);
void exp_store_close(exp_store *st);

/* The stored version (0 when nothing was ever stored). AISLE_EUNAVAIL when
 * Redis cannot be reached. */
int exp_store_version(exp_store *st, uint64_t *version, char *err, size_t errlen);
/* The stored set, validated (the empty set when nothing was stored). Also
 * a fingerprint of its bytes in *digest (may be NULL). AISLE_EUNAVAIL, or
 * AISLE_EFORMAT / AISLE_EINVAL for a stored value that does not parse or
 * validate. */
int exp_store_load(exp_store *st, exp_set **out, uint64_t *digest, char *err, size_t errlen);

/* One change: from cur, build *next (see the exp_set_put_* edits). */
typedef int (*exp_edit_fn)(const exp_set *cur, const void *arg, exp_set **next, char *err,
                           size_t errlen);
/* Reads, applies edit, validates and stores, retrying on a concurrent
 * writer. On AISLE_OK, *stored (may be NULL) is the new set, a reference
 * for the caller. An edit's error comes back as it is (AISLE_EINVAL with
 * the reason) and nothing is stored. */
int exp_store_update(exp_store *st, exp_edit_fn edit, const void *arg, exp_set **stored,
                     char *err, size_t errlen);

/* The edits the Admin service and `aisle ctl exp` need, through
 * exp_store_update. */
int exp_store_put_experiment(exp_store *st, const Aisle__V1__Experiment *e, exp_set **stored,
                             char *err, size_t errlen);
int exp_store_delete_experiment(exp_store *st, const char *name, exp_set **stored, char *err,
                                size_t errlen);
/* value NULL clears the toggle. */
int exp_store_put_toggle(exp_store *st, const char *param, const char *value, exp_set **stored,
                         char *err, size_t errlen);
int exp_store_put_holdout(exp_store *st, const char *salt, uint32_t share_bp, exp_set **stored,
                          char *err, size_t errlen);

#endif
