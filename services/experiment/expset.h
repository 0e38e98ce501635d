/* expset: a validated set of experiment definitions, and the assignment of
 * a user to its variants.
 *
 * Definitions travel as the ExperimentSet message (proto/aisle/v1/
 * experiments.proto); an exp_set is one checked and compiled for lookups.
 * Building refuses an invalid definition with a message that names the
 * experiment and the fault (shares over 100 %, an unknown parameter, a bad
 * value, an allowlist naming a missing variant ...), so a caller keeps the
 * set it was running.
 *
 * Assignment is a pure function of the definitions and the user id:
 * SipHash-2-4 (fixed key) of salt and user id, modulo 10,000 buckets. Each
 * layer hashes with its own name ("layer:NAME"), so layers are orthogonal;
 * within a layer each experiment owns the bucket range [offset, offset +
 * share), so its experiments are mutually exclusive; inside an experiment a
 * second hash with the experiment's salt picks the variant by weight. A
 * global holdout (its own salt) sees no experiment. An allowlist entry wins
 * over buckets and the holdout. No state, no clock and no randomness are
 * involved, so every replica, every restart and every request order give
 * the same answer.
 *
 * An exp_set is immutable once built and shared by reference count: any
 * number of threads may read it; the last exp_set_release frees it. */
#ifndef AISLE_EXP_EXPSET_H
#define AISLE_EXP_EXPSET_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/experiments.pb-c.h"
#include "services/experiment/param.h"

#define EXP_BUCKETS 10000
#define EXP_MAX_LAYERS 16
#define EXP_MAX_EXPERIMENTS 256

typedef struct exp_set exp_set;

/* SipHash-2-4 of data under the 16-byte key k. */
uint64_t exp_siphash(const uint8_t k[16], const void *data, size_t len);
/* The bucket in [0, EXP_BUCKETS) of user_id under salt. */
uint32_t exp_bucket(const char *salt, const char *user_id);

/* Checks and compiles def (copied; the caller keeps it). Returns AISLE_OK
 * with *out (refcount 1), or AISLE_EINVAL with err saying what is wrong. */
int exp_set_build(const Aisle__V1__ExperimentSet *def, exp_set **out, char *err, size_t errlen);
/* The same from a serialized ExperimentSet (AISLE_EFORMAT when it does not
 * parse). len 0 is the empty set, version 0. */
int exp_set_decode(const uint8_t *data, size_t len, exp_set **out, char *err, size_t errlen);
/* An empty set with version 0 (AISLE_ENOMEM only). */
int exp_set_empty(exp_set **out);

/* Reference counting: thread-safe. */
exp_set *exp_set_ref(exp_set *s);
void exp_set_release(exp_set *s);

uint64_t exp_set_version(const exp_set *s);
/* The definition as validated (read-only, owned by s). */
const Aisle__V1__ExperimentSet *exp_set_def(const exp_set *s);
/* The serialized definition, e.g. for storing (malloc'd; *len set). NULL
 * when out of memory. */
uint8_t *exp_set_encode(const exp_set *s, size_t *len);

/* Edits. Each builds a new validated set with version + 1 from s and one
 * change, leaving s as it is. */
/* Adds e, or replaces the experiment of the same name. An empty salt becomes
 * the name. An experiment keeps its offset while its range stays free (so
 * growing into free buckets after it moves nobody); a new one, or one that
 * changed layer or no longer fits where it was, takes the first free range
 * of its layer (a move reshuffles its users). */
int exp_set_put_experiment(const exp_set *s, const Aisle__V1__Experiment *e, exp_set **out,
                           char *err, size_t errlen);
/* AISLE_ENOTFOUND when there is no experiment called name. */
int exp_set_delete_experiment(const exp_set *s, const char *name, exp_set **out, char *err,
                              size_t errlen);
/* Sets the toggle param = value for everyone; value NULL clears it. */
int exp_set_put_toggle(const exp_set *s, const char *param, const char *value, exp_set **out,
                       char *err, size_t errlen);
int exp_set_put_holdout(const exp_set *s, const char *salt, uint32_t share_bp, exp_set **out,
                        char *err, size_t errlen);

typedef struct exp_variant exp_variant;

/* What one layer gave the user. Strings belong to the set. */
typedef struct exp_pick {
    const char *layer, *experiment, *variant;
    const exp_variant *v;
    int forced; /* by the allowlist */
} exp_pick;

typedef struct exp_assignment {
    const exp_set *set; /* borrowed: keep a reference while using this */
    int holdout;
    size_t n;           /* layers that placed the user in an experiment */
    exp_pick picks[EXP_MAX_LAYERS];
} exp_assignment;

/* The parsed overrides of a variant, and the set's toggles (n set). */
const param_value *exp_variant_overrides(const exp_variant *v, size_t *n);
const param_value *exp_set_toggles(const exp_set *s, size_t *n);

/* Assigns user_id under s. */
void exp_assign(const exp_set *s, const char *user_id, exp_assignment *out);
/* The effective value of parameter name for the assigned user: the variant
 * that overrides it, else a toggle, else NULL (the pipeline's default). */
const param_value *exp_assignment_param(const exp_assignment *a, const char *name);
/* Every parameter the assignment sets, each once, as it takes effect (the
 * variants' overrides, then the toggles no variant overrides): up to max
 * into out; returns how many there are. */
size_t exp_assignment_params(const exp_assignment *a, const param_value **out, size_t max);
/* The effective number (FLOAT, INT; ENUM's choice index) or dflt. */
double exp_assignment_num(const exp_assignment *a, const char *name, double dflt);
/* The effective text or dflt. */
const char *exp_assignment_text(const exp_assignment *a, const char *name, const char *dflt);

#endif
