/* profile: user-interest profiles in Redis, shared by `aisle ingest` (which
 * writes them) and `aisle serve` (which reads them).
 *
 * A user's two keys, aisle:u:{tag}:profile and aisle:u:{tag}:events, share
 * the hash tag: the id with '{', '}' and '%' escaped as %7B, %7D and %25
 * (profile_key_tag), so whatever the id holds they sit in one Redis
 * Cluster slot and one Lua script can update them atomically. `events` is
 * a sorted set of the event ids remembered for de-duplication. `profile`
 * holds everything else, in one of two layouts, and a read understands
 * both:
 *  - the module's record (precord.h; AISLE.APPLY writes it): one Redis
 *    string, a versioned little-endian head (last_ms, erased, lm, n) and a
 *    sorted index of fixed-width entries (kind, name, double value), which
 *    the module edits in place; a field is a binary search, not a listpack
 *    walk. A read is one GET, parsed here, bounds-checked (a corrupt
 *    record is AISLE_EFORMAT on a read and refuses the user's events on a
 *    write; see profile_apply).
 *  - the Lua script's hash (where Redis loads no module): a user's events
 *    of one batch cost one HMGET and one HSET of the fields they touch,
 *    and a read is one HGETALL.
 * Either write takes over the other's layout on its first write of a
 * profile (the module rewrites a hash as a record, the script a record as
 * a hash, each keeping the expiry), so a store may switch between them at
 * any call, and a Redis restarted without the module still reads and
 * writes every profile. A read tries the layout it read last first and the
 * other on WRONGTYPE, so either deployment reads in one round trip. In
 * both, one ZADD NX an event id. The worker sums a user's events per
 * field before sending them (weights added against the run's first time,
 * seen and purchased times by the latest), so the write's work per
 * event is only its de-duplication checks; a user's run that holds a
 * duplicate is held back whole and sent again without it, since its sums
 * would be wrong. Popularity and trending are one ZMSCORE and one ZADD a
 * list and batch (Redis 6.2 or later). Its member
 * fields are KIND:ID (in the record, a kind byte and the ID): i (items), d
 * (dismissed: negative feedback apart
 * from positive interest), c (creators), g (categories), b (brands), by
 * decayed weight; s (seen), p (purchased) and f (creators followed), by
 * the time of the latest such event. Its other fields: o:ORIGIN (the highest offset applied from
 * that topic:partition), last_ms (the last activity time), lm (the user's
 * landmark), n (the count of applied events), m (the hash's count of
 * member fields; the record counts its index) and erased (the time of the
 * user's erasure, -1 for none); the script writes them first when a
 * profile is new, so that lookups of a small hash (a
 * listpack, searched from its front) find them at once.
 *
 * Weights use forward decay kept linear: an event at time t adds
 * w·2^((t−lm)/H) for the user's landmark lm (its first event) and half-life
 * H, and a reader multiplies by 2^(−(now−lm)/H); the order of a kind is the
 * order by decayed weight, and nothing is rescored in the background. When
 * events run 64 half-lives past lm, the user's decayed fields are rescaled
 * once to a new landmark, so values never overflow. Every kind is bounded:
 * when the count of members passes the sum of the bounds by a quarter (16
 * at least), the lightest (oldest) members of every kind over its bound
 * are trimmed, so trimming, which reads the whole profile (and rebuilds
 * a record), is amortized over that many new members, and reads return at
 * most each kind's bound. With a TTL configured both
 * keys expire after that long without an event. One script call carries
 * many users' events when one node serves every slot, and a slot's in a
 * cluster.
 *
 * The write is one of two with the same checks and effect: the native
 * commands AISLE.APPLY and AISLE.POPULAR of the aisle_redis.so module
 * (redis_module.c; no Lua, the record above), where Redis loads it, or the
 * Lua scripts (profile.c, the hash) where it does not, as on a managed
 * Redis (profile_config.use_module). The record stores doubles as they
 * are, the scripts as %.17g text: both read back to the same doubles.
 *
 * Erasure (profile_delete) removes the profile and leaves an erased mark
 * (a hash of that one field, in either layout) for erasure_keep_s, the log's retention: events produced at or
 * before it are skipped by any replay, later ones build a new profile. The
 * log itself still holds the erased user's signals until Kafka's retention
 * removes them; the mark outlives them there.
 *
 * Exactly-once effect. Each event is applied at most once, by two checks
 * made in the same script that applies it:
 *  - by log position: for each origin (topic and partition) the user keeps
 *    the highest offset applied, and an event at or below it is a replay.
 *    A user's events come through one partition (the key is the user id)
 *    in order, so this catches every replay of the log, however old, with
 *    no window: restarts, rebalances, offsets reset to the start. (A topic
 *    deleted and re-created under the same name starts its offsets again
 *    and would be taken for a replay: delete the profiles, or use a new
 *    topic name.)
 *  - by event_id, for the same event produced twice (at two offsets): ids
 *    are remembered for event_window_s after they were applied, at most
 *    event_window of them per user, oldest forgotten first. A re-sent event
 *    outside both bounds counts again.
 *
 * A profile_store uses one connection per Redis node: use one per thread.
 * The address may name a standalone server or any node of a Redis Cluster;
 * which one is found out on connecting. */
#ifndef AISLE_PROFILE_H
#define AISLE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/status.h"


#define PROFILE_MAX_ID 256         /* longest user, item or creator id */
#define PROFILE_LANDMARK_MS 1735689600000LL /* 2025-01-01T00:00:00Z */
#define PROFILE_KINDS 8 /* Aisle__V1__SignalKind values, UNSPECIFIED included */

typedef struct profile_config {
    double half_life_s;   /* decay half-life; default 7 days */
    int max_items;        /* per user, lightest trimmed first; default 500;
                           * the dismissed set has the same bound */
    int max_creators;     /* default 100 */
    int max_categories;   /* categories, and brands; default 100 */
    int max_seen;         /* seen items, oldest trimmed; default 1000 */
    int max_purchased;    /* default 1000 */
    int event_window;     /* event ids remembered per user, at most; 10000 */
    double event_window_s; /* how long an id is remembered; default 7 days */
    double ttl_s;         /* inactive users expire after this; 0 (default): never */
    /* How long an erasure is remembered (profile_delete): at least the
     * signal topic's retention, so no replay of the log predates it;
     * default 7 days, Kafka's default retention. */
    double erasure_keep_s;
    /* Weight of one event of each kind, by Aisle__V1__SignalKind (index 0
     * unused). Defaults: view 1, click 2, add-to-cart 4, purchase 8, like 3,
     * follow 5, dismiss 4 (which goes to the dismissed set). */
    double kind_weights[PROFILE_KINDS];
    /* 1 (default): write with the AISLE.APPLY command where Redis has
     * loaded the aisle_redis.so module (redis_module.c), the same write
     * without Lua; where a node answers that it does not know the command,
     * the store falls back to the script for good (managed Redis without
     * modules). 0: the script always. */
    int use_module;
    /* Popularity and trending are summed in the store for up to this long
     * (ms) and written together (profile_flush), one call a list for many
     * batches instead of one each: less Redis work, as the lists see each
     * item once. 0 (default): written with every profile_apply. */
    int popular_delay_ms;
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
    profile_entry *categories; /* learned from the catalog, heaviest first */
    size_t n_categories;
    profile_entry *brands;
    size_t n_brands;
    /* For these two, weight is the time (ms) of the latest such event, and
     * the most recent come first. */
    profile_entry *seen;
    size_t n_seen;
    profile_entry *purchased;
    size_t n_purchased;
    profile_entry *follows; /* creators followed, at most max_creators */
    size_t n_follows;
    int64_t last_active_ms; /* 0 when the user is unknown */
} profile;

/* One signal to apply, with what ingest knows around it. */
typedef struct profile_event {
    const Aisle__V1__Signal *sig; /* validated; borrowed */
    const char *category;         /* of its item, from the catalog; NULL if unknown */
    const char *brand;            /* likewise */
    const char *origin;           /* "topic:partition" it was read from, or NULL */
    int64_t offset;               /* its offset there; -1 with no origin */
    int64_t produced_ms;          /* when it was produced (the log's timestamp);
                                   * 0: unknown, its ts_ms stands in */
} profile_event;

typedef struct profile_store profile_store;

/* Fills cfg with the defaults above. */
void profile_config_default(profile_config *cfg);

/* Sets kind weights from a list such as "view=1,click=2,dismiss=6" (kind
 * names as in events.proto, any case; kinds not named keep their weight;
 * each weight in (0, 1000]). Returns AISLE_OK, or AISLE_EINVAL with err set and cfg
 * unchanged. For the --kind-weights flag of ingest and serve. */
int profile_parse_kind_weights(profile_config *cfg, const char *spec, char *err,
                               size_t errlen);

/* Prepares a store on Redis at "host:port" (standalone, or a seed node of a
 * Redis Cluster). The store connects on first use and reconnects by itself
 * after an error. Returns AISLE_OK, or AISLE_EINVAL (bad address or
 * settings) or AISLE_ENOMEM with err set.
 * A store whose server is down still opens; calls then fail until it is
 * back. Free with profile_store_close. */
int profile_store_open(const char *addr, const profile_config *cfg,
                       profile_store **out, char *err, size_t errlen);
void profile_store_close(profile_store *ps);

/* Writes the hash tag of user's keys into out (outlen bytes, at least
 * 3 × strlen(user) + 1 for all of it): the id with '{', '}' and '%' written
 * as %7B, %7D and %25, so that the tag ends where the id does and two ids
 * never share one. Returns its length. */
size_t profile_key_tag(const char *user, char *out, size_t outlen);

/* Checks an id field (name says which, for the reason): at most
 * PROFILE_MAX_ID bytes, no control characters, and not empty when required.
 * Returns AISLE_OK, or AISLE_EINVAL with the reason in err. */
int profile_check_id(const char *name, const char *v, int required, char *err,
                     size_t errlen);

/* Applies validated events, each atomically and at most once (see the
 * top of this file), a user's events of one origin summed, read and
 * written together, many users a script call, and bumps global popularity
 * for the ones newly applied (summed over popular_delay_ms first). One
 * round trip, two when popularity is due, and one more for each round of runs held back for a duplicate (a
 * replay). Events of one user and origin must come in offset order.
 * A user whose profile no write can read (a corrupt record, a hash that
 * does not convert, a key of another type: only something other than
 * Aisle writing the keys makes one) has those events refused, its keys
 * untouched, while the other users' events apply: refused (NULL, or n
 * bytes) then holds, per event, 0 for one applied or a duplicate, else the
 * check that failed (PRECORD_REFUSED_*; profile_refusal says it in words).
 * Returns the number newly
 * applied (duplicates and refusals count 0), or AISLE_EIO (AISLE_ENOMEM) with err set; then some may
 * have been applied and the caller retries the whole batch, which
 * de-duplication makes safe (popularity, an approximate figure, may then
 * miss those; a popularity write that failed is kept and tried again). */
int profile_apply(profile_store *ps, const profile_event *ev, size_t n, char *refused,
                  char *err, size_t errlen);

/* Writes into out why user_id's events were refused with verdict (from
 * profile_apply's refused): the key and the check that failed. */
void profile_refusal(const char *user_id, char verdict, char *out, size_t outlen);

/* profile_apply in two halves, for a caller with other work while Redis
 * works (the worker reads and decodes its next batch): _send queues the
 * events' first round of writes and sends it without waiting; _finish,
 * with the same events unchanged meanwhile, reads the replies, sends any
 * further rounds and returns what profile_apply returns. Nothing else may
 * use the store in between, and every _send that returned AISLE_OK must
 * be followed by _finish. _send returns AISLE_OK, or AISLE_EIO
 * (AISLE_ENOMEM) with err set: nothing was sent, nothing to finish. */
int profile_apply_send(profile_store *ps, const profile_event *ev, size_t n, char *err,
                       size_t errlen);
int profile_apply_finish(profile_store *ps, const profile_event *ev, size_t n, char *refused,
                         char *err, size_t errlen);

/* Writes the popularity profile_apply has summed (see popular_delay_ms)
 * when it is due, or at once when force is non-zero; for a caller going
 * idle or stopping. Returns AISLE_OK (nothing due is OK too), or AISLE_EIO
 * or AISLE_ENOMEM with err set: the sums are kept for the next try. */
int profile_flush(profile_store *ps, int force, char *err, size_t errlen);

/* Reads a user's profile as of now_ms, at most max_items items. Returns 0
 * (an unknown user gives an empty profile), AISLE_EINVAL for a bad
 * user_id, AISLE_EIO or AISLE_ENOMEM, with err set. The caller
 * frees p with profile_clear. */
int profile_get(profile_store *ps, const char *user_id, int64_t now_ms,
                size_t max_items, profile *p, char *err, size_t errlen);
void profile_clear(profile *p);

/* Erases every key of the user and marks the erasure with the time (Redis's
 * clock) for erasure_keep_s: events produced at or before it are skipped
 * from then on, whichever consumer replays them, and later ones build a new
 * profile. Returns 1 when something was erased, 0 when there was nothing,
 * AISLE_EINVAL, AISLE_ENOMEM or AISLE_EIO with err set. */
int profile_delete(profile_store *ps, const char *user_id, char *err, size_t errlen);

/* The n most popular items as of now_ms, heaviest first, into *out (caller
 * frees with profile_entries_free). Returns the count, or AISLE_EIO with
 * err set. */
int profile_popular(profile_store *ps, int64_t now_ms, size_t n,
                    profile_entry **out, char *err, size_t errlen);
/* The same for one category's trending list: positive events of items the
 * catalog puts in category, decayed like the global list, at most 1,000
 * items a category. Returns the count, AISLE_EINVAL (an empty or
 * over-long category) or AISLE_EIO, with err set. */
int profile_trending(profile_store *ps, const char *category, int64_t now_ms, size_t n,
                     profile_entry **out, char *err, size_t errlen);
/* The categories themselves by the same decayed weight, heaviest first
 * (what is trending for a user with no tastes yet). */
int profile_trending_categories(profile_store *ps, int64_t now_ms, size_t n,
                                profile_entry **out, char *err, size_t errlen);
void profile_entries_free(profile_entry *e, size_t n);

/* Whether the store answers (a PING on the node of one slot). Returns
 * AISLE_OK, or AISLE_EIO with err set. For readiness and health. */
int profile_ping(profile_store *ps, char *err, size_t errlen);

#endif
