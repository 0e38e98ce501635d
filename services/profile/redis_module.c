/* redis_module: the profile write as native Redis commands, AISLE.APPLY
 * and AISLE.POPULAR, built as a module (aisle_redis.so) that redis-server
 * loads with --loadmodule. Each takes exactly its script's keys and
 * arguments and gives its reply (see profile_apply_lua and
 * profile_popular_lua in profile.c, which stay the write wherever modules
 * are not allowed), with the same exactly-once checks and effect. Where
 * the script keeps a user's profile as a hash, the module keeps it as one
 * binary record (precord.h), a Redis string it edits in place through
 * RedisModule_StringDMA: a field is a binary search of the record's index
 * and an 8-byte write, with no listpack walk, no number text and no
 * command dispatch (the hash's HashGet/HashSet were half of Redis's time
 * a signal). A hash-layout profile (the script's, or an older module's)
 * is rewritten as a record on its first write here; the store's read
 * understands both. The event-id set stays a sorted set.
 *
 *   AISLE.APPLY numkeys key... arg...
 *   AISLE.POPULAR 1 key max member log_weight...
 *
 * It runs inside redis-server, so it links nothing of Aisle's but the
 * record's format (precord.h): the module API (redismodule.h, from Redis's
 * own source; deploy/setup.sh installs it) and libc. Bad arguments are an
 * error reply, never an abort; a run whose profile cannot be read (a
 * corrupt record, a hash that does not convert, a key of another type) is
 * refused with a verdict naming the check (PRECORD_REFUSED_*), its keys
 * untouched, and the call's other runs apply. Deterministic given
 * the data set and the arguments (the clock comes in as an argument), so
 * it is replicated verbatim; the record is a plain string to RDB, AOF,
 * replicas and MIGRATE, and loads into a Redis without the module. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redismodule.h"
#include "services/profile/precord.h"

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

/* The call's settings, parsed once. */
typedef struct apply_head {
    double v[APPLY_HEAD];
    double bound[256]; /* per kind letter (a byte); 0: not a bounded kind */
    double high;       /* member count that triggers a trim */
} apply_head;

/* One run being applied: its keys and where its arguments lie. */
typedef struct apply_run {
    RedisModuleString **argv; /* the run's mark, n, nf, t_ref, t_max, events, fields */
    RedisModuleKey *p, *e;   /* the profile record and the event-id set, open */
    RedisModuleString *pname, *ename;
    unsigned char *rec; /* the record's bytes: the key's (StringDMA), or head */
    size_t len;         /* of the key's string */
    unsigned char head[PRECORD_HEAD]; /* a new profile, until its first write */
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

/* The fields of a hash-layout profile, copied out of a scan. */
typedef struct apply_scan {
    RedisModuleCtx *ctx;
    precord_field *f; /* RedisModule_Alloc'd; the caller frees; names auto-freed */
    size_t n, cap;
    int bad;
} apply_scan;

static void apply_scan_cb(RedisModuleKey *key, RedisModuleString *field,
                          RedisModuleString *value, void *priv) {
    apply_scan *s = priv;
    size_t len;
    const char *f = RedisModule_StringPtrLen(field, &len);
    double v;
    (void)key;
    if (!apply_kind(f, len)) return;
    /* A member the script could not add to either: the hash is refused,
     * not converted without it. */
    if (apply_parse(value, &v) || len - 2 > PRECORD_MAX_NAME) s->bad = 1;
    if (s->bad) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        precord_field *m = RedisModule_Realloc(s->f, cap * sizeof(*m));
        s->f = m;
        s->cap = cap;
    }
    f = RedisModule_StringPtrLen(RedisModule_CreateStringFromString(s->ctx, field), &len);
    s->f[s->n++] = (precord_field){.kind = f[0], .name = f + 2, .len = len - 2, .v = v};
}

static int apply_cmp_field(const void *a, const void *b) { return precord_cmp(a, b); }

/* The meta fields of the hash layout, by PRECORD_LAST_MS.. order. */
static const char *const apply_meta_names[PRECORD_NMETA] = {"last_ms", "erased", "lm", "n"};

/* Rewrites the hash-layout profile open at r->p as a record (the first
 * write of a profile the Lua script or an older module wrote), keeping its
 * expiry. Returns 0, or -1 (nothing changed) for a value that is not a
 * number or a name too long for the record. */
static int apply_migrate(RedisModuleCtx *ctx, apply_run *r) {
    static const double dflt[PRECORD_NMETA] = {0, -1, NAN, 0};
    double meta[PRECORD_NMETA];
    mstime_t ttl = RedisModule_GetExpire(r->p);
    apply_scan s = {.ctx = ctx};
    RedisModuleScanCursor *c = RedisModule_ScanCursorCreate();
    unsigned char *rec;
    size_t size;
    for (int i = 0; i < PRECORD_NMETA; i++)
        if (apply_get(r->p, apply_meta_names[i], dflt[i], &meta[i])) s.bad = 1;
    while (!s.bad && RedisModule_ScanKey(r->p, c, apply_scan_cb, &s)) {
    }
    RedisModule_ScanCursorDestroy(c);
    if (s.bad) {
        RedisModule_Free(s.f);
        return -1;
    }
    qsort(s.f, s.n, sizeof(*s.f), apply_cmp_field);
    size = precord_build_size(s.f, s.n);
    rec = RedisModule_Alloc(size);
    precord_build(rec, meta, s.f, s.n);
    RedisModule_StringSet(r->p, RedisModule_CreateString(ctx, (const char *)rec, size));
    RedisModule_Free(rec);
    RedisModule_Free(s.f);
    if (ttl != REDISMODULE_NO_EXPIRE) RedisModule_SetExpire(r->p, ttl);
    return 0;
}

/* The record's members, the count a trim bounds (offset marks are not
 * members): apply_one trims past h->high, and apply_open checks the order
 * of a record that the run's fields may take there, before the run
 * writes anything. */
static size_t apply_members(const unsigned char *rec) {
    return precord_count(rec) - precord_marks(rec);
}

static int apply_wrongtype(RedisModuleKey *k, int type) {
    int t = RedisModule_KeyType(k);
    return t != REDISMODULE_KEYTYPE_EMPTY && t != type;
}

/* Opens the user's record for reading and writing: r->rec and r->len. A
 * missing profile reads as the empty record in r->head until its first
 * write; a hash-layout one is migrated. Returns 0, or the verdict
 * (PRECORD_REFUSED_*) for keys no write can read, left as they were. */
static int apply_open(RedisModuleCtx *ctx, const apply_head *h, apply_run *r) {
    int t = RedisModule_KeyType(r->p);
    if (apply_wrongtype(r->e, REDISMODULE_KEYTYPE_ZSET)) return PRECORD_REFUSED_TYPE[0];
    if (t == REDISMODULE_KEYTYPE_EMPTY) {
        precord_init(r->head, -1);
        r->rec = r->head;
        r->len = PRECORD_HEAD;
        return 0;
    }
    if (t == REDISMODULE_KEYTYPE_HASH) {
        if (apply_migrate(ctx, r)) return PRECORD_REFUSED_HASH[0];
    } else if (t != REDISMODULE_KEYTYPE_STRING) {
        return PRECORD_REFUSED_TYPE[0];
    }
    r->rec = (unsigned char *)RedisModule_StringDMA(r->p, &r->len, REDISMODULE_WRITE);
    /* The bounds on every write (the whole check walks every name: a fifth
     * of Redis's time a signal); the order too when the run may bring a
     * trim, which rebuilds the record from its order, so that a record out
     * of order is refused before anything of the run is written. (A marks
     * count over the count wraps round and takes the whole check.) */
    if (!r->rec || precord_check_bounds(r->rec, r->len) != 0) return PRECORD_REFUSED_RECORD[0];
    if ((double)(apply_members(r->rec) + (size_t)r->nf) > h->high &&
        precord_check(r->rec, r->len) != 0)
        return PRECORD_REFUSED_RECORD[0];
    return 0;
}

/* Resizes the key's string to size bytes (a missing key becomes one) and
 * points r->rec and r->len at it again: a resize may move the string. */
static void apply_resize(apply_run *r, size_t size) {
    RedisModule_StringTruncate(r->p, size);
    r->rec = (unsigned char *)RedisModule_StringDMA(r->p, &r->len, REDISMODULE_WRITE);
}

/* Makes room for `more` bytes past the record's end (the empty record
 * becomes a key here); r->rec moves. */
static void apply_grow(apply_run *r, size_t more) {
    int fresh = r->rec == r->head;
    apply_resize(r, precord_size(r->rec) + more);
    if (fresh) memcpy(r->rec, r->head, PRECORD_HEAD);
}

/* Rescales the user's decayed fields by 2^-by (a new landmark). */
static void apply_rebase(unsigned char *rec, double by) {
    precord_field f;
    for (size_t i = 0; i < precord_count(rec); i++) {
        precord_field_at(rec, i, &f);
        if (apply_decayed(f.kind)) precord_set_value(rec, i, f.v * exp2(-by));
    }
}

/* Lightest first, then by name, as the script's sort. */
static int apply_cmp_lighter(const void *pa, const void *pb) {
    const precord_field *a = pa, *b = pb;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return precord_cmp(a, b);
}

/* Trims every kind over its bound, lightest (oldest) first: the record is
 * rebuilt from what is kept. Returns 0, or -1 for a record out of order. */
static int apply_trim(const apply_head *h, apply_run *r) {
    size_t n = precord_count(r->rec), kept = 0;
    precord_field *f;
    double meta[PRECORD_NMETA];
    unsigned char *out;
    size_t size;
    if (precord_check(r->rec, r->len) != 0) return -1;
    f = RedisModule_Alloc((n ? n : 1) * sizeof(*f));
    for (int k = 0; k < PRECORD_NMETA; k++) meta[k] = precord_meta(r->rec, k);
    for (size_t i = 0; i < n; i++) precord_field_at(r->rec, i, &f[i]);
    /* A kind's fields are one range of the index; the lightest of a range
     * over its bound are dropped, the rest keep their index order. */
    for (size_t i = 0, j; i < n; i = j) {
        double bound = h->bound[(unsigned char)f[i].kind];
        for (j = i; j < n && f[j].kind == f[i].kind; j++) {
        }
        if (bound > 0 && (double)(j - i) > bound) {
            qsort(f + i, j - i, sizeof(*f), apply_cmp_lighter);
            memmove(f + kept, f + i + (j - i - (size_t)bound), (size_t)bound * sizeof(*f));
            qsort(f + kept, (size_t)bound, sizeof(*f), apply_cmp_field);
            kept += (size_t)bound;
        } else {
            memmove(f + kept, f + i, (j - i) * sizeof(*f));
            kept += j - i;
        }
    }
    size = precord_build_size(f, kept);
    out = RedisModule_Alloc(size);
    precord_build(out, meta, f, kept);
    RedisModule_Free(f);
    apply_resize(r, size);
    memcpy(r->rec, out, size);
    RedisModule_Free(out);
    return 0;
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

/* A "K:NAME" argument as the record's (kind, name); 0, or -1 when it is
 * not one of kinds. */
static int apply_field_name(RedisModuleString *s, const char *kinds, precord_field *f) {
    const char *name = RedisModule_StringPtrLen(s, &f->len);
    if (!apply_kind(name, f->len) || !strchr(kinds, name[0]) || f->len - 2 > PRECORD_MAX_NAME)
        return -1;
    f->kind = name[0];
    f->name = name + 2;
    f->len -= 2;
    return 0;
}

/* Sets field f (absent: inserted into room made by apply_grow) to f->v,
 * or, when present and add, adds f->v to it, or, present and not add,
 * keeps the larger. */
static void apply_set(apply_run *r, const precord_field *f, int add) {
    size_t at;
    precord_field cur;
    if (!precord_find(r->rec, f->kind, f->name, f->len, &at)) {
        precord_insert(r->rec, at, f->kind, f->name, f->len, f->v);
        return;
    }
    precord_field_at(r->rec, at, &cur);
    if (add) precord_set_value(r->rec, at, cur.v + f->v);
    else if (cur.v < f->v) precord_set_value(r->rec, at, f->v);
}

/* Bytes the run's absent fields (and its mark, has_mark) add to the
 * record: reserved exactly, so a run that only updates fields resizes
 * nothing (a string grown and cut back each run would be reallocated
 * twice). Returns 0, or -1 for a bad field name. */
static int apply_room(const apply_run *r, const precord_field *mark, int has_mark,
                      size_t *room) {
    precord_field f;
    size_t at;
    *room = has_mark && !precord_find(r->rec, 'o', mark->name, mark->len, &at)
                ? PRECORD_ENTRY + mark->len
                : 0;
    for (long long i = 0; i < r->nf; i++) {
        if (apply_field_name(r->argv[5 + 3 * r->n + 2 * i], PRECORD_MEMBER_KINDS, &f)) return -1;
        if (!precord_find(r->rec, f.kind, f.name, f.len, &at)) *room += PRECORD_ENTRY + f.len;
    }
    return 0;
}

/* Adds the run's summed fields: decayed weights times f (the run's time
 * against the landmark), times kept when later. Returns 0, or -1 for a
 * bad argument. */
static int apply_fields(apply_run *r, double f) {
    for (long long i = 0; i < r->nf; i++) {
        RedisModuleString **fv = r->argv + 5 + 3 * r->n + 2 * i;
        precord_field x;
        if (apply_field_name(fv[0], PRECORD_MEMBER_KINDS, &x) || apply_parse(fv[1], &x.v))
            return -1;
        if (apply_decayed(x.kind)) x.v *= f;
        apply_set(r, &x, apply_decayed(x.kind));
    }
    return 0;
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

/* The origin's offset mark of the run (argv[0], "o:topic:partition" or
 * "" for none) into *mark. Returns 1 when there is one, 0 when not, -1
 * for a bad one. */
static int apply_mark(apply_run *r, precord_field *mark) {
    size_t len;
    RedisModule_StringPtrLen(r->argv[0], &len);
    if (len == 0) return 0;
    return apply_field_name(r->argv[0], "o", mark) ? -1 : 1;
}

/* Applies one run with its keys open; its verdicts into v (a profile no
 * write can read refuses the run: every event gets the check's letter).
 * Returns 0, or -1 for a bad argument or a record found out of order by a
 * trim (*why says which). */
static int apply_one(RedisModuleCtx *ctx, const apply_head *h, apply_run *r, char *v,
                     const char **why) {
    double done = -1, top, lm, erased, n0;
    long long added;
    precord_field mark, cur; /* mark's name is the argument's: records move */
    size_t at, room;
    int has_mark, refused;
    *why = "ERR bad AISLE.APPLY arguments";
    if ((has_mark = apply_mark(r, &mark)) < 0) return -1;
    if ((refused = apply_open(ctx, h, r)) != 0) {
        memset(v, refused, (size_t)r->n);
        return 0;
    }
    if (has_mark && precord_find(r->rec, 'o', mark.name, mark.len, &at)) {
        precord_field_at(r->rec, at, &cur);
        done = cur.v;
    }
    erased = precord_meta(r->rec, PRECORD_ERASED);
    if ((added = apply_check(h, r, done, erased, v, &top)) < 0) return -1;
    if (added < r->n) {
        apply_hold_back(r, v);
        return 0;
    }
    lm = precord_meta(r->rec, PRECORD_LM);
    if (isnan(lm)) {
        lm = r->tref;
    } else if ((r->tmax - lm) / h->v[APPLY_HALF_LIFE] > APPLY_REBASE_HALF_LIVES) {
        /* Before the run's fields are added, so they add to rescaled ones. */
        apply_rebase(r->rec, (r->tref - lm) / h->v[APPLY_HALF_LIFE]);
        lm = r->tref;
    }
    if (apply_room(r, &mark, has_mark, &room)) return -1;
    if (room > 0 || r->rec == r->head) apply_grow(r, room);
    if (apply_fields(r, exp2((r->tref - lm) / h->v[APPLY_HALF_LIFE]))) return -1;
    if (has_mark && top > done) {
        mark.v = top;
        apply_set(r, &mark, 0);
    }
    precord_set_meta(r->rec, PRECORD_LM, lm);
    n0 = precord_meta(r->rec, PRECORD_N);
    precord_set_meta(r->rec, PRECORD_N, n0 + (double)r->n);
    if (r->tmax > precord_meta(r->rec, PRECORD_LAST_MS))
        precord_set_meta(r->rec, PRECORD_LAST_MS, r->tmax);
    /* A field named twice in the run was reserved twice: the rest is given
     * back (which may move the string). */
    if (precord_size(r->rec) < r->len) apply_resize(r, precord_size(r->rec));
    *why = "ERR corrupt profile record";
    if ((double)apply_members(r->rec) > h->high && apply_trim(h, r))
        return -1;
    apply_expire(h, r, erased);
    if (floor((n0 + r->n) / h->v[APPLY_TRIM_EVERY]) > floor(n0 / h->v[APPLY_TRIM_EVERY])) {
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
        if (apply_one(ctx, &h, &r, out + nout, &why)) goto fail;
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
