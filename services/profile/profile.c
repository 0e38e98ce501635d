/* profile: Redis-backed user profiles (see profile.h for the model). */
#include "services/profile/profile.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/clock.h"
#include "services/base/grow.h"
#include "services/base/log.h"
#include "services/base/strmap.h"
#include "services/profile/numfmt.h"
#include "services/profile/precord.h"
#include "services/profile/rcluster.h"

/* A key holds the user id escaped (at most three bytes a byte) and a name. */
#define PROFILE_KEY_MAX (3 * PROFILE_MAX_ID + 32)
#define PROFILE_POPULAR_KEY "aisle:popular"
#define PROFILE_STR_(x) #x
#define PROFILE_STR(x) PROFILE_STR_(x)

/* Runs of events, one (user, origin) each, applied atomically: one call
 * carries as many runs as share a slot (on a single node, many users).
 * A user is two keys: the hash `profile` (every member, prefixed by its
 * kind, and the user's meta fields; see profile.h) and the sorted set
 * `events` (remembered event ids). A profile the module wrote as a record
 * (precord.h) is first rewritten as that hash (unrecord). The worker has already summed the run:
 * each field the run touches comes once, a decayed one with its weights
 * summed against the run's first time t_ref, a time (seen, purchased) with
 * the latest; so the script's work per event is only its checks, and per
 * field one add. A run reads its meta and fields with one HMGET and writes
 * them with one HSET; each event costs one ZADD NX of its id. A new
 * profile gets its meta fields first (erased, -1 when the user was never
 * erased, then lm n m last_ms and the mark): a small hash is a listpack,
 * searched from the front, so the lookups every run makes find them within
 * a few entries instead of past every member, and "erased" no longer
 * misses (a miss scans the whole hash).
 * For each event: it is a duplicate if its offset is at or below the
 * origin's mark, if it was produced at or before the user's erasure mark
 * ("erased", set by profile_delete), or if its id is remembered (ZADD NX
 * says so). The sums hold only when every event of the run is new, so a
 * run with a duplicate is not applied: its new ids are removed again and
 * its new events are answered '2', for the worker to send again without
 * the duplicates (a replay costs a second round trip, the common case
 * none). Weights are linear against the user's landmark lm (the first
 * run's t_ref): the run's sums are multiplied by 2^((t_ref−lm)/H), and a
 * reader multiplies by 2^(−(now−lm)/H); when a run's latest time t_max runs
 * more than 64 half-lives past lm, the user's decayed fields are rescaled
 * once to a landmark at t_ref (the worker keeps a run within 32 half-lives),
 * so values stay far from overflow. The count of member fields is kept in
 * "m"; when it passes the sum of the kinds' bounds by a quarter (16 at
 * least), every kind over its bound is trimmed, lightest (oldest) first:
 * trimming reads the whole hash, so it is amortized over that many new
 * members, and readers return at most the bound. The ids are trimmed to
 * their window each time the count of applied events passes a multiple of
 * trim_every. The TTL is refreshed and never cuts the erasure mark's keep_s
 * short. Calls take at most 4000 arguments (Lua's stack), so long lists go
 * in pieces. Returns one character per event, in order: '1' applied, '0'
 * duplicate or erased, '2' new but held back with its run, or, for every
 * event of a run whose profile it cannot read, the module's letter for
 * the check that failed (PRECORD_REFUSED_*).
 * KEYS: per run, profile events
 * ARGV: max_items max_creators max_categories max_seen max_purchased
 *       window_count window_cutoff_ms now_ms ttl_s keep_s half_life_ms
 *       trim_every, then per run: mark field ("o:topic:partition", or ""),
 *       n, nf, t_ref, t_max, then n events of event_id offset produced_ms,
 *       then nf fields of name value: "i:ID", "d:ID" (dismissed), "c:ID",
 *       "g:NAME", "b:NAME" with a summed weight, "s:ID" (seen), "p:ID"
 *       (purchased) and "f:ID" (followed creator) with a time. */
static const char profile_apply_lua[] =
    "local tonumber, rcall = tonumber, redis.call\n"
    "local H, T, now = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[8]\n"
    "local bound = {i = tonumber(ARGV[1]), d = tonumber(ARGV[1]), c = tonumber(ARGV[2]),\n"
    "               g = tonumber(ARGV[3]), b = tonumber(ARGV[3]), s = tonumber(ARGV[4]),\n"
    "               p = tonumber(ARGV[5]), f = tonumber(ARGV[2])}\n"
    "local total = 0\n"
    "for _, v in pairs(bound) do total = total + v end\n"
    "local high = total + math.max(16, math.floor(total / 4))\n"
    "local decayed = {i = true, d = true, c = true, g = true, b = true}\n"
    "local P\n"
    "local function num(x) return string.format('%.17g', x) end\n"
    "local function call(cmd, key, list)\n"
    "  if #list <= 4000 then return rcall(cmd, key, unpack(list)) end\n"
    "  local r = {}\n"
    "  for s = 1, #list, 4000 do\n"
    "    local part = rcall(cmd, key, unpack(list, s, math.min(#list, s + 3999)))\n"
    "    if type(part) == 'table' then for j = 1, #part do r[#r + 1] = part[j] end end\n"
    "  end\n"
    "  return r\n"
    "end\n"
    "local function rebase(by)\n"
    "  local all, h = rcall('HGETALL', P), {}\n"
    "  for j = 1, #all, 2 do\n"
    "    local f = all[j]\n"
    "    if decayed[f:sub(1, 1)] and f:byte(2) == 58 then\n"
    "      h[#h + 1] = f; h[#h + 1] = num(all[j + 1] * 2 ^ -by)\n"
    "    end\n"
    "  end\n"
    "  if #h > 0 then call('HSET', P, h) end\n"
    "end\n"
    /* A profile the module wrote is a record (precord.h): rewritten as the
     * hash it stands for, its expiry kept, so the script may take over
     * from the module at any call (a Redis restarted without it). A record
     * that does not parse, or a key of another type, is the run's verdict
     * (the module's letters), the key left as it was: not a guess. */
    "local function unrecord()\n"
    "  if rcall('TYPE', P).ok ~= 'string' then return '" PRECORD_REFUSED_TYPE "' end\n"
    "  local s, ttl = rcall('GET', P), rcall('PTTL', P)\n"
    "  if #s < 56 or s:sub(1, 5) ~= 'AIPR\\1' then return '" PRECORD_REFUSED_RECORD "' end\n"
    "  local count, marks, heap = struct.unpack('<I4I4I4', s, 9)\n"
    "  local last, erased, lm, cnt = struct.unpack('<dddd', s, 25)\n"
    "  local base = 57 + 16 * count\n"
    "  if #s ~= base - 1 + heap then return '" PRECORD_REFUSED_RECORD "' end\n"
    "  local h = {'erased', num(erased), 'n', num(cnt), 'm', count - marks, 'last_ms', num(last)}\n"
    "  if lm == lm then h[#h + 1] = 'lm'; h[#h + 1] = num(lm) end\n"
    "  for i = 0, count - 1 do\n"
    "    local off, len, kind, _, v = struct.unpack('<I4I2BBd', s, 57 + 16 * i)\n"
    "    if off + len > heap or kind == 0 then return '" PRECORD_REFUSED_RECORD "' end\n"
    "    h[#h + 1] = string.char(kind) .. ':' .. s:sub(base + off, base + off + len - 1)\n"
    "    h[#h + 1] = num(v)\n"
    "  end\n"
    "  rcall('DEL', P)\n"
    "  call('HSET', P, h)\n"
    "  if ttl > 0 then rcall('PEXPIRE', P, ttl) end\n"
    "end\n"
    "local function lighter(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end\n"
    "local function trim()\n"
    "  local all, by, del, m = rcall('HGETALL', P), {}, {}, 0\n"
    "  for k in pairs(bound) do by[k] = {} end\n"
    "  for j = 1, #all, 2 do\n"
    "    local l = all[j]:byte(2) == 58 and by[all[j]:sub(1, 1)]\n"
    "    if l then l[#l + 1] = {tonumber(all[j + 1]), all[j]} end\n"
    "  end\n"
    "  for k, l in pairs(by) do\n"
    "    if #l > bound[k] then\n"
    "      table.sort(l, lighter)\n"
    "      for j = 1, #l - bound[k] do del[#del + 1] = l[j][2] end\n"
    "    end\n"
    "    m = m + math.min(#l, bound[k])\n"
    "  end\n"
    "  call('HDEL', P, del)\n"
    "  rcall('HSET', P, 'm', m)\n"
    "end\n"
    /* The checks of a run's events: the verdicts, and the ids newly added
     * (removed again if the run is held back). */
    "local function check(E, e0, e1, done, erased)\n"
    "  local v, added, top = {}, {}, done\n"
    "  for i = e0, e1, 3 do\n"
    "    local off = tonumber(ARGV[i + 1])\n"
    "    if (off >= 0 and off <= done) or tonumber(ARGV[i + 2]) <= erased or\n"
    "       rcall('ZADD', E, 'NX', now, ARGV[i]) == 0 then\n"
    "      v[#v + 1] = '0'\n"
    "    else\n"
    "      v[#v + 1] = '1'; added[#added + 1] = ARGV[i]\n"
    "      if off > top then top = off end\n"
    "    end\n"
    "  end\n"
    "  return table.concat(v), added, top\n"
    "end\n"
    "local out, a, b = {}, 13, 0\n"
    "while a <= #ARGV do\n"
    "  local E, mark, n, nf = KEYS[b + 2], ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "  local tref, tmax = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  local e0, f0 = a + 5, a + 5 + 3 * n\n"
    "  local q = {'last_ms', 'erased', 'lm', 'n', 'm', mark == '' and 'n' or mark}\n"
    "  P = KEYS[b + 1]\n"
    "  for i = f0, f0 + 2 * nf - 1, 2 do q[#q + 1] = ARGV[i] end\n"
    /* A record answers HMGET with WRONGTYPE: caught, at no cost when the
     * profile is a hash. */
    "  local ok, r = pcall(call, 'HMGET', P, q)\n"
    "  local bad, last, erased, lm, cnt0, m0, done, v, added, top\n"
    "  if not ok then\n"
    "    if not tostring(r.err or r):find('WRONGTYPE') then error(r) end\n"
    "    bad = unrecord()\n"
    "    if not bad then r = call('HMGET', P, q) end\n"
    "  end\n"
    /* A run whose profile cannot be read is refused whole, before anything
     * of it is written: a value that is not a number, or an event-id key
     * of another type (its first ZADD fails; no id was added before). */
    "  for k = 1, bad and 0 or #q do\n"
    "    if r[k] and not tonumber(r[k]) then bad = '" PRECORD_REFUSED_HASH "' end\n"
    "  end\n"
    "  if not bad then\n"
    "    last, erased = tonumber(r[1] or '0'), tonumber(r[2] or '-1')\n"
    "    lm, cnt0, m0 = tonumber(r[3] or ''), tonumber(r[4] or '0'), tonumber(r[5] or '0')\n"
    "    done = mark ~= '' and tonumber(r[6] or '-1') or -1\n"
    "    ok, v, added, top = pcall(check, E, e0, f0 - 1, done, erased)\n"
    "    if not ok then\n"
    "      if not tostring(v.err or v):find('WRONGTYPE') then error(v) end\n"
    "      bad = '" PRECORD_REFUSED_TYPE "'\n"
    "    end\n"
    "  end\n"
    "  if bad then\n"
    "    out[#out + 1] = string.rep(bad, n)\n"
    "  elseif #added < n then\n"
    "    if #added > 0 then call('ZREM', E, added) end\n"
    "    out[#out + 1] = (v:gsub('1', '2'))\n"
    "  else\n"
    "    local fm, m, cnt = {}, m0, cnt0 + n\n"
    "    out[#out + 1] = v\n"
    "    if not lm then lm = tref\n"
    "    elseif (tmax - lm) / H > 64 then\n"
    "      local by = (tref - lm) / H\n"
    "      rebase(by)\n"
    "      for k = 7, #q do\n"
    "        if r[k] and decayed[q[k]:sub(1, 1)] then r[k] = r[k] * 2 ^ -by end\n"
    "      end\n"
    "      lm = tref\n"
    "    end\n"
    "    local f = 2 ^ ((tref - lm) / H)\n"
    "    for k = 7, #q do\n"
    "      local fld, x, cur = q[k], ARGV[f0 + 2 * (k - 7) + 1], r[k]\n"
    "      if not cur then m = m + 1 end\n"
    "      if not decayed[fld:sub(1, 1)] then\n"
    "        if not cur or tonumber(cur) < tonumber(x) then fm[#fm + 1] = fld; fm[#fm + 1] = x end\n"
    "      else\n"
    "        fm[#fm + 1] = fld; fm[#fm + 1] = num((cur or 0) + x * f)\n"
    "      end\n"
    "    end\n"
    /* A new profile's meta fields go first, as the module places them. */
    "    local h = r[3] and {} or {'erased', r[2] or '-1'}\n"
    "    if lm ~= tonumber(r[3] or '') then h[#h + 1] = 'lm'; h[#h + 1] = num(lm) end\n"
    "    h[#h + 1] = 'n'; h[#h + 1] = cnt; h[#h + 1] = 'm'; h[#h + 1] = m\n"
    "    if tmax > last then h[#h + 1] = 'last_ms'; h[#h + 1] = num(tmax) end\n"
    "    if top > done then h[#h + 1] = mark; h[#h + 1] = num(top) end\n"
    "    for j = 1, #fm do h[#h + 1] = fm[j] end\n"
    "    call('HSET', P, h)\n"
    "    if m > high then trim() end\n"
    "    if math.floor(cnt / T) > math.floor(cnt0 / T) then\n"
    "      rcall('ZREMRANGEBYSCORE', E, '-inf', '(' .. ARGV[7])\n"
    "      local z = rcall('ZCARD', E)\n"
    "      if z > tonumber(ARGV[6]) then rcall('ZREMRANGEBYRANK', E, 0, z - ARGV[6] - 1) end\n"
    "    end\n"
    "    if tonumber(ARGV[9]) > 0 then\n"
    "      local keep = math.ceil((erased + ARGV[10] * 1000 - ARGV[8]) / 1000)\n"
    "      rcall('EXPIRE', E, ARGV[9])\n"
    "      if erased < 0 or keep <= tonumber(ARGV[9]) then keep = ARGV[9] end\n"
    "      rcall('EXPIRE', P, keep)\n"
    "    end\n"
    "  end\n"
    "  a, b = f0 + 2 * nf, b + 2\n"
    "end\n"
    "return table.concat(out)\n";

/* Popularity scores are kept in log space: a member's score is ln(decayed
 * weight) + (t−L)/H·ln 2, so adding weight is a log-sum-exp and nothing
 * overflows however far time runs from the landmark. Negative feedback
 * (DISMISS) counts for nothing here. */
/* Adds to one popularity list, bounded to the heaviest `max` members. The
 * worker has summed the batch per member, so each comes once: one ZMSCORE
 * reads them all and one ZADD writes them (the log-sum-exp in between),
 * whatever their number; Lua's stack takes 4000 arguments, so long lists
 * go in pieces.
 * KEYS: the list  ARGV: max, then pairs of member log_weight */
static const char profile_popular_lua[] =
    "local K, rcall = KEYS[1], redis.call\n"
    "for s = 2, #ARGV, 3998 do\n"
    "  local e, names = math.min(#ARGV, s + 3997), {}\n"
    "  for i = s, e, 2 do names[#names + 1] = ARGV[i] end\n"
    "  local cur, z = rcall('ZMSCORE', K, unpack(names)), {}\n"
    "  for j = 1, #names do\n"
    "    local a, c = tonumber(ARGV[s + 2 * j - 1]), cur[j]\n"
    "    if c then\n"
    "      c = tonumber(c)\n"
    "      a = math.max(c, a) + math.log(1 + math.exp(-math.abs(c - a)))\n"
    "    end\n"
    "    z[#z + 1] = string.format('%.17g', a); z[#z + 1] = names[j]\n"
    "  end\n"
    "  rcall('ZADD', K, unpack(z))\n"
    "end\n"
    "local n, max = rcall('ZCARD', K), tonumber(ARGV[1])\n"
    "if n > max then rcall('ZREMRANGEBYRANK', K, 0, n - max - 1) end\n"
    "return 1\n";

#define PROFILE_POPULAR_MAX 10000
#define PROFILE_PENDING_MAX 50000 /* pending pairs written however young */

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

/* Erasure: both keys of the profile go, and the profile key keeps only
 * the erasure mark, as a hash whatever the profile's layout was (the
 * module turns it into a record on its next write; a record with no
 * fields, PRECORD_HEAD bytes, is such a mark and counts as nothing), the time (Redis's clock, the one clock every writer
 * shares), for keep_s, the log's retention: a replay of what was produced
 * before cannot bring the profile back. The mark lives in the hash every
 * call already names, so a slot migration never finds a call's keys half
 * moved. Returns the number of keys that held something of the profile.
 * KEYS: as for apply (profile first)  ARGV: keep_s */
static const char profile_delete_lua[] =
    "local t = redis.call('TIME')\n"
    "local type = redis.call('TYPE', KEYS[1]).ok\n"
    "local only_mark = (type == 'hash' and redis.call('HLEN', KEYS[1]) == 1 and\n"
    "                   redis.call('HEXISTS', KEYS[1], 'erased') == 1) or\n"
    "                  (type == 'string' and redis.call('STRLEN', KEYS[1]) == " PROFILE_STR(PRECORD_HEAD) ")\n"
    "local n = redis.call('DEL', unpack(KEYS))\n"
    "if only_mark then n = n - 1 end\n"
    "redis.call('HSET', KEYS[1], 'erased',\n"
    "           string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000)))\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "return n\n";

enum { PROFILE_SCRIPT_APPLY, PROFILE_SCRIPT_POPULAR, PROFILE_SCRIPT_DELETE, PROFILE_NSCRIPTS };

/* One (list, item) pair of popularity to add: category "" for the global
 * list, else that category's trending list. */
typedef struct profile_pop {
    const char *category; /* "" when unknown */
    const char *item;     /* the member: an item, or the category itself */
    double log_w;
} profile_pop;

/* Popularity summed in the store until it is written (profile_flush): the
 * pairs, each owning one block "category\0item\0" that both names point
 * into, and where each pair is by that key. */
typedef struct profile_pending {
    profile_pop *pop;
    size_t n, cap;
    strmap at;
    int64_t since_ms; /* monotonic time of the oldest pair */
} profile_pending;

/* A round of apply calls queued or in flight, and how its replies map back
 * to events: order holds the events' indices by run, run_start[k] where
 * run k begins in it, call_start[c] the first run of call c. */
typedef struct profile_round {
    size_t *order, *run_start, *call_start; /* owned */
    size_t n_calls;
} profile_round;

struct profile_store {
    profile_config cfg;
    rcluster *rc;
    int module; /* writing with AISLE.APPLY (cfg.use_module, until refused) */
    /* Reading profiles with HGETALL first: the last profile read was a hash
     * (the Lua script's layout), so most likely the next one is too. */
    int hash_first;
    profile_pending pend;
    profile_round flight; /* sent by profile_apply_send, read by _finish */
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
    cfg->use_module = 1;
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
    ps->module = cfg->use_module;
    *out = ps;
    return AISLE_OK;
}

/* Drops every pending pair. */
static void profile_pending_clear(profile_pending *p) {
    for (size_t i = 0; i < p->n; i++) free((char *)p->pop[i].category);
    strmap_free(&p->at);
    strmap_init(&p->at);
    p->n = 0;
}

static void profile_round_free(profile_round *rd) {
    free(rd->order);
    free(rd->run_start);
    free(rd->call_start);
    memset(rd, 0, sizeof(*rd));
}

void profile_store_close(profile_store *ps) {
    if (!ps) return;
    profile_round_free(&ps->flight);
    profile_pending_clear(&ps->pend);
    free(ps->pend.pop);
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

enum { PROFILE_KEY_PROFILE, PROFILE_KEY_EVENTS, PROFILE_NKEYS };

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
    static const char *names[PROFILE_NKEYS] = {"profile", "events"};
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
    if (a == b) return 0; /* the worker shares one text among a partition's events */
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
#define PROFILE_RUN_ARGS 5    /* per run: mark n nf t_ref t_max */
#define PROFILE_EVENT_ARGS 15 /* per event at most: 3, and 2 for each field it touches */
#define PROFILE_RUN_SPAN 32   /* half-lives a run's times may spread over */

/* Argument storage for one script call: numbers are formatted into `num`,
 * 32 bytes a slot, keys into `keys`, PROFILE_NKEYS a run, and field names
 * ("i:ID", ...) into `text`, sized by profile_text_bytes for the batch. */
typedef struct profile_args {
    const char **argv;
    size_t *lens;
    char (*num)[32];
    char (*keys)[PROFILE_KEY_MAX];
    char *text;
    size_t text_used, text_cap;
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

/* A weight, exactly (services/profile/numfmt.h). */
static void profile_arg_num(profile_args *a, double v) {
    char *slot = a->num[a->n_num++];
    profile_arg_len(a, slot, numfmt_double(slot, v));
}

/* A field name, kind ':' name, or "" when name is empty or NULL. */
static void profile_arg_field(profile_args *a, char kind, const char *name) {
    size_t len = name ? strlen(name) : 0;
    char *f = a->text + a->text_used;
    if (len == 0) {
        profile_arg_len(a, "", 0);
        return;
    }
    assert(a->text_used + len + 3 <= a->text_cap);
    f[0] = kind;
    f[1] = ':';
    memcpy(f + 2, name, len + 1);
    a->text_used += len + 3;
    profile_arg_len(a, f, len + 2);
}

/* Bytes of field names the event or its run's mark can take (see
 * profile_event_sums and profile_queue_call). */
static size_t profile_text_bytes(const profile_event *e) {
    const Aisle__V1__Signal *s = e->sig;
    size_t item = s->item_id ? strlen(s->item_id) : 0;
    return 3 * (item + 3) + (s->creator_id ? strlen(s->creator_id) : 0) +
           (e->category ? strlen(e->category) : 0) + (e->brand ? strlen(e->brand) : 0) +
           (e->origin ? strlen(e->origin) : 0) + 4 * 3;
}

/* What a run adds to one field of the profile hash. */
typedef struct profile_sum {
    char kind;        /* the field's prefix letter (see profile.h) */
    const char *name; /* borrowed from the event */
    double v;         /* a weight against the run's t_ref, or a time (s, p) */
} profile_sum;

#define PROFILE_EVENT_FIELDS 6 /* the most fields one event touches */

static int profile_sum_is_time(char kind) { return kind == 's' || kind == 'p' || kind == 'f'; }

static profile_sum profile_sum_of(char kind, const char *name, double v) {
    return (profile_sum){.kind = kind, .name = name, .v = v};
}

/* The fields event e touches, into out (PROFILE_EVENT_FIELDS at most), with
 * its weights decayed against t_ref: a follow touches only its creator, a
 * dismissal only its dismissed item, any other item event its item, seen
 * (purchased), category and brand, and, with a quarter of its weight, its
 * creator, about whom it says a little. A follow also marks its creator
 * followed (f), by its time, which the creator's decayed weight cannot
 * tell apart from engagement. Returns how many. */
static size_t profile_event_sums(const profile_store *ps, const profile_event *e, int64_t t_ref,
                                 profile_sum *out) {
    const Aisle__V1__Signal *s = e->sig;
    int follow = s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    int dismiss = s->kind == AISLE__V1__SIGNAL_KIND__DISMISS;
    int has_item = s->item_id && *s->item_id, item = !follow && !dismiss && has_item;
    double w = profile_event_weight(ps, s) *
               exp2((double)(s->ts_ms - t_ref) / (ps->cfg.half_life_s * 1000.0));
    double t = (double)s->ts_ms;
    size_t n = 0;
    if (!follow && has_item) out[n++] = profile_sum_of(dismiss ? 'd' : 'i', s->item_id, w);
    if (item) out[n++] = profile_sum_of('s', s->item_id, t);
    if (item && s->kind == AISLE__V1__SIGNAL_KIND__PURCHASE)
        out[n++] = profile_sum_of('p', s->item_id, t);
    if (!dismiss && s->creator_id && *s->creator_id)
        out[n++] = profile_sum_of('c', s->creator_id, follow ? w : w * 0.25);
    if (follow && s->creator_id && *s->creator_id) out[n++] = profile_sum_of('f', s->creator_id, t);
    if (item && e->category && *e->category) out[n++] = profile_sum_of('g', e->category, w);
    if (item && e->brand && *e->brand) out[n++] = profile_sum_of('b', e->brand, w);
    assert(n <= PROFILE_EVENT_FIELDS);
    return n;
}

static int profile_cmp_sum(const void *pa, const void *pb) {
    const profile_sum *a = pa, *b = pb;
    return a->kind != b->kind ? a->kind - b->kind : strcmp(a->name, b->name);
}

/* Sums the fields of the run's events order[i0..i1) into sums (room for
 * PROFILE_EVENT_FIELDS an event), one entry a field: weights added, times
 * the latest. Returns how many fields. */
static size_t profile_run_sums(const profile_store *ps, const profile_event *ev,
                               const size_t *order, size_t i0, size_t i1, int64_t t_ref,
                               profile_sum *sums) {
    size_t n = 0, m = 0;
    for (size_t i = i0; i < i1; i++) n += profile_event_sums(ps, &ev[order[i]], t_ref, sums + n);
    if (n == 0) return 0;
    qsort(sums, n, sizeof(*sums), profile_cmp_sum);
    for (size_t i = 1; i < n; i++) {
        profile_sum *s = &sums[m];
        if (profile_cmp_sum(&sums[i], s) != 0)
            sums[++m] = sums[i];
        else if (!profile_sum_is_time(s->kind))
            s->v += sums[i].v;
        else if (sums[i].v > s->v)
            s->v = sums[i].v;
    }
    return m + 1;
}

/* Queues one script call for runs k0..k1-1; run k holds the events
 * order[start[k]..start[k+1]-1] (one user, one origin, log order), summed
 * per field here (see the script). */
static int profile_queue_call(profile_store *ps, const profile_event *ev, const size_t *order,
                              const size_t *start, size_t k0, size_t k1, profile_sum *sums,
                              profile_args *a) {
    const profile_config *cfg = &ps->cfg;
    int64_t now = clock_wall_ms();
    char nkeys[16];
    a->argc = a->n_num = 0;
    a->text_used = 0;
    snprintf(nkeys, sizeof(nkeys), "%zu", PROFILE_NKEYS * (k1 - k0));
    if (ps->module) {
        profile_arg(a, "AISLE.APPLY");
    } else {
        profile_arg(a, "EVALSHA");
        profile_arg(a, rcluster_sha(ps->rc, PROFILE_SCRIPT_APPLY));
    }
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
        int64_t t_ref = INT64_MAX, t_max = INT64_MIN;
        size_t nf;
        for (size_t i = start[k]; i < start[k + 1]; i++) {
            int64_t t = ev[order[i]].sig->ts_ms;
            if (t < t_ref) t_ref = t;
            if (t > t_max) t_max = t;
        }
        nf = profile_run_sums(ps, ev, order, start[k], start[k + 1], t_ref, sums);
        profile_arg_field(a, 'o', ev[order[start[k]]].origin);
        profile_arg_int(a, (int64_t)(start[k + 1] - start[k]));
        profile_arg_int(a, (int64_t)nf);
        profile_arg_int(a, t_ref);
        profile_arg_int(a, t_max);
        for (size_t i = start[k]; i < start[k + 1]; i++) {
            const profile_event *e = &ev[order[i]];
            profile_arg(a, e->sig->event_id);
            profile_arg_int(a, e->origin ? e->offset : -1);
            profile_arg_int(a, e->produced_ms > 0 ? e->produced_ms : e->sig->ts_ms);
        }
        for (size_t j = 0; j < nf; j++) {
            profile_arg_field(a, sums[j].kind, sums[j].name);
            profile_arg_num(a, sums[j].v);
        }
    }
    return rcluster_append(ps->rc, a->keys[0], a->argc, a->argv, a->lens);
}

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

/* Queues one call of the popularity script adding pop[0..n) to key,
 * bounded to max members; argv, lens and num have room for n pairs. */
static int profile_queue_bump(profile_store *ps, const char *key, int max, const profile_pop *pop,
                              size_t n, const char **argv, size_t *lens, char (*num)[32]) {
    int argc = 0;
    if (ps->module) {
        argv[argc++] = "AISLE.POPULAR";
    } else {
        argv[argc++] = "EVALSHA";
        argv[argc++] = rcluster_sha(ps->rc, PROFILE_SCRIPT_POPULAR);
    }
    argv[argc++] = "1";
    argv[argc++] = key;
    snprintf(num[n], 32, "%d", max);
    argv[argc++] = num[n];
    for (size_t i = 0; i < n; i++) {
        numfmt_double(num[i], pop[i].log_w);
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

/* Whether a node refused a module command as unknown (no module there):
 * the store then writes with the scripts for good, and the calls are sent
 * again. Nothing of a refused command ran; calls that another node
 * took read as duplicates when resent. */
static int profile_module_refused(profile_store *ps, redisReply **r, size_t n) {
    static const char unknown[] = "ERR unknown command";
    if (!ps->module) return 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR && strncmp(r[i]->str, unknown, sizeof(unknown) - 1) == 0) {
            ps->module = 0;
            log_warn("profile", "redis has no AISLE.APPLY (aisle_redis.so not loaded): "
                                "writing with the Lua script");
            return 1;
        }
    }
    return 0;
}

/* Adds log_w to the pending pair (category, item), a new one when it is
 * not there yet. Returns AISLE_OK or AISLE_ENOMEM (nothing added). */
static int profile_pending_add(profile_pending *p, const char *category, const char *item,
                               double log_w) {
    size_t cl = strlen(category), il = strlen(item), at;
    /* The key "category\0item" is looked up from the stack where it fits:
     * most events add to a pair already there, which then costs no
     * allocation. block: the heap copy a new pair owns, or freed here. */
    char stack[2 * PROFILE_MAX_ID + 2], *key = stack, *block = NULL;
    if (cl + il + 2 > sizeof(stack) && !(key = block = malloc(cl + il + 2))) return AISLE_ENOMEM;
    memcpy(key, category, cl + 1);
    memcpy(key + cl + 1, item, il + 1);
    if (strmap_get(&p->at, key, cl + il + 1, &at) == AISLE_OK) {
        p->pop[at].log_w = profile_logadd(p->pop[at].log_w, log_w);
        free(block);
        return AISLE_OK;
    }
    if (!block) {
        if (!(block = malloc(cl + il + 2))) return AISLE_ENOMEM;
        memcpy(block, key, cl + il + 2);
    }
    if (GROW_ROOM(p->pop, p->n, p->cap, 256) || strmap_put(&p->at, block, cl + il + 1, p->n)) {
        free(block);
        return AISLE_ENOMEM;
    }
    if (p->n == 0) p->since_ms = clock_mono_ms();
    p->pop[p->n++] = (profile_pop){block, block + cl + 1, log_w};
    return AISLE_OK;
}

/* Adds the newly applied positive item events to the pending popularity:
 * global, and their category's trending list. Returns AISLE_OK or
 * AISLE_ENOMEM with err set. */
static int profile_pend_popular(profile_store *ps, const profile_event *ev,
                                const unsigned char *applied, size_t n, char *err,
                                size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        const Aisle__V1__Signal *s = ev[i].sig;
        double log_w;
        if (!applied[i] || s->kind == AISLE__V1__SIGNAL_KIND__DISMISS || !s->item_id ||
            !*s->item_id || s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR)
            continue;
        log_w = profile_event_log(ps, s);
        if (profile_pending_add(&ps->pend, "", s->item_id, log_w) ||
            (ev[i].category && *ev[i].category &&
             profile_pending_add(&ps->pend, ev[i].category, s->item_id, log_w)))
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    return AISLE_OK;
}

/* Writes the pending popularity in one round trip: one call for the global
 * list, one a category; kept for the next try when that fails. */
static int profile_write_popular(profile_store *ps, char *err, size_t errlen) {
    profile_pending *p = &ps->pend;
    profile_pop *cats = calloc(p->n + 1, sizeof(*cats));
    const char **argv = calloc(3 + 2 * p->n + 2, sizeof(*argv));
    size_t *lens = calloc(3 + 2 * p->n + 2, sizeof(*lens));
    char (*num)[32] = calloc(p->n + 1, sizeof(*num));
    size_t ng = 0, nr, calls = 1;
    int rc;
    redisReply **r;

    if (!cats || !argv || !lens || !num) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    /* The global list's pairs (category "") sort first. */
    qsort(p->pop, p->n, sizeof(*p->pop), profile_cmp_pop);
    while (ng < p->n && !*p->pop[ng].category) ng++;
    if (profile_queue_bump(ps, PROFILE_POPULAR_KEY, PROFILE_POPULAR_MAX, p->pop, ng, argv, lens,
                           num) ||
        profile_queue_trending(ps, p->pop + ng, p->n - ng, cats, argv, lens, num, &calls)) {
        rcluster_reset(ps->rc);
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    } else if ((rc = profile_exec(ps, "bumping popularity", &r, &nr, err, errlen)) == 0) {
        assert(nr == calls);
        if (profile_module_refused(ps, r, nr)) {
            rc = profile_write_popular(ps, err, errlen); /* now with the script */
            goto out;
        }
        for (size_t i = 0; i < nr && rc == 0; i++)
            if (r[i]->type == REDIS_REPLY_ERROR)
                rc = profile_bad_reply(r[i], "bumping popularity", err, errlen);
    }
    /* The pairs were keyed by index, which the sort moved: a failed write
     * keeps them with a fresh map. */
    if (rc == 0) {
        profile_pending_clear(p);
    } else {
        strmap_free(&p->at);
        strmap_init(&p->at);
        for (size_t i = 0; i < p->n && rc != AISLE_ENOMEM; i++)
            if (strmap_put(&p->at, p->pop[i].category,
                           strlen(p->pop[i].category) + 1 + strlen(p->pop[i].item), i))
                rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
out:
    free(cats);
    free(argv);
    free(lens);
    free(num);
    return rc;
}

int profile_flush(profile_store *ps, int force, char *err, size_t errlen) {
    int64_t age;
    if (ps->pend.n == 0) return AISLE_OK;
    age = clock_mono_ms() - ps->pend.since_ms;
    if (!force && age < ps->cfg.popular_delay_ms && ps->pend.n < PROFILE_PENDING_MAX)
        return AISLE_OK;
    return profile_write_popular(ps, err, errlen);
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

/* Whether event e starts a new run after p (the previous in order): another
 * user or origin, or times spread over more than PROFILE_RUN_SPAN
 * half-lives from the run's [*t0, *t1] (the script's sums are decayed
 * against the run's first time; see there), which it then widens. */
static int profile_new_run(const profile_store *ps, const profile_event *e,
                           const profile_event *p, int64_t *t0, int64_t *t1) {
    int64_t t = e->sig->ts_ms;
    if (!p || strcmp(e->sig->user_id, p->sig->user_id) ||
        profile_cmp_origin(e->origin, p->origin) ||
        (double)((t > *t1 ? t : *t1) - (t < *t0 ? t : *t0)) >
            PROFILE_RUN_SPAN * ps->cfg.half_life_s * 1000.0) {
        *t0 = *t1 = t;
        return 1;
    }
    if (t < *t0) *t0 = t;
    if (t > *t1) *t1 = t;
    return 0;
}

#define PROFILE_RESEND 1 /* profile_round_read: send the round again */

/* Queues one round of apply calls for the events pick[0..n) (indices into
 * ev, in arrival order; NULL: all of ev[0..n)) into rd, which says how
 * the replies map back. Returns AISLE_OK, or AISLE_ENOMEM with err set
 * (nothing queued, rd empty). */
static int profile_round_queue(profile_store *ps, const profile_event *ev, const size_t *pick,
                               size_t n, profile_round *rd, char *err, size_t errlen) {
    profile_sum *sums = calloc(PROFILE_EVENT_FIELDS * n, sizeof(*sums));
    profile_args a = {0};
    size_t n_runs = 0, runs_max, args;
    int64_t t0 = 0, t1 = 0;
    int rc = AISLE_ENOMEM;

    rd->order = malloc(n * sizeof(*rd->order));
    rd->run_start = calloc(n + 1, sizeof(*rd->run_start));
    rd->call_start = calloc(n + 1, sizeof(*rd->call_start));
    rd->n_calls = 0;
    if (!rd->order || !rd->run_start || !rd->call_start || !sums) goto out;
    for (size_t i = 0; i < n; i++) rd->order[i] = pick ? pick[i] : i;
    qsort_r(rd->order, n, sizeof(*rd->order), profile_cmp_event, (void *)ev);
    for (size_t i = 0; i < n; i++)
        if (profile_new_run(ps, &ev[rd->order[i]], i ? &ev[rd->order[i - 1]] : NULL, &t0, &t1))
            rd->run_start[n_runs++] = i;
    rd->run_start[n_runs] = n;
    for (size_t k = 0; k < n_runs; k++)
        if (rd->n_calls == 0 ||
            !profile_same_call(ps, ev, rd->order, rd->run_start,
                               rd->call_start[rd->n_calls - 1], k))
            rd->call_start[rd->n_calls++] = k;
    rd->call_start[rd->n_calls] = n_runs;
    runs_max = n_runs < PROFILE_CALL_RUNS ? n_runs : PROFILE_CALL_RUNS;
    args = 3 + PROFILE_HEAD_ARGS + (PROFILE_NKEYS + PROFILE_RUN_ARGS) * runs_max +
           PROFILE_EVENT_ARGS * n;
    a.argv = calloc(args, sizeof(*a.argv));
    a.lens = calloc(args, sizeof(*a.lens));
    a.num = calloc(PROFILE_HEAD_ARGS + 4 * runs_max + (2 + PROFILE_EVENT_FIELDS) * n,
                   sizeof(*a.num));
    a.keys = calloc(PROFILE_NKEYS * runs_max, sizeof(*a.keys));
    for (size_t i = 0; i < n; i++) a.text_cap += profile_text_bytes(&ev[rd->order[i]]);
    a.text = malloc(a.text_cap);
    if (!a.argv || !a.lens || !a.num || !a.keys || !a.text) goto out;
    for (size_t c = 0; c < rd->n_calls; c++) {
        if (profile_queue_call(ps, ev, rd->order, rd->run_start, rd->call_start[c],
                               rd->call_start[c + 1], sums, &a)) {
            rcluster_reset(ps->rc);
            goto out;
        }
    }
    rc = AISLE_OK;
out:
    if (rc) {
        profile_round_free(rd);
        status_fail(rc, err, errlen, "out of memory");
    }
    free(sums);
    free(a.argv);
    free(a.lens);
    free(a.num);
    free(a.keys);
    free(a.text);
    return rc;
}

/* Reads the replies of the round rd (queued, or sent by rcluster_send) and
 * frees it: each event gets its verdict in verdict[index], '1' applied,
 * '0' a duplicate, '2' held back with a run that held one (to be sent
 * again), or a PRECORD_REFUSED_* letter. Returns AISLE_OK, PROFILE_RESEND when the module's command was
 * refused (nothing settled), or AISLE_EIO with err set. */
static int profile_round_read(profile_store *ps, profile_round *rd, char *verdict, char *err,
                              size_t errlen) {
    redisReply **r;
    size_t nr;
    int rc;
    if ((rc = profile_exec(ps, "applying signals", &r, &nr, err, errlen)) != 0) goto out;
    assert(nr == rd->n_calls);
    if (profile_module_refused(ps, r, nr)) {
        rc = PROFILE_RESEND;
        goto out;
    }
    for (size_t c = 0; c < rd->n_calls; c++) {
        size_t first = rd->run_start[rd->call_start[c]],
               len = rd->run_start[rd->call_start[c + 1]] - first;
        if (r[c]->type != REDIS_REPLY_STRING || r[c]->len != len ||
            strspn(r[c]->str, "012" PRECORD_REFUSED) != len) {
            rc = profile_bad_reply(r[c], "applying signals", err, errlen);
            goto out;
        }
        for (size_t i = 0; i < len; i++) verdict[rd->order[first + i]] = r[c]->str[i];
    }
out:
    profile_round_free(rd);
    return rc;
}

int profile_apply_send(profile_store *ps, const profile_event *ev, size_t n, char *err,
                       size_t errlen) {
    char why[400];
    int rc;
    assert(!ps->flight.order);
    if (n == 0) return AISLE_OK;
    if ((rc = rcluster_connect(ps->rc, err, errlen)) != 0 ||
        (rc = profile_round_queue(ps, ev, NULL, n, &ps->flight, err, errlen)) != 0)
        return rc;
    if (rcluster_send(ps->rc, why, sizeof(why)) != AISLE_OK) {
        profile_round_free(&ps->flight);
        return status_fail(AISLE_EIO, err, errlen, "applying signals: %s", why);
    }
    return AISLE_OK;
}

int profile_apply_finish(profile_store *ps, const profile_event *ev, size_t n, char *refused,
                         char *err, size_t errlen) {
    char *verdict = calloc(n ? n : 1, 1); /* 0: not sent yet, then the script's */
    unsigned char *applied = calloc(n ? n : 1, 1);
    size_t *pick = calloc(n ? n : 1, sizeof(*pick));
    size_t np = n;
    int napplied = 0, rc;
    profile_round rd = ps->flight; /* the first round, in flight; freed by its read */

    assert(n == 0 || rd.order);
    memset(&ps->flight, 0, sizeof(ps->flight));
    if (!verdict || !applied || !pick) {
        profile_round_free(&rd);
        rcluster_reset(ps->rc); /* its replies are not read: the connection is dropped */
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < n; i++) pick[i] = i;
    /* Each round settles every event of the runs without a duplicate and
     * at least one event of every other run, so this ends; a batch with no
     * replay takes one round. */
    while (np > 0) {
        size_t left = 0;
        if (!rd.order && (rc = profile_round_queue(ps, ev, pick, np, &rd, err, errlen)) != 0)
            goto out;
        if ((rc = profile_round_read(ps, &rd, verdict, err, errlen)) < 0) goto out;
        if (rc == PROFILE_RESEND) continue;
        for (size_t i = 0; i < np; i++)
            if (verdict[pick[i]] == '2') pick[left++] = pick[i];
        if (left == np) {
            rc = status_fail(AISLE_EIO, err, errlen, "redis: applying signals: no event settled");
            goto out;
        }
        np = left;
    }
    for (size_t i = 0; i < n; i++) {
        applied[i] = verdict[i] == '1';
        napplied += applied[i];
        if (refused) refused[i] = verdict[i] && strchr(PRECORD_REFUSED, verdict[i]) ? verdict[i] : 0;
    }
    /* Popularity counts positive interest of newly applied events only, so a
     * replayed batch does not inflate it; it is written when due. */
    rc = profile_pend_popular(ps, ev, applied, n, err, errlen);
    if (rc == 0) rc = profile_flush(ps, 0, err, errlen);
    if (rc == 0) rc = napplied;
out:
    free(verdict);
    free(applied);
    free(pick);
    return rc;
}

int profile_apply(profile_store *ps, const profile_event *ev, size_t n, char *refused,
                  char *err, size_t errlen) {
    int rc = profile_apply_send(ps, ev, n, err, errlen);
    return rc < 0 ? rc : profile_apply_finish(ps, ev, n, refused, err, errlen);
}

void profile_refusal(const char *user_id, char verdict, char *out, size_t outlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    profile_keys(user_id, keys);
    if (verdict == PRECORD_REFUSED_TYPE[0])
        snprintf(out, outlen, "profile keys %s, %s: one holds another Redis type", keys[0],
                 keys[1]);
    else
        snprintf(out, outlen, "profile %s: %s", keys[PROFILE_KEY_PROFILE],
                 verdict == PRECORD_REFUSED_HASH[0]
                     ? "the hash does not convert (a value that is not a number, or a name "
                       "over 65535 bytes)"
                     : "a corrupt profile record (magic, version, length, names, or order)");
}

/* How stored values read as weights. */
typedef enum {
    PROFILE_AS_TIME,   /* times (ms), as they are */
    PROFILE_AS_LINEAR, /* linear against the user's landmark (the apply script) */
    PROFILE_AS_LOG,    /* log space against PROFILE_LANDMARK_MS (popularity) */
} profile_scale;

/* Turns n stored values in e[].weight into weights as of now_ms; lm_ms is
 * the user's landmark for PROFILE_AS_LINEAR. */
static void profile_scale_weights(const profile_store *ps, profile_entry *e, size_t n,
                                  int64_t now_ms, profile_scale scale, int64_t lm_ms) {
    double now_log = profile_log_time(ps, now_ms);
    double factor = exp2(-(double)(now_ms - lm_ms) / (ps->cfg.half_life_s * 1000.0));
    for (size_t i = 0; i < n; i++) {
        if (scale == PROFILE_AS_LINEAR) e[i].weight *= factor;
        if (scale == PROFILE_AS_LOG) e[i].weight = exp(e[i].weight - now_log);
    }
}

/* Turns a WITHSCORES array into entries, weights as of now_ms. */
static int profile_entries_from(const profile_store *ps, const redisReply *r,
                                int64_t now_ms, profile_scale scale, int64_t lm_ms,
                                profile_entry **out, size_t *n_out) {
    size_t n = r->elements / 2;
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
    }
    profile_scale_weights(ps, e, n, now_ms, scale, lm_ms);
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
    profile_entries_free(p->follows, p->n_follows);
    memset(p, 0, sizeof(*p));
}

/* Queues one command whose key is argv[1], and returns its single reply in
 * *out, or an error code. */
static int profile_one(profile_store *ps, const char *what, int argc, const char **argv,
                       redisReply **out, char *err, size_t errlen) {
    size_t nr;
    redisReply **r;
    int rc;
    if (rcluster_append(ps->rc, argv[1], argc, argv, NULL)) {
        rcluster_reset(ps->rc);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    if ((rc = profile_exec(ps, what, &r, &nr, err, errlen)) != 0) return rc;
    *out = r[0];
    return 0;
}

/* A member field of a profile hash, as profile_get sorts them: by kind
 * (the letter before ':', as in PROFILE_KINDS), heaviest (latest) first,
 * ties in the reverse order of ids, as ZREVRANGE had them. */
typedef struct profile_field {
    int kind;
    const char *id; /* in the reply, after the prefix */
    size_t len;
    double v;
} profile_field;

/* The record's member kinds, in the order of profile_get's lists. */
#define PROFILE_KINDS_OF_MEMBERS PRECORD_MEMBER_KINDS

static int profile_cmp_field(const void *pa, const void *pb) {
    const profile_field *a = pa, *b = pb;
    int c;
    if (a->kind != b->kind) return a->kind - b->kind;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    c = memcmp(a->id, b->id, a->len < b->len ? a->len : b->len);
    if (c) return -c;
    return (a->len < b->len) - (a->len > b->len);
}

/* The fields of an HGETALL reply: members into f (one slot a pair, *nf of
 * them), the last activity time and the landmark into *last_ms and *lm_ms
 * (0 when missing). Returns AISLE_OK, or AISLE_EFORMAT for a reply that is
 * not pairs of strings. */
static int profile_fields_from(const redisReply *r, profile_field *f, size_t *nf,
                               int64_t *last_ms, int64_t *lm_ms) {
    *nf = 0;
    *last_ms = *lm_ms = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        const char *kind;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return AISLE_EFORMAT;
        if (strcmp(k->str, "last_ms") == 0) *last_ms = strtoll(v->str, NULL, 10);
        if (strcmp(k->str, "lm") == 0) *lm_ms = strtoll(v->str, NULL, 10);
        if (k->len < 2 || k->str[1] != ':' || !k->str[0] ||
            !(kind = strchr(PROFILE_KINDS_OF_MEMBERS, k->str[0])))
            continue; /* meta fields, marks ("o:") */
        f[*nf] = (profile_field){(int)(kind - PROFILE_KINDS_OF_MEMBERS), k->str + 2,
                                 k->len - 2, strtod(v->str, NULL)};
        (*nf)++;
    }
    return AISLE_OK;
}

/* The member fields of a profile record (precord.h) into f (one slot a
 * record field), its last activity time and landmark into *last_ms and
 * *lm_ms. Returns AISLE_OK, or AISLE_EFORMAT for a corrupt record. */
static int profile_fields_from_record(const redisReply *r, profile_field *f, size_t *nf,
                                      int64_t *last_ms, int64_t *lm_ms) {
    const unsigned char *rec = (const unsigned char *)r->str;
    double lm;
    *nf = 0;
    if (precord_check(rec, r->len) != 0) return AISLE_EFORMAT;
    *last_ms = (int64_t)precord_meta(rec, PRECORD_LAST_MS);
    lm = precord_meta(rec, PRECORD_LM);
    *lm_ms = isnan(lm) ? 0 : (int64_t)lm;
    for (size_t i = 0; i < precord_count(rec); i++) {
        precord_field x;
        const char *kind;
        precord_field_at(rec, i, &x);
        if (!(kind = memchr(PROFILE_KINDS_OF_MEMBERS, x.kind, sizeof(PROFILE_KINDS_OF_MEMBERS) - 1)))
            continue; /* marks ('o') */
        f[(*nf)++] = (profile_field){(int)(kind - PROFILE_KINDS_OF_MEMBERS), x.name, x.len, x.v};
    }
    return AISLE_OK;
}

/* Reads the user's profile key as the fields of either layout into *f
 * (allocated, pointing into the reply, which the store owns; the caller
 * frees *f): GET for a record, HGETALL for a hash, whichever read last
 * first, the other when Redis answers WRONGTYPE. A missing profile gives
 * no fields. Returns AISLE_OK, or AISLE_EIO, AISLE_EFORMAT or AISLE_ENOMEM
 * with err set. */
static int profile_read_fields(profile_store *ps, const char *key, profile_field **f,
                               size_t *nf, int64_t *last_ms, int64_t *lm_ms, char *err,
                               size_t errlen) {
    static const char what[] = "reading a profile";
    const char *argv[2] = {NULL, key};
    redisReply *r = NULL;
    int rc;
    *f = NULL;
    *nf = 0;
    *last_ms = *lm_ms = 0;
    for (int tries = 0; tries < 2; tries++) {
        argv[0] = ps->hash_first ? "HGETALL" : "GET";
        if ((rc = profile_one(ps, what, 2, argv, &r, err, errlen)) != AISLE_OK) return rc;
        if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "WRONGTYPE", 9) != 0) break;
        ps->hash_first = !ps->hash_first;
    }
    if (r->type == REDIS_REPLY_NIL) return AISLE_OK;
    if (r->type != (ps->hash_first ? REDIS_REPLY_ARRAY : REDIS_REPLY_STRING))
        return profile_bad_reply(r, what, err, errlen);
    if (!(*f = calloc(ps->hash_first ? r->elements / 2 + 1 : r->len / PRECORD_ENTRY + 1,
                      sizeof(**f))))
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    rc = ps->hash_first ? profile_fields_from(r, *f, nf, last_ms, lm_ms)
                        : profile_fields_from_record(r, *f, nf, last_ms, lm_ms);
    if (rc == AISLE_OK) return AISLE_OK;
    free(*f);
    *f = NULL;
    return ps->hash_first ? profile_bad_reply(r, what, err, errlen)
                          : status_fail(rc, err, errlen, "redis: %s: a corrupt profile record "
                                                         "(%zu bytes)", what, r->len);
}

/* Fills one of p's lists from sorted fields f[0..n) of one kind, at most
 * max of them. Returns AISLE_OK or AISLE_ENOMEM. */
static int profile_list_from(const profile_field *f, size_t n, size_t max,
                             profile_entry **out, size_t *n_out) {
    if (n > max) n = max;
    if (n == 0) return AISLE_OK;
    *out = calloc(n, sizeof(**out));
    if (!*out) return AISLE_ENOMEM;
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        (*out)[i].id = strndup(f[i].id, f[i].len);
        if (!(*out)[i].id) return AISLE_ENOMEM;
        (*out)[i].weight = f[i].v;
    }
    return AISLE_OK;
}

int profile_get(profile_store *ps, const char *user_id, int64_t now_ms,
                size_t max_items, profile *p, char *err, size_t errlen) {
    char keys[PROFILE_NKEYS][PROFILE_KEY_MAX];
    const profile_config *cfg = &ps->cfg;
    size_t items = max_items == 0 ? 1
                   : max_items < (size_t)cfg->max_items ? max_items : (size_t)cfg->max_items;
    /* Each list, by kind as in PROFILE_KINDS_OF_MEMBERS, with its bound
     * (the hash may hold a quarter more between trims) and how its values
     * read. */
    const struct {
        size_t max;
        profile_scale scale;
        profile_entry **out;
        size_t *n;
    } lists[] = {
        {items, PROFILE_AS_LINEAR, &p->items, &p->n_items},
        {items, PROFILE_AS_LINEAR, &p->dismissed, &p->n_dismissed},
        {(size_t)cfg->max_creators, PROFILE_AS_LINEAR, &p->creators, &p->n_creators},
        {(size_t)cfg->max_categories, PROFILE_AS_LINEAR, &p->categories, &p->n_categories},
        {(size_t)cfg->max_categories, PROFILE_AS_LINEAR, &p->brands, &p->n_brands},
        {(size_t)cfg->max_seen, PROFILE_AS_TIME, &p->seen, &p->n_seen},
        {(size_t)cfg->max_purchased, PROFILE_AS_TIME, &p->purchased, &p->n_purchased},
        {(size_t)cfg->max_creators, PROFILE_AS_TIME, &p->follows, &p->n_follows},
    };
    profile_field *f = NULL; /* points into the reply, owned by the store */
    size_t nf;
    int64_t lm_ms;
    int rc;

    memset(p, 0, sizeof(*p));
    if ((rc = profile_check_id("user_id", user_id, 1, err, errlen)) != AISLE_OK) return rc;
    profile_keys(user_id, keys);
    if ((rc = profile_read_fields(ps, keys[PROFILE_KEY_PROFILE], &f, &nf, &p->last_active_ms,
                                  &lm_ms, err, errlen)) != AISLE_OK)
        return rc;
    if (nf) qsort(f, nf, sizeof(*f), profile_cmp_field);
    for (size_t i = 0, k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        size_t j = i;
        while (j < nf && f[j].kind == (int)k) j++;
        if (profile_list_from(f + i, j - i, lists[k].max, lists[k].out, lists[k].n)) {
            rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
            goto fail;
        }
        profile_scale_weights(ps, *lists[k].out, *lists[k].n, now_ms, lists[k].scale, lm_ms);
        i = j;
    }
    free(f);
    return AISLE_OK;
fail:
    free(f);
    profile_clear(p);
    return rc;
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
