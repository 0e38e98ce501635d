/* profile: user-interest profiles in Redis, shared by `aisle ingest` (which
 * writes them) and `aisle serve` (which reads them).
 *
 * A user's keys share the hash tag {user_id}, so they sit in one Redis
 * Cluster slot and one Lua script can update them atomically. Weights use
 * forward decay: an event at time t adds w·2^((t−L)/H) for a fixed landmark
 * L and half-life H, and a reader divides by 2^((now−L)/H). Stored scores
 * are the logarithms of those sums, so they never overflow and never need
 * rescoring in the background, and the order of a sorted set is the order
 * by decayed weight. Dismissals are kept apart from positive interest. Each
 * event is applied at most once: its event_id is remembered in a per-user
 * window of recent ids.
 *
 * A profile_store is one connection: use one per thread. */
#ifndef AISLE_PROFILE_H
#define AISLE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/events.pb-c.h"

#define PROFILE_EINVAL (-1) /* the caller's input is invalid */
#define PROFILE_EIO (-2)    /* Redis failed or is unreachable */

#define PROFILE_MAX_ID 256         /* longest user, item or creator id */
#define PROFILE_LANDMARK_MS 1735689600000LL /* 2025-01-01T00:00:00Z */

typedef struct profile_config {
    double half_life_s;   /* decay half-life; default 7 days */
    int max_items;        /* per user, lightest trimmed first; default 500 */
    int max_creators;     /* default 100 */
    int event_window;     /* remembered event ids per user; default 10000 */
} profile_config;

typedef struct profile_entry {
    char *id;      /* owned by the enclosing profile or list */
    double weight; /* decayed to the time of the read */
} profile_entry;

typedef struct profile {
    profile_entry *items; /* heaviest first */
    size_t n_items;
    profile_entry *creators;
    size_t n_creators;
    profile_entry *dismissed; /* negative feedback, heaviest first */
    size_t n_dismissed;
    int64_t last_active_ms; /* 0 when the user is unknown */
} profile;

typedef struct profile_store profile_store;

/* Fills cfg with the defaults above. */
void profile_config_default(profile_config *cfg);

/* Connects to Redis at "host:port". The store keeps the address and
 * reconnects by itself after an error. Returns 0, or -1 with err set (bad
 * address). A store whose server is down still opens; calls then fail until
 * it is back. Free with profile_store_close. */
int profile_store_open(const char *addr, const profile_config *cfg,
                       profile_store **out, char *err, size_t errlen);
void profile_store_close(profile_store *ps);

/* The default weight of a signal kind; DISMISS is negative (its magnitude
 * goes to the dismissed set). */
double profile_kind_weight(Aisle__V1__SignalKind kind);

/* Checks a decoded signal for what the profile needs: ids present and of
 * sane length, a known kind, a finite weight in [0, 1000], a time between
 * 2000-01-01 and a day past now_ms. Returns 0, or -1 with the reason. */
int profile_validate(const Aisle__V1__Signal *s, int64_t now_ms, char *err,
                     size_t errlen);

/* Applies validated signals, each atomically and at most once per event_id,
 * and bumps global popularity for the ones newly applied. Returns the number
 * newly applied (duplicates count 0), or PROFILE_EIO with err set;
 * then some may have been applied and the caller retries the whole batch,
 * which de-duplication makes safe. */
int profile_apply(profile_store *ps, Aisle__V1__Signal *const *sigs, size_t n,
                  char *err, size_t errlen);

/* Reads a user's profile as of now_ms, at most max_items items. Returns 0
 * (an unknown user gives an empty profile), PROFILE_EINVAL for a bad
 * user_id or PROFILE_EIO, with err set. The caller
 * frees p with profile_clear. */
int profile_get(profile_store *ps, const char *user_id, int64_t now_ms,
                size_t max_items, profile *p, char *err, size_t errlen);
void profile_clear(profile *p);

/* Erases every key of the user. Returns 1 when something was erased, 0 when
 * there was nothing, PROFILE_EINVAL or PROFILE_EIO with err set. Signals of
 * the user still in flight re-create a profile as they arrive. */
int profile_delete(profile_store *ps, const char *user_id, char *err, size_t errlen);

/* The n most popular items as of now_ms, heaviest first, into *out (caller
 * frees with profile_entries_free). Returns the count, or PROFILE_EIO with
 * err set. */
int profile_popular(profile_store *ps, int64_t now_ms, size_t n,
                    profile_entry **out, char *err, size_t errlen);
void profile_entries_free(profile_entry *e, size_t n);

#endif
