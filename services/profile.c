/* profile: Redis-backed user profiles (see profile.h for the model). */
#include "services/profile.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_KEY_MAX (PROFILE_MAX_ID + 32)
#define PROFILE_POPULAR_KEY "aisle:popular"

/* Scores are kept in log space: a member's score is ln(decayed weight) +
 * (t−L)/H·ln 2, so adding weight is a log-sum-exp and nothing overflows
 * however far time runs from the landmark. Negative feedback (DISMISS) has
 * its own set, so every sum stays positive. */
#define PROFILE_LUA_LOGADD                                                    \
    "local function logadd(key, member, a)\n"                                 \
    "  local cur = redis.call('ZSCORE', key, member)\n"                       \
    "  if cur then\n"                                                         \
    "    cur = tonumber(cur)\n"                                               \
    "    local m = math.max(cur, a)\n"                                        \
    "    a = m + math.log(1 + math.exp(-math.abs(cur - a)))\n"                \
    "  end\n"                                                                 \
    "  redis.call('ZADD', key, string.format('%.17g', a), member)\n"          \
    "end\n"                                                                   \
    "local function trim(key, max)\n"                                         \
    "  local n = redis.call('ZCARD', key)\n"                                  \
    "  if n > max then redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1) end\n" \
    "end\n"

/* One event, applied atomically: remember its id (or stop if already seen),
 * add its weight to the item (or to the dismissed set) and to the creator,
 * trim each set to its bound by dropping the lightest (oldest) members, and
 * keep the latest activity time.
 * KEYS: items creators dismissed events meta
 * ARGV: event_id ts_ms item item_log creator creator_log dismiss max_items
 *       max_creators event_window */
static const char profile_apply_lua[] =
    PROFILE_LUA_LOGADD
    "if redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 0 end\n"
    "redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])\n"
    "trim(KEYS[4], tonumber(ARGV[10]))\n"
    "if ARGV[3] ~= '' then\n"
    "  local set = ARGV[7] == '1' and KEYS[3] or KEYS[1]\n"
    "  logadd(set, ARGV[3], tonumber(ARGV[4]))\n"
    "  trim(set, tonumber(ARGV[8]))\n"
    "end\n"
    "if ARGV[5] ~= '' then\n"
    "  logadd(KEYS[2], ARGV[5], tonumber(ARGV[6]))\n"
    "  trim(KEYS[2], tonumber(ARGV[9]))\n"
    "end\n"
    "local last = tonumber(redis.call('HGET', KEYS[5], 'last_ms') or '0')\n"
    "if tonumber(ARGV[2]) > last then\n"
    "  redis.call('HSET', KEYS[5], 'last_ms', ARGV[2])\n"
    "end\n"
    "return 1\n";

/* Global popularity, bounded to the heaviest PROFILE_POPULAR_MAX items.
 * KEYS: popular  ARGV: item log_weight max */
static const char profile_popular_lua[] =
    PROFILE_LUA_LOGADD
    "logadd(KEYS[1], ARGV[1], tonumber(ARGV[2]))\n"
    "trim(KEYS[1], tonumber(ARGV[3]))\n"
    "return 1\n";

#define PROFILE_POPULAR_MAX 10000

struct profile_store {
    char host[256];
    int port;
    profile_config cfg;
    redisContext *rc;    /* NULL while disconnected */
    char sha_apply[41];  /* script hashes, loaded on connect */
    char sha_popular[41];
};

void profile_config_default(profile_config *cfg) {
    cfg->half_life_s = 7 * 24 * 3600.0;
    cfg->max_items = 500;
    cfg->max_creators = 100;
    cfg->event_window = 10000;
}

int profile_store_open(const char *addr, const profile_config *cfg,
                       profile_store **out, char *err, size_t errlen) {
    const char *colon = strrchr(addr, ':');
    char *end;
    long port;
    profile_store *ps;

    *out = NULL;
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(ps->host)) {
        snprintf(err, errlen, "redis address '%s' is not HOST:PORT", addr);
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535) {
        snprintf(err, errlen, "redis address '%s' has a bad port", addr);
        return -1;
    }
    if (cfg->half_life_s <= 0 || cfg->max_items <= 0 ||
        cfg->max_creators <= 0 || cfg->event_window <= 0) {
        snprintf(err, errlen, "profile settings must be positive");
        return -1;
    }
    ps = calloc(1, sizeof(*ps));
    if (!ps) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(ps->host, addr, (size_t)(colon - addr));
    ps->port = (int)port;
    ps->cfg = *cfg;
    *out = ps;
    return 0;
}

static void profile_disconnect(profile_store *ps) {
    if (ps->rc) redisFree(ps->rc);
    ps->rc = NULL;
}

void profile_store_close(profile_store *ps) {
    if (!ps) return;
    profile_disconnect(ps);
    free(ps);
}

/* SCRIPT LOADs src into sha (41 bytes). Drops the connection on failure. */
static int profile_load_script(profile_store *ps, const char *src, char *sha,
                               char *err, size_t errlen) {
    redisReply *r = redisCommand(ps->rc, "SCRIPT LOAD %s", src);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "redis %s:%d: loading a profile script: %s", ps->host,
                 ps->port, r && r->type == REDIS_REPLY_ERROR ? r->str : ps->rc->errstr);
        if (r) freeReplyObject(r);
        profile_disconnect(ps);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = 0;
    freeReplyObject(r);
    return 0;
}

/* Connects if needed and makes sure the scripts are loaded. */
static int profile_connect(profile_store *ps, char *err, size_t errlen) {
    struct timeval tv = {2, 0};
    if (ps->rc) return 0;
    ps->rc = redisConnectWithTimeout(ps->host, ps->port, tv);
    if (!ps->rc || ps->rc->err) {
        snprintf(err, errlen, "redis %s:%d: %s", ps->host, ps->port,
                 ps->rc ? ps->rc->errstr : "out of memory");
        profile_disconnect(ps);
        return PROFILE_EIO;
    }
    redisSetTimeout(ps->rc, tv);
    if (profile_load_script(ps, profile_apply_lua, ps->sha_apply, err, errlen) ||
        profile_load_script(ps, profile_popular_lua, ps->sha_popular, err, errlen))
        return PROFILE_EIO;
    return 0;
}

/* Reports a failed exchange and drops the connection: after a partial
 * pipeline the reply stream can no longer be trusted. */
static int profile_fail(profile_store *ps, redisReply *r, const char *what,
                        char *err, size_t errlen) {
    snprintf(err, errlen, "redis %s:%d: %s: %s", ps->host, ps->port, what,
             r && r->type == REDIS_REPLY_ERROR ? r->str
             : ps->rc && ps->rc->err           ? ps->rc->errstr
                                               : "unexpected reply");
    if (r) freeReplyObject(r);
    profile_disconnect(ps);
    return PROFILE_EIO;
}

double profile_kind_weight(Aisle__V1__SignalKind kind) {
    switch (kind) {
    case AISLE__V1__SIGNAL_KIND__VIEW: return 1.0;
    case AISLE__V1__SIGNAL_KIND__CLICK: return 2.0;
    case AISLE__V1__SIGNAL_KIND__ADD_TO_CART: return 4.0;
    case AISLE__V1__SIGNAL_KIND__PURCHASE: return 8.0;
    case AISLE__V1__SIGNAL_KIND__LIKE: return 3.0;
    case AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR: return 5.0;
    case AISLE__V1__SIGNAL_KIND__DISMISS: return -4.0;
    default: return 0.0;
    }
}

static int profile_check_id(const char *name, const char *v, int required,
                            char *err, size_t errlen) {
    size_t n = v ? strlen(v) : 0;
    if (n == 0) {
        if (required) snprintf(err, errlen, "%s is empty", name);
        return required ? -1 : 0;
    }
    if (n > PROFILE_MAX_ID) {
        snprintf(err, errlen, "%s is longer than %d bytes", name,
                 PROFILE_MAX_ID);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(err, errlen, "%s contains a control character", name);
            return -1;
        }
    }
    return 0;
}

int profile_validate(const Aisle__V1__Signal *s, int64_t now_ms, char *err,
                     size_t errlen) {
    const int64_t min_ts = 946684800000LL; /* 2000-01-01 */
    int follow = s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    if (profile_check_id("event_id", s->event_id, 1, err, errlen) ||
        profile_check_id("user_id", s->user_id, 1, err, errlen) ||
        profile_check_id("item_id", s->item_id, !follow, err, errlen) ||
        profile_check_id("creator_id", s->creator_id, follow, err, errlen))
        return -1;
    if (profile_kind_weight(s->kind) == 0.0) {
        snprintf(err, errlen, "unknown signal kind %d", (int)s->kind);
        return -1;
    }
    if (!isfinite(s->weight) || s->weight < 0 || s->weight > 1000) {
        snprintf(err, errlen, "weight %g is outside [0, 1000]", s->weight);
        return -1;
    }
    if (s->ts_ms < min_ts || s->ts_ms > now_ms + 86400000LL) {
        snprintf(err, errlen, "ts_ms %lld is before 2000 or in the future",
                 (long long)s->ts_ms);
        return -1;
    }
    return 0;
}

/* (t−L)/H·ln 2: the log-space offset of time t (see the scripts). */
static double profile_log_time(const profile_store *ps, int64_t t_ms) {
    return (double)(t_ms - PROFILE_LANDMARK_MS) / (ps->cfg.half_life_s * 1000.0) * M_LN2;
}

enum { PROFILE_KEY_ITEMS, PROFILE_KEY_CREATORS, PROFILE_KEY_DISMISSED,
       PROFILE_KEY_EVENTS, PROFILE_KEY_META, PROFILE_NKEYS };

static void profile_keys(const char *user, char keys[PROFILE_NKEYS][PROFILE_KEY_MAX]) {
    static const char *names[PROFILE_NKEYS] = {"items", "creators", "dismissed",
                                               "events", "meta"};
    for (int i = 0; i < PROFILE_NKEYS; i++)
        snprintf(keys[i], PROFILE_KEY_MAX, "aisle:u:{%s}:%s", user, names[i]);
}

int profile_apply(profile_store *ps, Aisle__V1__Signal *const *sigs, size_t n,
                  char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    char ts[24], ilog[40], clog[40], maxi[16], maxc[16], win[16], maxp[16];
    unsigned char *applied = NULL;
    int napplied = 0;
    redisReply *r = NULL;

    if (n == 0) return 0;
    if (profile_connect(ps, err, errlen) != 0) return PROFILE_EIO;
    applied = calloc(n, 1);
    if (!applied) {
        snprintf(err, errlen, "out of memory");
        return PROFILE_EIO;
    }
    snprintf(maxi, sizeof(maxi), "%d", ps->cfg.max_items);
    snprintf(maxc, sizeof(maxc), "%d", ps->cfg.max_creators);
    snprintf(win, sizeof(win), "%d", ps->cfg.event_window);
    snprintf(maxp, sizeof(maxp), "%d", PROFILE_POPULAR_MAX);
    for (size_t i = 0; i < n; i++) {
        const Aisle__V1__Signal *s = sigs[i];
        double w = fabs(profile_kind_weight(s->kind)) * (s->weight > 0 ? s->weight : 1.0);
        double a = log(w) + profile_log_time(ps, s->ts_ms);
        int follow = s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
        int dismiss = s->kind == AISLE__V1__SIGNAL_KIND__DISMISS;
        profile_keys(s->user_id, keys);
        snprintf(ts, sizeof(ts), "%lld", (long long)s->ts_ms);
        snprintf(ilog, sizeof(ilog), "%.17g", a);
        /* An item interaction also says a little (a quarter) about its
         * creator; a dismissal says nothing about the creator. */
        snprintf(clog, sizeof(clog), "%.17g", follow ? a : a + log(0.25));
        redisAppendCommand(ps->rc,
                           "EVALSHA %s 5 %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s",
                           ps->sha_apply, keys[0], keys[1], keys[2], keys[3], keys[4],
                           s->event_id, ts, follow ? "" : s->item_id, ilog,
                           dismiss || !s->creator_id ? "" : s->creator_id, clog,
                           dismiss ? "1" : "0", maxi, maxc, win);
    }
    for (size_t i = 0; i < n; i++) {
        if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
            r->type != REDIS_REPLY_INTEGER)
            goto fail;
        applied[i] = r->integer == 1;
        freeReplyObject(r);
        r = NULL;
    }
    /* Popularity counts positive interest of newly applied events only, so a
     * replayed batch does not inflate it. */
    for (size_t i = 0; i < n; i++) {
        const Aisle__V1__Signal *s = sigs[i];
        double w = profile_kind_weight(s->kind);
        if (!applied[i]) continue;
        napplied++;
        if (w <= 0 || !s->item_id || !*s->item_id) continue;
        w *= s->weight > 0 ? s->weight : 1.0;
        snprintf(ilog, sizeof(ilog), "%.17g", log(w) + profile_log_time(ps, s->ts_ms));
        redisAppendCommand(ps->rc, "EVALSHA %s 1 %s %s %s %s", ps->sha_popular,
                           PROFILE_POPULAR_KEY, s->item_id, ilog, maxp);
        applied[i] = 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (applied[i] != 2) continue;
        if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
            r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
        r = NULL;
    }
    free(applied);
    return napplied;
fail:
    free(applied);
    return profile_fail(ps, r, "applying signals", err, errlen);
}

/* Turns a WITHSCORES array into decayed entries. */
static int profile_entries_from(const profile_store *ps, const redisReply *r,
                                int64_t now_ms, profile_entry **out,
                                size_t *n_out) {
    size_t n = r->elements / 2;
    double now_log = profile_log_time(ps, now_ms);
    profile_entry *e = NULL;
    *out = NULL;
    *n_out = 0;
    if (n == 0) return 0;
    e = calloc(n, sizeof(*e));
    if (!e) return -1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            goto fail;
        e[i].id = strndup(k->str, k->len);
        if (!e[i].id) goto fail;
        e[i].weight = exp(strtod(v->str, NULL) - now_log);
    }
    *out = e;
    *n_out = n;
    return 0;
fail:
    profile_entries_free(e, n);
    return -1;
}

void profile_entries_free(profile_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++) free(e[i].id);
    free(e);
}

void profile_clear(profile *p) {
    profile_entries_free(p->items, p->n_items);
    profile_entries_free(p->creators, p->n_creators);
    profile_entries_free(p->dismissed, p->n_dismissed);
    memset(p, 0, sizeof(*p));
}

int profile_get(profile_store *ps, const char *user_id, int64_t now_ms,
                size_t max_items, profile *p, char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    redisReply *r = NULL;
    memset(p, 0, sizeof(*p));
    if (profile_check_id("user_id", user_id, 1, err, errlen) != 0)
        return PROFILE_EINVAL;
    if (max_items == 0) max_items = 1;
    if (profile_connect(ps, err, errlen) != 0) return PROFILE_EIO;
    profile_keys(user_id, keys);
    redisAppendCommand(ps->rc, "ZREVRANGE %s 0 %lld WITHSCORES", keys[0],
                       (long long)max_items - 1);
    redisAppendCommand(ps->rc, "ZREVRANGE %s 0 %d WITHSCORES", keys[1],
                       ps->cfg.max_creators - 1);
    redisAppendCommand(ps->rc, "ZREVRANGE %s 0 %lld WITHSCORES", keys[2],
                       (long long)max_items - 1);
    redisAppendCommand(ps->rc, "HGET %s last_ms", keys[4]);

    if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
        r->type != REDIS_REPLY_ARRAY)
        goto fail;
    if (profile_entries_from(ps, r, now_ms, &p->items, &p->n_items) != 0)
        goto fail;
    freeReplyObject(r);
    if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
        r->type != REDIS_REPLY_ARRAY)
        goto fail;
    if (profile_entries_from(ps, r, now_ms, &p->creators, &p->n_creators) != 0)
        goto fail;
    freeReplyObject(r);
    if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
        r->type != REDIS_REPLY_ARRAY)
        goto fail;
    if (profile_entries_from(ps, r, now_ms, &p->dismissed, &p->n_dismissed) != 0)
        goto fail;
    freeReplyObject(r);
    if (redisGetReply(ps->rc, (void **)&r) != REDIS_OK || !r ||
        (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
        goto fail;
    if (r->type == REDIS_REPLY_STRING) p->last_active_ms = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return 0;
fail:
    profile_clear(p);
    return profile_fail(ps, r, "reading a profile", err, errlen);
}

int profile_delete(profile_store *ps, const char *user_id, char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    redisReply *r;
    int n;
    if (profile_check_id("user_id", user_id, 1, err, errlen) != 0) return PROFILE_EINVAL;
    if (profile_connect(ps, err, errlen) != 0) return PROFILE_EIO;
    profile_keys(user_id, keys);
    r = redisCommand(ps->rc, "DEL %s %s %s %s %s", keys[0], keys[1], keys[2], keys[3],
                     keys[4]);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return profile_fail(ps, r, "deleting a profile", err, errlen);
    n = r->integer > 0;
    freeReplyObject(r);
    return n;
}

int profile_popular(profile_store *ps, int64_t now_ms, size_t n,
                    profile_entry **out, char *err, size_t errlen) {
    redisReply *r;
    size_t got;
    *out = NULL;
    if (n == 0) return 0;
    if (profile_connect(ps, err, errlen) != 0) return PROFILE_EIO;
    r = redisCommand(ps->rc, "ZREVRANGE %s 0 %lld WITHSCORES",
                     PROFILE_POPULAR_KEY, (long long)n - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY ||
        profile_entries_from(ps, r, now_ms, out, &got) != 0)
        return profile_fail(ps, r, "reading popular items", err, errlen);
    freeReplyObject(r);
    return (int)got;
}
