/* profile: Redis-backed user profiles (see profile.h for the model). */
#include "services/profile/profile.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/clock.h"
#include "services/profile/rcluster.h"

/* A key holds the user id escaped (at most three bytes a byte) and a name. */
#define PROFILE_KEY_MAX (3 * PROFILE_MAX_ID + 32)
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
    "  return not cur\n"                                                      \
    "end\n"                                                                   \
    "local function trim(key, max)\n"                                         \
    "  local n = redis.call('ZCARD', key)\n"                                  \
    "  if n > max then redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1) end\n" \
    "end\n"

/* Weights are linear against a per-user landmark (meta's field "lm", the
 * time of the user's first event): an event at time t adds
 * w·2^((t−lm)/H), so adding is one ZINCRBY, and a reader multiplies by
 * 2^(−(now−lm)/H). When t runs more than PROFILE_REBASE half-lives past
 * lm, the user's decayed sets are rescaled once to a landmark at t, so
 * scores stay far from overflow (2^64 at most, against double's 2^1023). */
#define PROFILE_REBASE "64"

/* Events of one or more (user, origin) runs, each applied atomically: one
 * call carries as many runs as share a slot (on a single node, many users).
 * For each event: skip it if its offset is at or below the origin's mark,
 * if it was produced at or before the user's erasure mark (meta's field
 * "erased", set by profile_delete), or if its id is remembered (ZADD NX
 * says so); else add its weight to the item (or to the dismissed set), the
 * creator, category and brand, and note the item as seen (and purchased).
 * Then raise the origin's mark, the latest activity time and the count of
 * applied events in one HSET. Sets are trimmed to their bounds (lightest,
 * or oldest, first) and the remembered ids to their window each time the
 * count passes a multiple of trim_every, so a set holds at most trim_every
 * members past its bound, which readers never return. The TTL is refreshed
 * and never cuts the erasure mark's keep_s short. Returns one '1' (applied)
 * or '0' (duplicate or erased) per event, in order.
 * KEYS: per run, items creators dismissed events meta seen purchased
 *       categories brands
 * ARGV: max_items max_creators max_categories max_seen max_purchased
 *       window_count window_cutoff_ms now_ms ttl_s keep_s half_life_ms
 *       trim_every, then per run: mark n, then n events of
 *       event_id offset ts_ms kind item w creator creator_w category brand
 *       produced_ms  (kind: d dismiss, p purchase, f follow, i other) */
static const char profile_apply_lua[] =
    "local H, T = tonumber(ARGV[11]), tonumber(ARGV[12])\n"
    "local bounds = {[1] = ARGV[1], [3] = ARGV[1], [2] = ARGV[2], [8] = ARGV[3],\n"
    "                [9] = ARGV[3], [6] = ARGV[4], [7] = ARGV[5]}\n"
    /* Redis writes a number argument with 17 digits; integers kept in
     * meta go as strings, exactly. */
    "local function num(x) return string.format('%.17g', x) end\n"
    "local function trim(key, max)\n"
    "  local n = redis.call('ZCARD', key)\n"
    "  if n > max then redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1) end\n"
    "end\n"
    /* Scales the decayed sets of the run's user by 2^-by. */
    "local function rebase(b, by)\n"
    "  for _, k in ipairs({1, 2, 3, 8, 9}) do\n"
    "    local r = redis.call('ZRANGE', KEYS[b + k], 0, -1, 'WITHSCORES')\n"
    "    local z = {}\n"
    "    for j = 1, #r, 2 do z[#z + 1] = num(r[j + 1] * 2 ^ -by); z[#z + 1] = r[j] end\n"
    "    if #z > 0 then redis.call('ZADD', KEYS[b + k], unpack(z)) end\n"
    "  end\n"
    "end\n"
    "local out, a, b = {}, 13, 0\n"
    "while a <= #ARGV do\n"
    "  local mark, n = ARGV[a], tonumber(ARGV[a + 1])\n"
    "  local meta = redis.call('HMGET', KEYS[b + 5], mark == '' and 'last_ms' or mark,\n"
    "                          'last_ms', 'erased', 'lm', 'n')\n"
    "  local done = mark ~= '' and tonumber(meta[1] or '-1') or -1\n"
    "  local top, last, erased = done, tonumber(meta[2] or '0'), tonumber(meta[3] or '-1')\n"
    "  local lm, cnt = tonumber(meta[4] or ''), tonumber(meta[5] or '0')\n"
    "  local last0, lm0, cnt0 = last, lm, cnt\n"
    "  for i = a + 2, a + 1 + 11 * n - 1, 11 do\n"
    "    local off, ts, kind = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]\n"
    "    if (off >= 0 and off <= done) or tonumber(ARGV[i + 10]) <= erased or\n"
    "       redis.call('ZADD', KEYS[b + 4], 'NX', ARGV[8], ARGV[i]) == 0 then\n"
    "      out[#out + 1] = '0'\n"
    "    else\n"
    "      out[#out + 1] = '1'\n"
    "      if off > top then top = off end\n"
    "      if not lm then lm = ts\n"
    "      elseif (ts - lm) / H > " PROFILE_REBASE " then rebase(b, (ts - lm) / H); lm = ts end\n"
    "      local f, item = 2 ^ ((ts - lm) / H), ARGV[i + 4]\n"
    "      local w = ARGV[i + 5] * f\n"
    "      if item ~= '' and kind == 'd' then\n"
    "        redis.call('ZINCRBY', KEYS[b + 3], w, item)\n"
    "      elseif item ~= '' then\n"
    "        redis.call('ZINCRBY', KEYS[b + 1], w, item)\n"
    "        redis.call('ZADD', KEYS[b + 6], 'GT', ARGV[i + 2], item)\n"
    "        if kind == 'p' then redis.call('ZADD', KEYS[b + 7], 'GT', ARGV[i + 2], item) end\n"
    "        if ARGV[i + 8] ~= '' then redis.call('ZINCRBY', KEYS[b + 8], w, ARGV[i + 8]) end\n"
    "        if ARGV[i + 9] ~= '' then redis.call('ZINCRBY', KEYS[b + 9], w, ARGV[i + 9]) end\n"
    "      end\n"
    "      if ARGV[i + 6] ~= '' then\n"
    "        redis.call('ZINCRBY', KEYS[b + 2], ARGV[i + 7] * f, ARGV[i + 6])\n"
    "      end\n"
    "      if ts > last then last = ts end\n"
    "      cnt = cnt + 1\n"
    "    end\n"
    "  end\n"
    "  local h = {}\n"
    "  if top > done then h[#h + 1] = mark; h[#h + 1] = num(top) end\n"
    "  if last > last0 then h[#h + 1] = 'last_ms'; h[#h + 1] = num(last) end\n"
    "  if lm ~= lm0 then h[#h + 1] = 'lm'; h[#h + 1] = num(lm) end\n"
    "  if cnt > cnt0 then h[#h + 1] = 'n'; h[#h + 1] = cnt end\n"
    "  if #h > 0 then redis.call('HSET', KEYS[b + 5], unpack(h)) end\n"
    "  if math.floor(cnt / T) > math.floor(cnt0 / T) then\n"
    "    for k, max in pairs(bounds) do trim(KEYS[b + k], tonumber(max)) end\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[b + 4], '-inf', '(' .. ARGV[7])\n"
    "    trim(KEYS[b + 4], tonumber(ARGV[6]))\n"
    "  end\n"
    "  if tonumber(ARGV[9]) > 0 and cnt > cnt0 then\n"
    "    for k = 1, 9 do redis.call('EXPIRE', KEYS[b + k], ARGV[9]) end\n"
    "    local keep = math.ceil((erased + ARGV[10] * 1000 - ARGV[8]) / 1000)\n"
    "    if erased >= 0 and keep > tonumber(ARGV[9]) then\n"
    "      redis.call('EXPIRE', KEYS[b + 5], keep)\n"
    "    end\n"
    "  end\n"
    "  a, b = a + 2 + 11 * n, b + 9\n"
    "end\n"
    "return table.concat(out)\n";

/* Global popularity, bounded to the heaviest `max` items.
 * KEYS: popular  ARGV: max, then pairs of item log_weight */
static const char profile_popular_lua[] =
    PROFILE_LUA_LOGADD
    "for i = 2, #ARGV, 2 do logadd(KEYS[1], ARGV[i], tonumber(ARGV[i+1])) end\n"
    "trim(KEYS[1], tonumber(ARGV[1]))\n"
    "return 1\n";

#define PROFILE_POPULAR_MAX 10000

/* Trending: the same decayed popularity per category (the item's category
 * from ingest's catalog copy), each list bounded, and the categories
 * themselves by the same weights, so a new user's page can show the
 * categories trending now. */
#define PROFILE_TRENDING_PREFIX "aisle:trending:c:"
#define PROFILE_TRENDING_CATEGORIES_KEY "aisle:trending:categories"
#define PROFILE_TRENDING_MAX 1000        /* items kept per category */
#define PROFILE_TRENDING_CATEGORIES 1000 /* categories kept */
#define PROFILE_MAX_CATEGORY 1024        /* ingest's facts learn none longer */
#define PROFILE_TRENDING_KEY_MAX (sizeof(PROFILE_TRENDING_PREFIX) + PROFILE_MAX_CATEGORY)

/* Erasure: every key of the profile goes, and meta keeps only the erasure
 * mark, the time (Redis's clock, the one clock every writer shares), for
 * keep_s, the log's retention: a replay of what was produced before cannot
 * bring the profile back. The mark lives in meta, a key every call already
 * names, so a slot migration never finds a call's keys half moved. Returns
 * the number of keys that held something of the profile.
 * KEYS: as for apply (meta 5th)  ARGV: keep_s */
static const char profile_delete_lua[] =
    "local t = redis.call('TIME')\n"
    "local only_mark = redis.call('HLEN', KEYS[5]) == 1 and\n"
    "                  redis.call('HEXISTS', KEYS[5], 'erased') == 1\n"
    "local n = redis.call('DEL', unpack(KEYS))\n"
    "if only_mark then n = n - 1 end\n"
    "redis.call('HSET', KEYS[5], 'erased',\n"
    "           string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000)))\n"
    "redis.call('EXPIRE', KEYS[5], ARGV[1])\n"
    "return n\n";

enum { PROFILE_SCRIPT_APPLY, PROFILE_SCRIPT_POPULAR, PROFILE_SCRIPT_DELETE, PROFILE_NSCRIPTS };

struct profile_store {
    profile_config cfg;
    rcluster *rc;
};

static const char *const profile_kind_names[PROFILE_KINDS] = {
    NULL, "view", "click", "add_to_cart", "purchase", "like", "follow_creator", "dismiss"};

void profile_config_default(profile_config *cfg) {
    static const double weights[PROFILE_KINDS] = {0, 1, 2, 4, 8, 3, 5, 4};
    memset(cfg, 0, sizeof(*cfg));
    cfg->half_life_s = 7 * 24 * 3600.0;
    cfg->max_items = 500;
    cfg->max_creators = 100;
    cfg->max_categories = 100;
    cfg->max_seen = 1000;
    cfg->max_purchased = 1000;
    cfg->event_window = 10000;
    cfg->event_window_s = 7 * 24 * 3600.0;
    cfg->erasure_keep_s = 7 * 24 * 3600.0;
    memcpy(cfg->kind_weights, weights, sizeof(weights));
}

int profile_parse_kind_weights(profile_config *cfg, const char *spec, char *err,
                               size_t errlen) {
    double w[PROFILE_KINDS];
    const char *p = spec;
    memcpy(w, cfg->kind_weights, sizeof(w));
    while (*p) {
        size_t len = strcspn(p, "=,");
        int kind = 0;
        char *end;
        double v;
        for (int k = 1; k < PROFILE_KINDS; k++)
            if (strlen(profile_kind_names[k]) == len &&
                strncasecmp(p, profile_kind_names[k], len) == 0)
                kind = k;
        if (!kind || p[len] != '=') {
            return status_fail(AISLE_EINVAL, err, errlen,
                               "'%.*s' is not KIND=WEIGHT with a kind of view, click, "
                               "add_to_cart, purchase, like, follow_creator, dismiss",
                               (int)len, p);
        }
        v = strtod(p + len + 1, &end);
        if (end == p + len + 1 || (*end && *end != ',') || !(v > 0 && v <= 1000)) {
            return status_fail(AISLE_EINVAL, err, errlen,
                               "weight of %s must be a number in (0, 1000]",
                               profile_kind_names[kind]);
        }
        w[kind] = v;
        p = *end ? end + 1 : end;
    }
    memcpy(cfg->kind_weights, w, sizeof(w));
    return AISLE_OK;
}

int profile_store_open(const char *addr, const profile_config *cfg,
                       profile_store **out, char *err, size_t errlen) {
    static const char *const scripts[PROFILE_NSCRIPTS] = {
        profile_apply_lua, profile_popular_lua, profile_delete_lua};
    profile_store *ps;
    int rc;
    *out = NULL;
    if (cfg->half_life_s <= 0 || cfg->max_items <= 0 || cfg->max_creators <= 0 ||
        cfg->max_categories <= 0 || cfg->max_seen <= 0 || cfg->max_purchased <= 0 ||
        cfg->event_window <= 0 || cfg->event_window_s <= 0 || cfg->ttl_s < 0 ||
        cfg->erasure_keep_s <= 0) {
        return status_fail(AISLE_EINVAL, err, errlen, "profile settings must be positive");
    }
    for (int k = 1; k < PROFILE_KINDS; k++)
        if (!(cfg->kind_weights[k] > 0))
            return status_fail(AISLE_EINVAL, err, errlen, "the weight of %s must be positive",
                               profile_kind_names[k]);
    ps = calloc(1, sizeof(*ps));
    if (!ps) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = rcluster_open(addr, scripts, PROFILE_NSCRIPTS, &ps->rc, err, errlen)) != 0) {
        free(ps);
        return rc;
    }
    ps->cfg = *cfg;
    *out = ps;
    return AISLE_OK;
}

void profile_store_close(profile_store *ps) {
    if (!ps) return;
    rcluster_close(ps->rc);
    free(ps);
}

/* Sends the queued commands; on 0, *r holds n replies (owned by the store
 * until its next call). */
static int profile_exec(profile_store *ps, const char *what, redisReply ***r, size_t *n,
                        char *err, size_t errlen) {
    char why[400];
    if (rcluster_exec(ps->rc, r, n, why, sizeof(why)) == 0) return AISLE_OK;
    return status_fail(AISLE_EIO, err, errlen, "%s: %s", what, why);
}

/* Reports an unexpected reply (an error reply carries Redis's reason). */
static int profile_bad_reply(const redisReply *r, const char *what, char *err,
                             size_t errlen) {
    return status_fail(AISLE_EIO, err, errlen, "redis: %s: %s", what,
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

int profile_check_id(const char *name, const char *v, int required, char *err,
                     size_t errlen) {
    size_t n = v ? strlen(v) : 0;
    if (n == 0)
        return required ? status_fail(AISLE_EINVAL, err, errlen, "%s is empty", name)
                        : AISLE_OK;
    if (n > PROFILE_MAX_ID)
        return status_fail(AISLE_EINVAL, err, errlen, "%s is longer than %d bytes", name,
                           PROFILE_MAX_ID);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return status_fail(AISLE_EINVAL, err, errlen, "%s contains a control character",
                               name);
    return AISLE_OK;
}

/* (t−L)/H·ln 2: the log-space offset of time t (see the scripts). */
static double profile_log_time(const profile_store *ps, int64_t t_ms) {
    return (double)(t_ms - PROFILE_LANDMARK_MS) / (ps->cfg.half_life_s * 1000.0) * M_LN2;
}

/* The weight of an event: its kind's, times its multiplier. */
static double profile_event_weight(const profile_store *ps, const Aisle__V1__Signal *s) {
    return ps->cfg.kind_weights[s->kind] * (s->weight > 0 ? s->weight : 1.0);
}

/* The log-space score an event adds to global popularity: the log of its
 * weight plus the offset of its time. */
static double profile_event_log(const profile_store *ps, const Aisle__V1__Signal *s) {
    return log(profile_event_weight(ps, s)) + profile_log_time(ps, s->ts_ms);
}

enum { PROFILE_KEY_ITEMS, PROFILE_KEY_CREATORS, PROFILE_KEY_DISMISSED,
       PROFILE_KEY_EVENTS, PROFILE_KEY_META, PROFILE_KEY_SEEN, PROFILE_KEY_PURCHASED,
       PROFILE_KEY_CATEGORIES, PROFILE_KEY_BRANDS, PROFILE_NKEYS };

size_t profile_key_tag(const char *user, char *out, size_t outlen) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    assert(outlen > 0);
    for (const char *p = user; *p; p++) {
        int esc = *p == '{' || *p == '}' || *p == '%';
        if (n + (esc ? 3 : 1) >= outlen) break;
        if (esc) {
            out[n++] = '%';
            out[n++] = hex[(unsigned char)*p >> 4];
            out[n++] = hex[*p & 15];
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return n;
}

static void profile_keys(const char *user, char keys[PROFILE_NKEYS][PROFILE_KEY_MAX]) {
    static const char *names[PROFILE_NKEYS] = {
        "items", "creators", "dismissed", "events", "meta",
        "seen",  "purchased", "categories", "brands"};
    static const char prefix[] = "aisle:u:{";
    char tag[3 * PROFILE_MAX_ID + 1];
    size_t n = profile_key_tag(user, tag, sizeof(tag));
    for (int i = 0; i < PROFILE_NKEYS; i++) {
        char *k = keys[i];
        size_t len = strlen(names[i]);
        assert(sizeof(prefix) - 1 + n + 2 + len < PROFILE_KEY_MAX);
        memcpy(k, prefix, sizeof(prefix) - 1);
        k += sizeof(prefix) - 1;
        memcpy(k, tag, n);
        k += n;
        *k++ = '}';
        *k++ = ':';
        memcpy(k, names[i], len + 1);
    }
}

/* Orders events by user, then origin, then arrival, so that each user's
 * events of one origin form one run in log order. */
static int profile_cmp_origin(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "");
}
static int profile_cmp_event(const void *pa, const void *pb, void *base) {
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    const profile_event *ea = (const profile_event *)base + a,
                        *eb = (const profile_event *)base + b;
    int c = strcmp(ea->sig->user_id, eb->sig->user_id);
    if (!c) c = profile_cmp_origin(ea->origin, eb->origin);
    return c ? c : (a > b) - (a < b);
}

/* Runs (one user, one origin) per script call at most, when one node
 * serves every slot; in a cluster a call takes the runs of one slot. */
#define PROFILE_CALL_RUNS 64
#define PROFILE_TRIM_EVERY 64 /* applied events of a user between trims */
#define PROFILE_HEAD_ARGS 12  /* the apply script's ARGV before the runs */
#define PROFILE_EVENT_ARGS 11 /* and per event */

/* Argument storage for one script call: numbers are formatted into `num`,
 * 32 bytes a slot, keys into `keys`, PROFILE_NKEYS a run. */
typedef struct profile_args {
    const char **argv;
    size_t *lens;
    char (*num)[32];
    char (*keys)[PROFILE_KEY_MAX];
    int argc, n_num;
} profile_args;

static void profile_arg_len(profile_args *a, const char *s, size_t len) {
    a->argv[a->argc] = s;
    a->lens[a->argc] = len;
    a->argc++;
}

static void profile_arg(profile_args *a, const char *s) {
    profile_arg_len(a, s ? s : "", s ? strlen(s) : 0);
}

/* Integers in decimal, written by hand: formatting was half of a worker's
 * time through snprintf. */
static void profile_arg_int(profile_args *a, int64_t v) {
    char *slot = a->num[a->n_num++], tmp[24];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) slot[len++] = '-';
    while (n) slot[len++] = tmp[--n];
    slot[len] = 0;
    profile_arg_len(a, slot, len);
}

/* A weight: exactly, as an integer when it is one (most are). */
static void profile_arg_num(profile_args *a, double v) {
    char *slot;
    if (v == (double)(int64_t)v && fabs(v) < 9007199254740992.0) {
        profile_arg_int(a, (int64_t)v);
        return;
    }
    slot = a->num[a->n_num++];
    profile_arg_len(a, slot, (size_t)snprintf(slot, 32, "%.17g", v));
}

/* One event's arguments (see the script). */
static void profile_arg_event(const profile_store *ps, const profile_event *e,
                              profile_args *a) {
    const Aisle__V1__Signal *s = e->sig;
    int follow = s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    int dismiss = s->kind == AISLE__V1__SIGNAL_KIND__DISMISS;
    double w = profile_event_weight(ps, s);
    profile_arg(a, s->event_id);
    profile_arg_int(a, e->origin ? e->offset : -1);
    profile_arg_int(a, s->ts_ms);
    profile_arg(a, dismiss ? "d"
                   : follow ? "f"
                   : s->kind == AISLE__V1__SIGNAL_KIND__PURCHASE ? "p"
                                                                : "i");
    profile_arg(a, follow ? "" : s->item_id);
    profile_arg_num(a, w);
    /* An item interaction also says a little (a quarter) about its
     * creator; a dismissal says nothing about the creator. */
    profile_arg(a, dismiss ? "" : s->creator_id);
    profile_arg_num(a, follow ? w : w * 0.25);
    profile_arg(a, e->category);
    profile_arg(a, e->brand);
    profile_arg_int(a, e->produced_ms > 0 ? e->produced_ms : s->ts_ms);
}

/* Queues one script call for runs k0..k1-1; run k holds the events
 * order[start[k]..start[k+1]-1] (one user, one origin, log order). */
static int profile_queue_call(profile_store *ps, const profile_event *ev, const size_t *order,
                              const size_t *start, size_t k0, size_t k1, profile_args *a) {
    const profile_config *cfg = &ps->cfg;
    int64_t now = clock_wall_ms();
    char nkeys[16];
    a->argc = a->n_num = 0;
    snprintf(nkeys, sizeof(nkeys), "%zu", PROFILE_NKEYS * (k1 - k0));
    profile_arg(a, "EVALSHA");
    profile_arg(a, rcluster_sha(ps->rc, PROFILE_SCRIPT_APPLY));
    profile_arg(a, nkeys);
    for (size_t k = k0; k < k1; k++) {
        char (*keys)[PROFILE_KEY_MAX] = &a->keys[(k - k0) * PROFILE_NKEYS];
        profile_keys(ev[order[start[k]]].sig->user_id, keys);
        for (int j = 0; j < PROFILE_NKEYS; j++) profile_arg(a, keys[j]);
    }
    profile_arg_int(a, cfg->max_items);
    profile_arg_int(a, cfg->max_creators);
    profile_arg_int(a, cfg->max_categories);
    profile_arg_int(a, cfg->max_seen);
    profile_arg_int(a, cfg->max_purchased);
    profile_arg_int(a, cfg->event_window);
    profile_arg_int(a, now - (int64_t)(cfg->event_window_s * 1000.0));
    profile_arg_int(a, now);
    profile_arg_int(a, (int64_t)ceil(cfg->ttl_s));
    profile_arg_int(a, (int64_t)ceil(cfg->erasure_keep_s));
    profile_arg_num(a, cfg->half_life_s * 1000.0);
    profile_arg_int(a, PROFILE_TRIM_EVERY);
    for (size_t k = k0; k < k1; k++) {
        const char *origin = ev[order[start[k]]].origin;
        profile_arg(a, origin ? origin : "");
        profile_arg_int(a, (int64_t)(start[k + 1] - start[k]));
        for (size_t i = start[k]; i < start[k + 1]; i++) profile_arg_event(ps, &ev[order[i]], a);
    }
    return rcluster_append(ps->rc, a->keys[0], a->argc, a->argv, a->lens);
}

typedef struct profile_pop {
    const char *category; /* "" when unknown */
    const char *item;     /* the member: an item, or the category itself */
    double log_w;
} profile_pop;

/* By category, then member: one sort groups every key's members. */
static int profile_cmp_pop(const void *pa, const void *pb) {
    const profile_pop *a = pa, *b = pb;
    int c = strcmp(a->category, b->category);
    return c ? c : strcmp(a->item, b->item);
}

/* ln(e^a + e^b) without overflow. */
static double profile_logadd(double a, double b) {
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

/* Sorts pop[0..n) and sums the weights of equal (category, member) pairs
 * into one; returns how many remain. */
static size_t profile_pop_merge(profile_pop *pop, size_t n) {
    size_t m = 0;
    if (n == 0) return 0;
    qsort(pop, n, sizeof(*pop), profile_cmp_pop);
    for (size_t i = 1; i < n; i++) {
        if (profile_cmp_pop(&pop[i], &pop[m]) == 0)
            pop[m].log_w = profile_logadd(pop[m].log_w, pop[i].log_w);
        else
            pop[++m] = pop[i];
    }
    return m + 1;
}

/* Queues one call of the popularity script adding pop[0..n) to key,
 * bounded to max members; argv, lens and num have room for n pairs. */
static int profile_queue_bump(profile_store *ps, const char *key, int max, const profile_pop *pop,
                              size_t n, const char **argv, size_t *lens, char (*num)[32]) {
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = rcluster_sha(ps->rc, PROFILE_SCRIPT_POPULAR);
    argv[argc++] = "1";
    argv[argc++] = key;
    snprintf(num[n], 32, "%d", max);
    argv[argc++] = num[n];
    for (size_t i = 0; i < n; i++) {
        snprintf(num[i], 32, "%.17g", pop[i].log_w);
        argv[argc++] = pop[i].item;
        argv[argc++] = num[i];
    }
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    return rcluster_append(ps->rc, key, argc, argv, lens);
}

/* The trending key of category into key (PROFILE_TRENDING_KEY_MAX). */
static void profile_trending_key(const char *category, char *key) {
    snprintf(key, PROFILE_TRENDING_KEY_MAX, "%s%s", PROFILE_TRENDING_PREFIX, category);
}

/* Queues the trending bumps: each category's items into its own key (one
 * call a category: the keys need not share a slot) and the categories
 * themselves into the category list. pop holds the batch's (category,
 * item) pairs, merged; cats is scratch room for as many. */
static int profile_queue_trending(profile_store *ps, const profile_pop *pop, size_t n,
                                  profile_pop *cats, const char **argv, size_t *lens,
                                  char (*num)[32], size_t *calls) {
    char key[PROFILE_TRENDING_KEY_MAX];
    size_t nc = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && strcmp(pop[j].category, pop[i].category) == 0; j++) {
            if (j == i) cats[nc] = (profile_pop){"", pop[i].category, pop[i].log_w};
            else cats[nc].log_w = profile_logadd(cats[nc].log_w, pop[j].log_w);
        }
        assert(*pop[i].category);
        profile_trending_key(pop[i].category, key);
        if (profile_queue_bump(ps, key, PROFILE_TRENDING_MAX, pop + i, j - i, argv, lens, num))
            return AISLE_ENOMEM;
        nc++;
        (*calls)++;
    }
    if (nc == 0) return AISLE_OK;
    (*calls)++;
    return profile_queue_bump(ps, PROFILE_TRENDING_CATEGORIES_KEY, PROFILE_TRENDING_CATEGORIES,
                              cats, nc, argv, lens, num);
}

/* Adds the newly applied positive item events to global popularity and to
 * their category's trending list, summed per key and item first, in one
 * round trip: one call for the global key, one a category. */
static int profile_bump_popular(profile_store *ps, const profile_event *ev,
                                const unsigned char *applied, size_t n, char *err,
                                size_t errlen) {
    profile_pop *pop = calloc(2 * n + 1, sizeof(*pop));
    const char **argv = calloc(3 + 2 * n + 2, sizeof(*argv));
    size_t *lens = calloc(3 + 2 * n + 2, sizeof(*lens));
    char (*num)[32] = calloc(n + 1, sizeof(*num));
    size_t np = 0, nt = 0, nr, calls = 1;
    int rc = AISLE_EIO;
    redisReply **r;

    if (!pop || !argv || !lens || !num) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Aisle__V1__Signal *s = ev[i].sig;
        if (!applied[i] || s->kind == AISLE__V1__SIGNAL_KIND__DISMISS || !s->item_id ||
            !*s->item_id || s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR)
            continue;
        /* pop[0..n) the global list's, pop[n..2n) the trending ones. */
        pop[np++] = (profile_pop){"", s->item_id, profile_event_log(ps, s)};
        if (ev[i].category && *ev[i].category)
            pop[n + nt++] = (profile_pop){ev[i].category, s->item_id, pop[np - 1].log_w};
    }
    rc = 0;
    if (np == 0) goto out;
    np = profile_pop_merge(pop, np);
    nt = profile_pop_merge(pop + n, nt);
    if (profile_queue_bump(ps, PROFILE_POPULAR_KEY, PROFILE_POPULAR_MAX, pop, np, argv, lens,
                           num) ||
        profile_queue_trending(ps, pop + n, nt, pop, argv, lens, num, &calls)) {
        rcluster_reset(ps->rc);
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if ((rc = profile_exec(ps, "bumping popularity", &r, &nr, err, errlen)) != 0) goto out;
    assert(nr == calls);
    for (size_t i = 0; i < nr && rc == 0; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            rc = profile_bad_reply(r[i], "bumping popularity", err, errlen);
out:
    free(pop);
    free(argv);
    free(lens);
    free(num);
    return rc;
}

/* Whether run k can join a call that starts with run k0: on one node any
 * run can, in a cluster those of the same slot. */
static int profile_same_call(const profile_store *ps, const profile_event *ev,
                             const size_t *order, const size_t *start, size_t k0, size_t k) {
    char a[3 * PROFILE_MAX_ID + 1], b[3 * PROFILE_MAX_ID + 1];
    if (k - k0 >= PROFILE_CALL_RUNS) return 0;
    if (rcluster_one_node(ps->rc)) return 1;
    size_t la = profile_key_tag(ev[order[start[k0]]].sig->user_id, a, sizeof(a));
    size_t lb = profile_key_tag(ev[order[start[k]]].sig->user_id, b, sizeof(b));
    return rcluster_keyslot(a, la) == rcluster_keyslot(b, lb);
}

int profile_apply(profile_store *ps, const profile_event *ev, size_t n, char *err,
                  size_t errlen) {
    size_t *order = calloc(n ? n : 1, sizeof(*order));
    unsigned char *applied = calloc(n ? n : 1, 1);
    size_t *run_start = calloc(n + 1, sizeof(*run_start));
    size_t *call_start = calloc(n + 1, sizeof(*call_start));
    profile_args a = {0};
    size_t n_runs = 0, n_calls = 0, nr, runs_max;
    redisReply **r;
    int napplied = 0, rc = AISLE_EIO;

    if (!order || !applied || !run_start || !call_start) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if ((rc = rcluster_connect(ps->rc, err, errlen)) != 0) goto out;
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof(*order), profile_cmp_event, (void *)ev);
    for (size_t i = 0; i < n; i++) {
        const profile_event *e = &ev[order[i]], *p = i ? &ev[order[i - 1]] : NULL;
        if (!p || strcmp(e->sig->user_id, p->sig->user_id) ||
            profile_cmp_origin(e->origin, p->origin))
            run_start[n_runs++] = i;
    }
    run_start[n_runs] = n;
    for (size_t k = 0; k < n_runs; k++)
        if (n_calls == 0 || !profile_same_call(ps, ev, order, run_start, call_start[n_calls - 1], k))
            call_start[n_calls++] = k;
    call_start[n_calls] = n_runs;
    runs_max = n_runs < PROFILE_CALL_RUNS ? n_runs : PROFILE_CALL_RUNS;
    a.argv = calloc(3 + PROFILE_HEAD_ARGS + (PROFILE_NKEYS + 2) * runs_max +
                    PROFILE_EVENT_ARGS * n, sizeof(*a.argv));
    a.lens = calloc(3 + PROFILE_HEAD_ARGS + (PROFILE_NKEYS + 2) * runs_max +
                    PROFILE_EVENT_ARGS * n, sizeof(*a.lens));
    a.num = calloc(PROFILE_HEAD_ARGS + runs_max + 5 * n, sizeof(*a.num));
    a.keys = calloc(PROFILE_NKEYS * runs_max, sizeof(*a.keys));
    if (!a.argv || !a.lens || !a.num || !a.keys) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < n_calls; c++) {
        if (profile_queue_call(ps, ev, order, run_start, call_start[c], call_start[c + 1], &a)) {
            rcluster_reset(ps->rc);
            rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
            goto out;
        }
    }
    if ((rc = profile_exec(ps, "applying signals", &r, &nr, err, errlen)) != 0) goto out;
    assert(nr == n_calls);
    for (size_t c = 0; c < n_calls; c++) {
        size_t first = run_start[call_start[c]], len = run_start[call_start[c + 1]] - first;
        if (r[c]->type != REDIS_REPLY_STRING || r[c]->len != len) {
            rc = profile_bad_reply(r[c], "applying signals", err, errlen);
            goto out;
        }
        for (size_t i = 0; i < len; i++) {
            applied[order[first + i]] = r[c]->str[i] == '1';
            napplied += r[c]->str[i] == '1';
        }
    }
    /* Popularity counts positive interest of newly applied events only, so a
     * replayed batch does not inflate it. */
    rc = profile_bump_popular(ps, ev, applied, n, err, errlen);
    if (rc == 0) rc = napplied;
out:
    free(order);
    free(applied);
    free(run_start);
    free(call_start);
    free(a.argv);
    free(a.lens);
    free(a.num);
    free(a.keys);
    return rc;
}

/* How a sorted set's scores read as weights. */
typedef enum {
    PROFILE_AS_TIME,   /* times (ms), as they are */
    PROFILE_AS_LINEAR, /* linear against the user's landmark (the apply script) */
    PROFILE_AS_LOG,    /* log space against PROFILE_LANDMARK_MS (popularity) */
} profile_scale;

/* Turns a WITHSCORES array into entries, weights as of now_ms; lm_ms is
 * the user's landmark for PROFILE_AS_LINEAR. */
static int profile_entries_from(const profile_store *ps, const redisReply *r,
                                int64_t now_ms, profile_scale scale, int64_t lm_ms,
                                profile_entry **out, size_t *n_out) {
    size_t n = r->elements / 2;
    double now_log = profile_log_time(ps, now_ms);
    double factor = exp2(-(double)(now_ms - lm_ms) / (ps->cfg.half_life_s * 1000.0));
    profile_entry *e = NULL;
    *out = NULL;
    *n_out = 0;
    if (n == 0) return AISLE_OK;
    e = calloc(n, sizeof(*e));
    if (!e) return AISLE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            goto fail;
        e[i].id = strndup(k->str, k->len);
        if (!e[i].id) goto fail;
        e[i].weight = strtod(v->str, NULL);
        if (scale == PROFILE_AS_LINEAR) e[i].weight *= factor;
        if (scale == PROFILE_AS_LOG) e[i].weight = exp(e[i].weight - now_log);
    }
    *out = e;
    *n_out = n;
    return AISLE_OK;
fail:
    /* A member or score that is not a string is Redis's fault, not ours. */
    profile_entries_free(e, n);
    return AISLE_EFORMAT;
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
    profile_entries_free(p->categories, p->n_categories);
    profile_entries_free(p->brands, p->n_brands);
    profile_entries_free(p->seen, p->n_seen);
    profile_entries_free(p->purchased, p->n_purchased);
    memset(p, 0, sizeof(*p));
}

/* Queues ZREVRANGE key 0 max-1 WITHSCORES. */
static int profile_queue_range(profile_store *ps, const char *key, size_t max) {
    char stop[24];
    const char *argv[5] = {"ZREVRANGE", key, "0", stop, "WITHSCORES"};
    size_t lens[5];
    snprintf(stop, sizeof(stop), "%lld", (long long)max - 1);
    for (int i = 0; i < 5; i++) lens[i] = strlen(argv[i]);
    return rcluster_append(ps->rc, key, 5, argv, lens);
}

/* A reply to HMGET last_ms lm: the two times, 0 when missing. */
static int profile_meta_from(const redisReply *r, int64_t *last_ms, int64_t *lm_ms) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return AISLE_EFORMAT;
    *last_ms = r->element[0]->type == REDIS_REPLY_STRING ? strtoll(r->element[0]->str, NULL, 10)
                                                         : 0;
    *lm_ms = r->element[1]->type == REDIS_REPLY_STRING ? strtoll(r->element[1]->str, NULL, 10)
                                                       : 0;
    return AISLE_OK;
}

int profile_get(profile_store *ps, const char *user_id, int64_t now_ms,
                size_t max_items, profile *p, char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    const profile_config *cfg = &ps->cfg;
    size_t items = max_items == 0 ? 1
                   : max_items < (size_t)cfg->max_items ? max_items : (size_t)cfg->max_items;
    /* Each sorted set read, with its bound (sets may hold up to
     * PROFILE_TRIM_EVERY members past it between trims), how its scores
     * read, and where it goes. */
    const struct {
        int key;
        size_t max;
        profile_scale scale;
        profile_entry **out;
        size_t *n;
    } sets[] = {
        {PROFILE_KEY_ITEMS, items, PROFILE_AS_LINEAR, &p->items, &p->n_items},
        {PROFILE_KEY_CREATORS, (size_t)cfg->max_creators, PROFILE_AS_LINEAR, &p->creators,
         &p->n_creators},
        {PROFILE_KEY_DISMISSED, items, PROFILE_AS_LINEAR, &p->dismissed, &p->n_dismissed},
        {PROFILE_KEY_CATEGORIES, (size_t)cfg->max_categories, PROFILE_AS_LINEAR,
         &p->categories, &p->n_categories},
        {PROFILE_KEY_BRANDS, (size_t)cfg->max_categories, PROFILE_AS_LINEAR, &p->brands,
         &p->n_brands},
        {PROFILE_KEY_SEEN, (size_t)cfg->max_seen, PROFILE_AS_TIME, &p->seen, &p->n_seen},
        {PROFILE_KEY_PURCHASED, (size_t)cfg->max_purchased, PROFILE_AS_TIME, &p->purchased,
         &p->n_purchased},
    };
    const size_t n_sets = sizeof(sets) / sizeof(sets[0]);
    const char *hmget[4];
    size_t hlens[4], nr;
    int64_t lm_ms = 0;
    redisReply **r;
    int rc;

    memset(p, 0, sizeof(*p));
    if ((rc = profile_check_id("user_id", user_id, 1, err, errlen)) != AISLE_OK) return rc;
    profile_keys(user_id, keys);
    hmget[0] = "HMGET";
    hmget[1] = keys[PROFILE_KEY_META];
    hmget[2] = "last_ms";
    hmget[3] = "lm";
    for (int i = 0; i < 4; i++) hlens[i] = strlen(hmget[i]);
    if (rcluster_append(ps->rc, keys[PROFILE_KEY_META], 4, hmget, hlens)) goto oom;
    for (size_t i = 0; i < n_sets; i++) {
        size_t max = sets[i].max ? sets[i].max : 1;
        if (max > (size_t)INT32_MAX) max = INT32_MAX;
        if (profile_queue_range(ps, keys[sets[i].key], max)) goto oom;
    }
    if ((rc = profile_exec(ps, "reading a profile", &r, &nr, err, errlen)) != 0) return rc;
    if (profile_meta_from(r[0], &p->last_active_ms, &lm_ms) != AISLE_OK) {
        rc = profile_bad_reply(r[0], "reading a profile", err, errlen);
        goto fail;
    }
    for (size_t i = 0; i < n_sets; i++) {
        const redisReply *ri = r[1 + i];
        if (ri->type != REDIS_REPLY_ARRAY) {
            rc = profile_bad_reply(ri, "reading a profile", err, errlen);
            goto fail;
        }
        if ((rc = profile_entries_from(ps, ri, now_ms, sets[i].scale, lm_ms, sets[i].out,
                                       sets[i].n)) != 0) {
            status_fmt(err, errlen, "reading a profile: %s", status_str(rc));
            goto fail;
        }
    }
    return AISLE_OK;
oom:
    rcluster_reset(ps->rc);
    rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
fail:
    profile_clear(p);
    return rc;
}

/* Queues one command whose key is argv[1], and returns its single reply in
 * *out, or an error code. */
static int profile_one(profile_store *ps, const char *what, int argc, const char **argv,
                       redisReply **out, char *err, size_t errlen) {
    size_t lens[PROFILE_NKEYS + 1], nr;
    redisReply **r;
    int rc;
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    if (rcluster_append(ps->rc, argv[1], argc, argv, lens)) {
        rcluster_reset(ps->rc);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    if ((rc = profile_exec(ps, what, &r, &nr, err, errlen)) != 0) return rc;
    *out = r[0];
    return 0;
}

int profile_delete(profile_store *ps, const char *user_id, char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX], nkeys[8], keep[24];
    const char *argv[4 + PROFILE_NKEYS] = {"EVALSHA", NULL, nkeys};
    size_t lens[4 + PROFILE_NKEYS], nr;
    redisReply **r;
    int rc;
    if ((rc = profile_check_id("user_id", user_id, 1, err, errlen)) != AISLE_OK) return rc;
    if ((rc = rcluster_connect(ps->rc, err, errlen)) != AISLE_OK) return rc;
    profile_keys(user_id, keys);
    snprintf(nkeys, sizeof(nkeys), "%d", PROFILE_NKEYS);
    snprintf(keep, sizeof(keep), "%.0f", ceil(ps->cfg.erasure_keep_s));
    argv[1] = rcluster_sha(ps->rc, PROFILE_SCRIPT_DELETE);
    for (int i = 0; i < PROFILE_NKEYS; i++) argv[3 + i] = keys[i];
    argv[3 + PROFILE_NKEYS] = keep;
    for (int i = 0; i < 4 + PROFILE_NKEYS; i++) lens[i] = strlen(argv[i]);
    if (rcluster_append(ps->rc, keys[0], 4 + PROFILE_NKEYS, argv, lens)) {
        rcluster_reset(ps->rc);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    if ((rc = profile_exec(ps, "deleting a profile", &r, &nr, err, errlen)) != AISLE_OK)
        return rc;
    if (r[0]->type != REDIS_REPLY_INTEGER)
        return profile_bad_reply(r[0], "deleting a profile", err, errlen);
    return r[0]->integer > 0;
}

/* The n heaviest members of the log-space set key as of now_ms (what
 * names the read in errors). */
static int profile_top(profile_store *ps, const char *key, const char *what, int64_t now_ms,
                       size_t n, profile_entry **out, char *err, size_t errlen) {
    char stop[24];
    const char *argv[5] = {"ZREVRANGE", key, "0", stop, "WITHSCORES"};
    redisReply *r = NULL;
    size_t got;
    int rc;
    *out = NULL;
    if (n == 0) return 0;
    snprintf(stop, sizeof(stop), "%lld", (long long)n - 1);
    if ((rc = profile_one(ps, what, 5, argv, &r, err, errlen)) != 0) return rc;
    if (r->type != REDIS_REPLY_ARRAY) return profile_bad_reply(r, what, err, errlen);
    if ((rc = profile_entries_from(ps, r, now_ms, PROFILE_AS_LOG, 0, out, &got)) != 0)
        return status_fail(rc, err, errlen, "%s: %s", what, status_str(rc));
    return (int)got;
}

int profile_popular(profile_store *ps, int64_t now_ms, size_t n,
                    profile_entry **out, char *err, size_t errlen) {
    return profile_top(ps, PROFILE_POPULAR_KEY, "reading popular items", now_ms, n, out, err,
                       errlen);
}

int profile_trending(profile_store *ps, const char *category, int64_t now_ms, size_t n,
                     profile_entry **out, char *err, size_t errlen) {
    char key[PROFILE_TRENDING_KEY_MAX];
    *out = NULL;
    if (!category || !*category || strlen(category) > PROFILE_MAX_CATEGORY)
        return status_fail(AISLE_EINVAL, err, errlen, "a trending category must have 1..%d bytes",
                           PROFILE_MAX_CATEGORY);
    profile_trending_key(category, key);
    return profile_top(ps, key, "reading trending items", now_ms, n, out, err, errlen);
}

int profile_trending_categories(profile_store *ps, int64_t now_ms, size_t n,
                                profile_entry **out, char *err, size_t errlen) {
    return profile_top(ps, PROFILE_TRENDING_CATEGORIES_KEY, "reading trending categories",
                       now_ms, n, out, err, errlen);
}

int profile_ping(profile_store *ps, char *err, size_t errlen) {
    const char *argv[1] = {"PING"};
    size_t len[1] = {4}, nr;
    redisReply **r;
    int rc;
    if (rcluster_append(ps->rc, "ping", 1, argv, len) != 0)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = profile_exec(ps, "ping", &r, &nr, err, errlen)) != AISLE_OK) return rc;
    rc = nr == 1 && r[0]->type != REDIS_REPLY_ERROR ? AISLE_OK
                                                     : profile_bad_reply(r[0], "ping", err, errlen);
    rcluster_reset(ps->rc);
    return rc;
}
