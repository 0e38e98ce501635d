/* redis_module: the profile write as native Redis commands, AISLE.APPLY
 * and AISLE.POPULAR, built as a module (aisle_redis.so) that redis-server
 * loads with --loadmodule. Each takes exactly its script's keys and
 * arguments and gives its reply (see profile_apply_lua and
 * profile_popular_lua in profile.c, which stay the write wherever modules
 * are not allowed), with the same exactly-once
 * checks and the same hash layout, so a store may switch between the two
 * at any call. Why: the script's interpreter work per event (arguments
 * turned into Lua strings and numbers, formatting, one redis.call per
 * command) was most of Redis's time per event; here a field is one lookup
 * in the user's hash through the key API, with no command dispatch.
 *
 *   AISLE.APPLY numkeys key... arg...
 *   AISLE.POPULAR 1 key max member log_weight...
 *
 * It runs inside redis-server, so it links nothing of Aisle's but the
 * number formatting it shares with the store (numfmt.h): the module API
 * (redismodule.h, from Redis's own source; deploy/setup.sh installs it)
 * and libc. Bad arguments are an error reply, never an abort.
 * Deterministic given the data set and the arguments (the clock comes in
 * as an argument), so it is replicated verbatim. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redismodule.h"
#include "services/profile/numfmt.h"

/* The head arguments, by position after the keys (as the script's ARGV). */
enum {
    APPLY_MAX_ITEMS,
    APPLY_MAX_CREATORS,
    APPLY_MAX_CATEGORIES,
    APPLY_MAX_SEEN,
    APPLY_MAX_PURCHASED,
    APPLY_WINDOW_COUNT,
    APPLY_WINDOW_CUTOFF,
    APPLY_NOW,
    APPLY_TTL,
    APPLY_KEEP,
    APPLY_HALF_LIFE,
    APPLY_TRIM_EVERY,
    APPLY_HEAD
};

#define APPLY_REBASE_HALF_LIVES 64 /* as the script: rescale past this many */
#define APPLY_META 5               /* last_ms erased lm n m, read per run */

/* The call's settings, parsed once. */
typedef struct apply_head {
    double v[APPLY_HEAD];
    double bound[256]; /* per kind letter (a byte); 0: not a bounded kind */
    double high;       /* member count that triggers a trim */
} apply_head;

/* One run being applied: its keys and where its arguments lie. */
typedef struct apply_run {
    RedisModuleString **argv; /* the run's mark, n, nf, t_ref, t_max, events, fields */
    RedisModuleKey *p, *e;   /* the profile hash and the event-id set, open */
    RedisModuleString *pname, *ename;
    long long n, nf;
    double tref, tmax;
} apply_run;

static int apply_decayed(char kind) {
    return kind == 'i' || kind == 'd' || kind == 'c' || kind == 'g' || kind == 'b';
}

/* The kind letter of a member field "K:..." , or 0 for anything else. */
static char apply_kind(const char *f, size_t len) {
    return len >= 2 && f[1] == ':' ? f[0] : 0;
}

/* A value as the store formats its arguments (numfmt.h): the same text
 * the script's %.17g reads back to, several times faster. */
static RedisModuleString *apply_num(RedisModuleCtx *ctx, double x) {
    char buf[NUMFMT_MAX];
    return RedisModule_CreateString(ctx, buf, numfmt_double(buf, x));
}

/* A number argument or stored value; most are integers (offsets, times,
 * counts), which read without strtod. */
static int apply_parse(RedisModuleString *s, double *out) {
    long long i;
    if (RedisModule_StringToLongLong(s, &i) == REDISMODULE_OK) {
        *out = (double)i;
        return 0;
    }
    return RedisModule_StringToDouble(s, out) == REDISMODULE_OK ? 0 : -1;
}

/* A hash field as a number, dflt when missing. Returns 0, or -1 when the
 * stored value is not a number. */
static int apply_get(RedisModuleKey *k, const char *field, double dflt, double *out) {
    RedisModuleString *v = NULL;
    RedisModule_HashGet(k, REDISMODULE_HASH_CFIELDS, field, &v, NULL);
    *out = dflt;
    return v ? apply_parse(v, out) : 0;
}

static int apply_head_parse(RedisModuleString **argv, apply_head *h) {
    static const struct {
        char kind;
        int at;
    } kinds[] = {{'i', APPLY_MAX_ITEMS},      {'d', APPLY_MAX_ITEMS},
                 {'c', APPLY_MAX_CREATORS},   {'g', APPLY_MAX_CATEGORIES},
                 {'b', APPLY_MAX_CATEGORIES}, {'s', APPLY_MAX_SEEN},
                 {'p', APPLY_MAX_PURCHASED},  {'f', APPLY_MAX_CREATORS}};
    double total = 0;
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < APPLY_HEAD; i++)
        if (apply_parse(argv[i], &h->v[i])) return -1;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        h->bound[(unsigned char)kinds[i].kind] = h->v[kinds[i].at];
        total += h->v[kinds[i].at];
    }
    h->high = total + fmax(16, floor(total / 4));
    return h->v[APPLY_HALF_LIFE] > 0 && h->v[APPLY_TRIM_EVERY] > 0 ? 0 : -1;
}

/* A member field copied out of a scan, with its value. */
typedef struct apply_member {
    RedisModuleString *field;
    const char *name;
    size_t len;
    double v;
} apply_member;

typedef struct apply_scan {
    RedisModuleCtx *ctx;
    apply_member *m; /* RedisModule_Alloc'd; the caller frees */
    size_t n, cap;
    int oom;
} apply_scan;

static void apply_scan_cb(RedisModuleKey *key, RedisModuleString *field,
                          RedisModuleString *value, void *priv) {
    apply_scan *s = priv;
    size_t len;
    const char *f = RedisModule_StringPtrLen(field, &len);
    double v;
    (void)key;
    if (!apply_kind(f, len) || apply_parse(value, &v)) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        apply_member *m = RedisModule_Realloc(s->m, cap * sizeof(*m));
        if (!m) {
            s->oom = 1;
            return;
        }
        s->m = m;
        s->cap = cap;
    }
    s->m[s->n].field = RedisModule_CreateStringFromString(s->ctx, field);
    s->m[s->n].name = RedisModule_StringPtrLen(s->m[s->n].field, &s->m[s->n].len);
    s->m[s->n].v = v;
    s->n++;
}

/* Every member field of the hash k with its value into s. */
static void apply_members(RedisModuleCtx *ctx, RedisModuleKey *k, apply_scan *s) {
    RedisModuleScanCursor *c = RedisModule_ScanCursorCreate();
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    while (RedisModule_ScanKey(k, c, apply_scan_cb, s)) {
    }
    RedisModule_ScanCursorDestroy(c);
}

/* Rescales the user's decayed fields by 2^-by (a new landmark). */
static void apply_rebase(RedisModuleCtx *ctx, RedisModuleKey *p, double by) {
    apply_scan s;
    apply_members(ctx, p, &s);
    for (size_t i = 0; i < s.n; i++)
        if (apply_decayed(s.m[i].name[0]))
            RedisModule_HashSet(p, REDISMODULE_HASH_NONE, s.m[i].field,
                                apply_num(ctx, s.m[i].v * exp2(-by)), NULL);
    RedisModule_Free(s.m);
}

/* Lightest first, then by name, as the script's sort. */
static int apply_cmp_member(const void *pa, const void *pb) {
    const apply_member *a = pa, *b = pb;
    int c;
    if (a->name[0] != b->name[0]) return (unsigned char)a->name[0] - (unsigned char)b->name[0];
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Trims every kind over its bound, lightest (oldest) first, and sets the
 * member count to what is left. */
static void apply_trim(RedisModuleCtx *ctx, const apply_head *h, RedisModuleKey *p) {
    apply_scan s;
    double m = 0;
    apply_members(ctx, p, &s);
    qsort(s.m, s.n, sizeof(*s.m), apply_cmp_member);
    for (size_t i = 0, j; i < s.n; i = j) {
        double bound = h->bound[(unsigned char)s.m[i].name[0]];
        for (j = i; j < s.n && s.m[j].name[0] == s.m[i].name[0]; j++) {
        }
        if (bound <= 0) continue;
        for (size_t k = i; (double)(j - k) > bound; k++)
            RedisModule_HashSet(p, REDISMODULE_HASH_NONE, s.m[k].field, REDISMODULE_HASH_DELETE,
                                NULL);
        m += fmin((double)(j - i), bound);
    }
    RedisModule_HashSet(p, REDISMODULE_HASH_CFIELDS, "m", apply_num(ctx, m), NULL);
    RedisModule_Free(s.m);
}

/* The de-duplication checks of the run's events, as the script's: the
 * verdicts into v ('1' new, '0' a duplicate or erased), and the highest new
 * offset into *top. Returns how many are new; each new id is added to the
 * event set. */
static long long apply_check(const apply_head *h, apply_run *r, double done, double erased,
                             char *v, double *top) {
    long long added = 0;
    *top = done;
    for (long long i = 0; i < r->n; i++) {
        RedisModuleString **ev = r->argv + 5 + 3 * i;
        double off, produced;
        int flags = REDISMODULE_ZADD_NX;
        if (apply_parse(ev[1], &off) || apply_parse(ev[2], &produced)) return -1;
        v[i] = '0';
        if ((off >= 0 && off <= done) || produced <= erased) continue;
        if (RedisModule_ZsetAdd(r->e, h->v[APPLY_NOW], ev[0], &flags) != REDISMODULE_OK)
            return -1;
        if (!(flags & REDISMODULE_ZADD_ADDED)) continue;
        v[i] = '1';
        added++;
        if (off > *top) *top = off;
    }
    return added;
}

/* Takes back the ids a held-back run added, and marks its new events '2'. */
static void apply_hold_back(apply_run *r, char *v) {
    for (long long i = 0; i < r->n; i++) {
        if (v[i] != '1') continue;
        RedisModule_ZsetRem(r->e, r->argv[5 + 3 * i], NULL);
        v[i] = '2';
    }
}

/* Adds the run's summed fields: decayed weights times f (the run's time
 * against the landmark), times kept when later. Returns the count of
 * fields that are new, or -1 for a bad value. */
static long long apply_fields(RedisModuleCtx *ctx, apply_run *r, double f) {
    long long added = 0;
    for (long long i = 0; i < r->nf; i++) {
        RedisModuleString **fv = r->argv + 5 + 3 * r->n + 2 * i;
        RedisModuleString *cur = NULL;
        size_t len;
        const char *name = RedisModule_StringPtrLen(fv[0], &len);
        double x, c = 0;
        if (apply_parse(fv[1], &x)) return -1;
        RedisModule_HashGet(r->p, REDISMODULE_HASH_NONE, fv[0], &cur, NULL);
        if (cur && apply_parse(cur, &c)) return -1;
        if (!cur) added++;
        if (apply_decayed(apply_kind(name, len)))
            RedisModule_HashSet(r->p, REDISMODULE_HASH_NONE, fv[0],
                                apply_num(ctx, c + x * f), NULL);
        else if (!cur || c < x)
            RedisModule_HashSet(r->p, REDISMODULE_HASH_NONE, fv[0], fv[1], NULL);
    }
    return added;
}

/* Trims the remembered ids to their window (by age, then by count). The
 * key handle must be closed: this goes through commands. */
static void apply_window(RedisModuleCtx *ctx, const apply_head *h, RedisModuleString *ename) {
    char cutoff[40], keep[32];
    RedisModuleCallReply *z;
    long long count;
    snprintf(cutoff, sizeof(cutoff), "(%.17g", h->v[APPLY_WINDOW_CUTOFF]);
    RedisModule_FreeCallReply(RedisModule_Call(ctx, "ZREMRANGEBYSCORE", "scc", ename, "-inf",
                                               cutoff));
    z = RedisModule_Call(ctx, "ZCARD", "s", ename);
    count = z ? RedisModule_CallReplyInteger(z) : 0;
    RedisModule_FreeCallReply(z);
    if (count <= (long long)h->v[APPLY_WINDOW_COUNT]) return;
    snprintf(keep, sizeof(keep), "%lld", count - (long long)h->v[APPLY_WINDOW_COUNT] - 1);
    RedisModule_FreeCallReply(RedisModule_Call(ctx, "ZREMRANGEBYRANK", "scc", ename, "0", keep));
}

/* The TTL, which never cuts an erasure mark's keep short. */
static void apply_expire(const apply_head *h, apply_run *r, double erased) {
    double ttl = h->v[APPLY_TTL], keep;
    if (ttl <= 0) return;
    keep = ceil((erased + h->v[APPLY_KEEP] * 1000 - h->v[APPLY_NOW]) / 1000);
    if (erased < 0 || keep <= ttl) keep = ttl;
    RedisModule_SetExpire(r->e, (mstime_t)(ttl * 1000));
    RedisModule_SetExpire(r->p, (mstime_t)(keep * 1000));
}

/* A new profile's meta fields, placed before its first members: a small
 * hash is a listpack, searched from its front, so the fields every run
 * reads (and "erased", which would otherwise miss, scanning it all) are
 * found within a few entries however many members follow. Their values
 * are set by apply_meta. The script writes the same order. */
static void apply_place_meta(RedisModuleCtx *ctx, apply_run *r, double erased) {
    size_t len;
    RedisModule_HashSet(r->p, REDISMODULE_HASH_CFIELDS, "erased", apply_num(ctx, erased), "lm",
                        apply_num(ctx, 0), "n", apply_num(ctx, 0), "m", apply_num(ctx, 0),
                        "last_ms", apply_num(ctx, 0), NULL);
    RedisModule_StringPtrLen(r->argv[0], &len);
    if (len) RedisModule_HashSet(r->p, REDISMODULE_HASH_NONE, r->argv[0], apply_num(ctx, -1), NULL);
}

/* Writes the run's meta fields after its members. */
static void apply_meta(RedisModuleCtx *ctx, apply_run *r, const double *meta, double lm,
                       double top, double done, double m) {
    RedisModuleString *mark = r->argv[0];
    if (top > done)
        RedisModule_HashSet(r->p, REDISMODULE_HASH_NONE, mark, apply_num(ctx, top), NULL);
    if (r->tmax > meta[0])
        RedisModule_HashSet(r->p, REDISMODULE_HASH_CFIELDS, "last_ms", apply_num(ctx, r->tmax),
                            NULL);
    if (isnan(meta[2]) || lm != meta[2])
        RedisModule_HashSet(r->p, REDISMODULE_HASH_CFIELDS, "lm", apply_num(ctx, lm), NULL);
    RedisModule_HashSet(r->p, REDISMODULE_HASH_CFIELDS, "n", apply_num(ctx, meta[3] + r->n),
                        "m", apply_num(ctx, m), NULL);
}

/* Reads the run's meta fields: last_ms erased lm n m into meta (lm NaN
 * when unset) and the origin's mark into *done. Returns 0 or -1. */
static int apply_read_meta(apply_run *r, double *meta, double *done) {
    static const char *const names[APPLY_META] = {"last_ms", "erased", "lm", "n", "m"};
    static const double dflt[APPLY_META] = {0, -1, NAN, 0, 0};
    size_t len;
    RedisModuleString *mark = NULL;
    for (int i = 0; i < APPLY_META; i++)
        if (apply_get(r->p, names[i], dflt[i], &meta[i])) return -1;
    *done = -1;
    RedisModule_StringPtrLen(r->argv[0], &len);
    if (len == 0) return 0;
    RedisModule_HashGet(r->p, REDISMODULE_HASH_NONE, r->argv[0], &mark, NULL);
    return mark ? apply_parse(mark, done) : 0;
}

/* Applies one run with its keys open; its verdicts into v. Returns 0, or
 * -1 for a bad argument or stored value. */
static int apply_one(RedisModuleCtx *ctx, const apply_head *h, apply_run *r, char *v) {
    double meta[APPLY_META], done, top, lm, m;
    long long added, fresh;
    if (apply_read_meta(r, meta, &done)) return -1;
    if ((added = apply_check(h, r, done, meta[1], v, &top)) < 0) return -1;
    if (added < r->n) {
        apply_hold_back(r, v);
        return 0;
    }
    lm = meta[2];
    if (isnan(lm)) {
        apply_place_meta(ctx, r, meta[1]);
        lm = r->tref;
    } else if ((r->tmax - lm) / h->v[APPLY_HALF_LIFE] > APPLY_REBASE_HALF_LIVES) {
        /* Before the run's fields are read, so they read rescaled too. */
        apply_rebase(ctx, r->p, (r->tref - lm) / h->v[APPLY_HALF_LIFE]);
        lm = r->tref;
    }
    if ((fresh = apply_fields(ctx, r, exp2((r->tref - lm) / h->v[APPLY_HALF_LIFE]))) < 0)
        return -1;
    m = meta[4] + (double)fresh;
    apply_meta(ctx, r, meta, lm, top, done, m);
    if (m > h->high) apply_trim(ctx, h, r->p);
    apply_expire(h, r, meta[1]);
    if (floor((meta[3] + r->n) / h->v[APPLY_TRIM_EVERY]) >
        floor(meta[3] / h->v[APPLY_TRIM_EVERY])) {
        RedisModule_CloseKey(r->e);
        r->e = NULL;
        apply_window(ctx, h, r->ename);
    }
    return 0;
}

/* Parses run counts at argv[0..4], checking the run fits in argc. Returns
 * the run's argument count, or -1. */
static int apply_run_parse(RedisModuleString **argv, int argc, apply_run *r) {
    double n, nf;
    if (argc < 5 || apply_parse(argv[1], &n) || apply_parse(argv[2], &nf) ||
        apply_parse(argv[3], &r->tref) || apply_parse(argv[4], &r->tmax) || n < 0 || nf < 0 ||
        n > argc || nf > argc || 5 + 3 * n + 2 * nf > argc)
        return -1;
    r->argv = argv;
    r->n = (long long)n;
    r->nf = (long long)nf;
    return (int)(5 + 3 * r->n + 2 * r->nf);
}

static int apply_wrongtype(RedisModuleKey *k, int type) {
    int t = RedisModule_KeyType(k);
    return t != REDISMODULE_KEYTYPE_EMPTY && t != type;
}

/* AISLE.APPLY numkeys key... head... run...: see the top of the file. */
static int apply_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    long long numkeys;
    apply_head h;
    char *out = NULL;
    size_t nout = 0;
    int a, b = 0;
    const char *why = "ERR bad AISLE.APPLY arguments";

    RedisModule_AutoMemory(ctx);
    if (argc < 2 || RedisModule_StringToLongLong(argv[1], &numkeys) != REDISMODULE_OK ||
        numkeys < 0 || numkeys % 2 || 2 + numkeys + APPLY_HEAD > argc ||
        apply_head_parse(argv + 2 + numkeys, &h))
        return RedisModule_ReplyWithError(ctx, why);
    if (!(out = RedisModule_Alloc((size_t)argc + 1))) return RedisModule_ReplyWithError(ctx, why);
    for (a = 2 + (int)numkeys + APPLY_HEAD; a < argc; b += 2) {
        apply_run r = {0};
        int used = apply_run_parse(argv + a, argc - a, &r);
        if (used < 0 || b + 2 > numkeys) goto fail;
        r.pname = argv[2 + b];
        r.ename = argv[3 + b];
        r.p = RedisModule_OpenKey(ctx, r.pname, REDISMODULE_READ | REDISMODULE_WRITE);
        r.e = RedisModule_OpenKey(ctx, r.ename, REDISMODULE_READ | REDISMODULE_WRITE);
        if (apply_wrongtype(r.p, REDISMODULE_KEYTYPE_HASH) ||
            apply_wrongtype(r.e, REDISMODULE_KEYTYPE_ZSET)) {
            why = REDISMODULE_ERRORMSG_WRONGTYPE;
            goto fail;
        }
        if (apply_one(ctx, &h, &r, out + nout)) goto fail;
        RedisModule_CloseKey(r.p);
        if (r.e) RedisModule_CloseKey(r.e);
        nout += (size_t)r.n;
        a += used;
    }
    RedisModule_ReplyWithStringBuffer(ctx, out, nout);
    RedisModule_ReplicateVerbatim(ctx);
    RedisModule_Free(out);
    return REDISMODULE_OK;
fail:
    /* Runs before this one are applied (as with a script's error part-way);
     * the caller retries the whole batch, which de-duplication makes safe. */
    RedisModule_Free(out);
    RedisModule_ReplicateVerbatim(ctx);
    return RedisModule_ReplyWithError(ctx, why);
}

/* AISLE.POPULAR 1 key max member log_weight...: the popularity script's
 * write (profile_popular_lua): each member's log-space weight added by
 * log-sum-exp, the list then bounded to its max heaviest. */
static int popular_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModuleKey *k;
    long long numkeys, max, n;
    RedisModule_AutoMemory(ctx);
    if (argc < 4 || argc % 2 || RedisModule_StringToLongLong(argv[1], &numkeys) != REDISMODULE_OK ||
        numkeys != 1 || RedisModule_StringToLongLong(argv[3], &max) != REDISMODULE_OK || max < 0)
        return RedisModule_ReplyWithError(ctx, "ERR bad AISLE.POPULAR arguments");
    k = RedisModule_OpenKey(ctx, argv[2], REDISMODULE_READ | REDISMODULE_WRITE);
    if (apply_wrongtype(k, REDISMODULE_KEYTYPE_ZSET))
        return RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
    for (int i = 4; i < argc; i += 2) {
        double a, c;
        if (apply_parse(argv[i + 1], &a) || isnan(a))
            return RedisModule_ReplyWithError(ctx, "ERR bad AISLE.POPULAR weight");
        if (RedisModule_ZsetScore(k, argv[i], &c) == REDISMODULE_OK)
            a = fmax(a, c) + log1p(exp(-fabs(c - a)));
        RedisModule_ZsetAdd(k, a, argv[i], NULL);
    }
    n = (long long)RedisModule_ValueLength(k);
    RedisModule_CloseKey(k);
    if (n > max) {
        char stop[32];
        snprintf(stop, sizeof(stop), "%lld", n - max - 1);
        RedisModule_Call(ctx, "ZREMRANGEBYRANK", "scc", argv[2], "0", stop);
    }
    RedisModule_ReplicateVerbatim(ctx);
    return RedisModule_ReplyWithLongLong(ctx, 1);
}

/* Key positions for Redis Cluster and ACLs: the numkeys keys after it. */
static int apply_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    long long numkeys;
    if (argc < 2 || RedisModule_StringToLongLong(argv[1], &numkeys) != REDISMODULE_OK ||
        numkeys < 0 || numkeys > argc - 2)
        return REDISMODULE_ERR;
    for (long long i = 0; i < numkeys; i++) RedisModule_KeyAtPos(ctx, (int)(2 + i));
    return REDISMODULE_OK;
}

static int apply_entry(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (RedisModule_IsKeysPositionRequest(ctx)) return apply_keys(ctx, argv, argc);
    return apply_command(ctx, argv, argc);
}

static int popular_entry(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (RedisModule_IsKeysPositionRequest(ctx)) return apply_keys(ctx, argv, argc);
    return popular_command(ctx, argv, argc);
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "aisle", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    if (RedisModule_CreateCommand(ctx, "aisle.apply", apply_entry, "write deny-oom getkeys-api",
                                  0, 0, 0) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return RedisModule_CreateCommand(ctx, "aisle.popular", popular_entry,
                                     "write deny-oom getkeys-api", 0, 0, 0);
}
