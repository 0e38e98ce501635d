/* store: experiment definitions in Redis with compare-and-set writes (see
 * store.h). */
#include "services/experiment/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/profile/rcluster.h"

/* Writes the set only when the stored version is still the one read.
 * KEYS: defs version. ARGV: expected version, new bytes, new version.
 * Returns 1 when written, 0 when another writer came first. */
static const char exp_cas_lua[] =
    "if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "redis.call('SET', KEYS[2], ARGV[3])\n"
    "return 1\n";

/* Each lost compare-and-set means another edit won; backing off a little
 * longer each time lets a slow writer through on a busy machine. */
#define EXP_STORE_RETRIES 32

struct exp_store {
    rcluster *rc;
};

/* The key that fingerprints stored bytes (not secret: it only tells
 * whether two reads saw the same bytes). */
static const uint8_t exp_digest_key[16] = "aisle-exp-digest";

int exp_store_open(const char *redis_addr, exp_store **out, char *err, size_t errlen) {
    static const char *const scripts[] = {exp_cas_lua};
    exp_store *st = calloc(1, sizeof(*st));
    if (!st) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (rcluster_open(redis_addr, scripts, 1, &st->rc, err, errlen) != 0) {
        free(st);
        return AISLE_EINVAL;
    }
    *out = st;
    return AISLE_OK;
}

void exp_store_close(exp_store *st) {
    if (!st) return;
    rcluster_close(st->rc);
    free(st);
}

/* Runs one command (on the definitions' slot) and hands back its reply,
 * owned by st->rc until the next command. */
static int exp_store_cmd(exp_store *st, int argc, const char **argv, const size_t *lens,
                         redisReply **reply, char *err, size_t errlen) {
    redisReply **replies;
    size_t n;
    char why[256];
    if (rcluster_connect(st->rc, why, sizeof(why)) != 0 ||
        rcluster_append(st->rc, EXP_KEY_DEFS, argc, argv, lens) != 0 ||
        rcluster_exec(st->rc, &replies, &n, why, sizeof(why)) != 0) {
        rcluster_reset(st->rc);
        return status_fail(AISLE_EUNAVAIL, err, errlen, "experiment store: %s", why);
    }
    if (n != 1 || replies[0]->type == REDIS_REPLY_ERROR)
        return status_fail(AISLE_EUNAVAIL, err, errlen, "experiment store: %s",
                           n == 1 ? replies[0]->str : "no reply");
    *reply = replies[0];
    return AISLE_OK;
}

int exp_store_version(exp_store *st, uint64_t *version, char *err, size_t errlen) {
    const char *argv[] = {"GET", EXP_KEY_VERSION};
    redisReply *r;
    int rc = exp_store_cmd(st, 2, argv, NULL, &r, err, errlen);
    if (rc != AISLE_OK) return rc;
    *version = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    return AISLE_OK;
}

int exp_store_load(exp_store *st, exp_set **out, uint64_t *digest, char *err, size_t errlen) {
    const char *argv[] = {"GET", EXP_KEY_DEFS};
    redisReply *r;
    int rc = exp_store_cmd(st, 2, argv, NULL, &r, err, errlen);
    if (rc != AISLE_OK) return rc;
    const uint8_t *data = r->type == REDIS_REPLY_STRING ? (const uint8_t *)r->str : NULL;
    size_t len = data ? r->len : 0;
    if (digest) *digest = exp_siphash(exp_digest_key, data ? (const void *)data : "", len);
    rc = exp_set_decode(data, len, out, err, errlen);
    rcluster_reset(st->rc);
    return rc;
}

/* Stores next if the stored version is still next's version - 1: AISLE_OK
 * when written, AISLE_EFULL (retry) when someone else wrote first. */
static int exp_store_cas(exp_store *st, const exp_set *next, char *err, size_t errlen) {
    size_t len;
    uint8_t *bytes = exp_set_encode(next, &len);
    if (!bytes) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    char was[24], now[24];
    snprintf(was, sizeof(was), "%" PRIu64, exp_set_version(next) - 1);
    snprintf(now, sizeof(now), "%" PRIu64, exp_set_version(next));
    const char *argv[] = {"EVALSHA", rcluster_sha(st->rc, 0), "2", EXP_KEY_DEFS, EXP_KEY_VERSION,
                          was, (const char *)bytes, now};
    size_t lens[] = {7, strlen(argv[1]), 1, strlen(EXP_KEY_DEFS), strlen(EXP_KEY_VERSION),
                     strlen(was), len, strlen(now)};
    redisReply *r;
    int rc = exp_store_cmd(st, 8, argv, lens, &r, err, errlen);
    if (rc == AISLE_OK && !(r->type == REDIS_REPLY_INTEGER && r->integer == 1)) rc = AISLE_EFULL;
    rcluster_reset(st->rc);
    free(bytes);
    return rc;
}

int exp_store_update(exp_store *st, exp_edit_fn edit, const void *arg, exp_set **stored,
                     char *err, size_t errlen) {
    for (int attempt = 0; attempt < EXP_STORE_RETRIES; attempt++) {
        exp_set *cur, *next;
        int rc = exp_store_load(st, &cur, NULL, err, errlen);
        if (rc != AISLE_OK) return rc;
        rc = edit(cur, arg, &next, err, errlen);
        exp_set_release(cur);
        if (rc != AISLE_OK) return rc;
        rc = exp_store_cas(st, next, err, errlen);
        if (rc == AISLE_OK && stored) *stored = next;
        else exp_set_release(next);
        if (rc != AISLE_EFULL) return rc;
        clock_sleep_ms(1 + attempt % 8);
    }
    return status_fail(AISLE_EUNAVAIL, err, errlen,
                       "experiment store: %d concurrent writers in a row came first; try again",
                       EXP_STORE_RETRIES);
}

static int exp_edit_put(const exp_set *cur, const void *arg, exp_set **next, char *err,
                        size_t errlen) {
    return exp_set_put_experiment(cur, arg, next, err, errlen);
}

static int exp_edit_delete(const exp_set *cur, const void *arg, exp_set **next, char *err,
                           size_t errlen) {
    return exp_set_delete_experiment(cur, arg, next, err, errlen);
}

/* The arguments of a toggle or holdout edit. */
typedef struct exp_edit_args {
    const char *name, *value; /* the parameter and value, or the holdout's salt */
    uint32_t share_bp;
} exp_edit_args;

static int exp_edit_toggle(const exp_set *cur, const void *arg, exp_set **next, char *err,
                           size_t errlen) {
    const exp_edit_args *p = arg;
    return exp_set_put_toggle(cur, p->name, p->value, next, err, errlen);
}

static int exp_edit_holdout(const exp_set *cur, const void *arg, exp_set **next, char *err,
                            size_t errlen) {
    const exp_edit_args *p = arg;
    return exp_set_put_holdout(cur, p->name, p->share_bp, next, err, errlen);
}

int exp_store_put_experiment(exp_store *st, const Aisle__V1__Experiment *e, exp_set **stored,
                             char *err, size_t errlen) {
    return exp_store_update(st, exp_edit_put, e, stored, err, errlen);
}

int exp_store_delete_experiment(exp_store *st, const char *name, exp_set **stored, char *err,
                                size_t errlen) {
    return exp_store_update(st, exp_edit_delete, name, stored, err, errlen);
}

int exp_store_put_toggle(exp_store *st, const char *param, const char *value, exp_set **stored,
                         char *err, size_t errlen) {
    exp_edit_args p = {param, value, 0};
    return exp_store_update(st, exp_edit_toggle, &p, stored, err, errlen);
}

int exp_store_put_holdout(exp_store *st, const char *salt, uint32_t share_bp, exp_set **stored,
                          char *err, size_t errlen) {
    exp_edit_args p = {salt, NULL, share_bp};
    return exp_store_update(st, exp_edit_holdout, &p, stored, err, errlen);
}
