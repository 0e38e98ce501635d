/* Tests for services/profile against a real redis-server child: applying,
 * de-duplication by event id and by offset, decay order, bounds, seen,
 * purchased, categories and brands, TTL, deletion of every key, kind
 * weights, id checks, popularity, and errors when Redis is away. */
#include "services/profile/profile.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "services/base/clock.h"
#include "services/devtools/redisproc.h"
#include "services/profile/precord.h"
#include "tests/test.h"

static redisproc rp;

/* Applies signals with no origin (de-duplication by event id only). */
static int apply(profile_store *ps, Aisle__V1__Signal *const *sigs, size_t n) {
    profile_event ev[16];
    char err[256];
    for (size_t i = 0; i < n; i++)
        ev[i] = (profile_event){sigs[i], NULL, NULL, NULL, -1, 0};
    return profile_apply(ps, ev, n, NULL, err, sizeof(err));
}

/* A raw command on the test server, for looking at keys directly. */
static redisReply *raw(const char *fmt, const char *arg) {
    redisContext *c = redisConnect("127.0.0.1", rp.port);
    redisReply *r = c && !c->err ? redisCommand(c, fmt, arg) : NULL;
    if (c) redisFree(c);
    return r;
}

static Aisle__V1__Signal sig(const char *ev, const char *user, int kind, const char *item,
                             int64_t ts) {
    Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
    s.event_id = (char *)ev;
    s.user_id = (char *)user;
    s.kind = kind;
    s.item_id = (char *)item;
    s.creator_id = "cr";
    s.ts_ms = ts;
    return s;
}

static profile_store *open_store(int max_items) {
    profile_config cfg;
    profile_store *ps;
    char err[256];
    profile_config_default(&cfg);
    cfg.half_life_s = 3600;
    cfg.max_items = max_items;
    return profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) ? NULL : ps;
}

static void test_apply_dedup_and_order(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[4] = {
        sig("e1", "alice", AISLE__V1__SIGNAL_KIND__VIEW, "i1", now),
        sig("e2", "alice", AISLE__V1__SIGNAL_KIND__PURCHASE, "i2", now),
        sig("e1", "alice", AISLE__V1__SIGNAL_KIND__VIEW, "i1", now), /* replay */
        sig("e3", "alice", AISLE__V1__SIGNAL_KIND__VIEW, "i3", now - 3600 * 1000),
    };
    Aisle__V1__Signal *ptr[4] = {&s[0], &s[1], &s[2], &s[3]};
    profile p;
    char err[256];
    TEST_REQUIRE(ps != NULL);
    TEST_CHECK(apply(ps, ptr, 4) == 3);
    TEST_CHECK(apply(ps, ptr, 4) == 0); /* whole batch replayed */
    TEST_REQUIRE(profile_get(ps, "alice", now, 10, &p, err, sizeof(err)) == 0);
    TEST_REQUIRE(p.n_items == 3);
    TEST_CHECK_STR(p.items[0].id, "i2");
    TEST_CHECK(fabs(p.items[0].weight - 8.0) < 1e-6);
    TEST_CHECK(fabs(p.items[1].weight - 1.0) < 1e-6);     /* counted once */
    TEST_CHECK(fabs(p.items[2].weight - 0.5) < 1e-6);     /* one half-life old */
    TEST_CHECK(p.n_creators == 1 && p.last_active_ms == now);
    TEST_CHECK(p.n_dismissed == 0);
    profile_clear(&p);
    /* Read an hour later, everything has halved. */
    TEST_REQUIRE(profile_get(ps, "alice", now + 3600 * 1000, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(fabs(p.items[0].weight - 4.0) < 1e-6);
    profile_clear(&p);
    profile_store_close(ps);
}

/* Eight views by user of items <item>0..7, a second apart, the last a
 * second before now, with event ids <ev>0..7; the strings live in v. */
typedef struct views {
    char ev[8][24], it[8][16];
    Aisle__V1__Signal s[8];
    Aisle__V1__Signal *ptr[8];
} views;

static void views_make(views *v, const char *user, const char *ev, const char *item,
                       int64_t now) {
    for (int i = 0; i < 8; i++) {
        snprintf(v->ev[i], sizeof(v->ev[i]), "%s%d", ev, i);
        snprintf(v->it[i], sizeof(v->it[i]), "%s%d", item, i);
        v->s[i] = sig(v->ev[i], user, AISLE__V1__SIGNAL_KIND__VIEW, v->it[i],
                      now - (8 - i) * 1000);
        v->ptr[i] = &v->s[i];
    }
}

static void test_bounded_and_unknown(void) {
    profile_store *ps = open_store(3);
    int64_t now = clock_wall_ms();
    char err[256];
    views v;
    profile p;
    TEST_REQUIRE(ps != NULL);
    views_make(&v, "bob", "b", "x", now);
    TEST_CHECK(apply(ps, v.ptr, 8) == 8);
    TEST_REQUIRE(profile_get(ps, "bob", now, 100, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 3);
    TEST_CHECK(p.n_items == 3 && strcmp(p.items[2].id, "x5") == 0); /* oldest trimmed */
    profile_clear(&p);
    TEST_REQUIRE(profile_get(ps, "nobody", now, 100, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 0 && p.last_active_ms == 0);
    TEST_CHECK(profile_get(ps, "", now, 100, &p, err, sizeof(err)) == AISLE_EINVAL);
    profile_store_close(ps);
}

/* Bounds hold across calls too, as events arrive one call at a time, and
 * again after a delete. */
static void test_bounded_across_calls(void) {
    profile_store *ps = open_store(3);
    int64_t now = clock_wall_ms();
    char err[256];
    views v;
    profile p;
    TEST_REQUIRE(ps != NULL);
    for (int round = 0; round < 2; round++) {
        /* The second round comes after the erasure (a later log time). */
        views_make(&v, "cleo", round ? "d" : "c", "y", now + round * 60000);
        for (int i = 0; i < 8; i++) TEST_CHECK(apply(ps, &v.ptr[i], 1) == 1);
        TEST_REQUIRE(profile_get(ps, "cleo", now, 100, &p, err, sizeof(err)) == 0);
        TEST_CHECK(p.n_items == 3 && strcmp(p.items[2].id, "y5") == 0);
        profile_clear(&p);
        TEST_CHECK(profile_delete(ps, "cleo", err, sizeof(err)) == 1);
    }
    profile_store_close(ps);
}

static void test_check_id(void) {
    char err[256], big[PROFILE_MAX_ID + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    TEST_CHECK(profile_check_id("user_id", "u", 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(profile_check_id("item_id", "", 0, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(profile_check_id("user_id", "", 1, err, sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "user_id is empty"));
    TEST_CHECK(profile_check_id("user_id", big, 1, err, sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "longer"));
    big[sizeof(big) - 2] = 0; /* exactly PROFILE_MAX_ID */
    TEST_CHECK(profile_check_id("user_id", big, 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(profile_check_id("user_id", "tab\there", 1, err, sizeof(err)) ==
                   AISLE_EINVAL && strstr(err, "control"));
}

/* A stored field of a profile key, named as the hash layout names it. */
typedef struct stored {
    char name[300];
    double v;
} stored;

/* The fields of a profile key in either layout, as the hash layout names
 * them ("i:ID", "o:ORIGIN", "erased", "m", ...; for a record its head
 * numbers first, then "m", then its fields in index order), into out (at
 * most max). Returns how many, or -1 for a key that is neither. */
static int stored_fields(const char *key, stored *out, size_t max) {
    static const char *const meta[PRECORD_NMETA] = {"last_ms", "erased", "lm", "n"};
    redisReply *r = raw("GET %s", key);
    size_t n = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        const unsigned char *rec = (const unsigned char *)r->str;
        TEST_CHECK(precord_check(rec, r->len) == 0);
        if (precord_check(rec, r->len) != 0) {
            freeReplyObject(r);
            return -1;
        }
        for (int k = 0; k < PRECORD_NMETA && n < max; k++, n++) {
            snprintf(out[n].name, sizeof(out[n].name), "%s", meta[k]);
            out[n].v = precord_meta(rec, k);
        }
        if (n < max) {
            snprintf(out[n].name, sizeof(out[n].name), "m");
            out[n++].v = (double)(precord_count(rec) - precord_marks(rec));
        }
        for (size_t i = 0; i < precord_count(rec) && n < max; i++, n++) {
            precord_field f;
            precord_field_at(rec, i, &f);
            snprintf(out[n].name, sizeof(out[n].name), "%c:%.*s", f.kind, (int)f.len, f.name);
            out[n].v = f.v;
        }
        freeReplyObject(r);
        return (int)n;
    }
    if (r) freeReplyObject(r);
    r = raw("HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2, n++) {
        snprintf(out[n].name, sizeof(out[n].name), "%s", r->element[i]->str);
        out[n].v = strtod(r->element[i + 1]->str, NULL);
    }
    freeReplyObject(r);
    return (int)n;
}

/* The value of one stored field of key, NAN when absent. */
static double stored_get(const char *key, const char *name) {
    stored f[256];
    int n = stored_fields(key, f, 256);
    for (int i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0) return f[i].v;
    return NAN;
}

/* The profile's count of members ("m"), and its member and item fields
 * as counted. */
static void member_counts(long long *m, long long *members, long long *items) {
    stored f[256];
    int n = stored_fields("aisle:u:{trim}:profile", f, 256);
    *m = -1;
    *members = *items = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(f[i].name, "m") == 0) *m = (long long)f[i].v;
        *members += f[i].name[0] && f[i].name[1] == ':' && f[i].name[0] != 'o';
        *items += strncmp(f[i].name, "i:", 2) == 0;
    }
}

/* The members grow past the sum of the bounds (5 of each kind here, 35) by
 * at most 16 (a quarter when that is more) before every kind is trimmed
 * back to its bound, and reads never show the surplus. */
static void test_trimming_is_amortized(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    char ev[100][16], it[100][16], err[256];
    Aisle__V1__Signal s[100];
    Aisle__V1__Signal *ptr[1];
    long long m, members, items;
    profile p;
    profile_config_default(&cfg);
    cfg.half_life_s = 3600;
    cfg.max_items = cfg.max_creators = cfg.max_categories = cfg.max_seen = 5;
    cfg.max_purchased = 5;
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    for (int i = 0; i < 100; i++) {
        snprintf(ev[i], sizeof(ev[i]), "t%d", i);
        snprintf(it[i], sizeof(it[i]), "it%d", i);
        s[i] = sig(ev[i], "trim", AISLE__V1__SIGNAL_KIND__VIEW, it[i], now - 100000 + i * 1000);
        ptr[0] = &s[i];
        TEST_CHECK(apply(ps, ptr, 1) == 1);
        member_counts(&m, &members, &items);
        TEST_CHECK(m == members && m <= 40 + 16); /* 8 kinds bounded at 5, follows among them */
        TEST_REQUIRE(profile_get(ps, "trim", now, 100, &p, err, sizeof(err)) == 0);
        TEST_CHECK(p.n_items == (i < 5 ? (size_t)i + 1 : 5) && p.n_seen == p.n_items);
        TEST_CHECK(strcmp(p.items[0].id, it[i]) == 0); /* the newest is the heaviest */
        profile_clear(&p);
    }
    /* Each view adds an item and a seen member (the creator is one for
     * all): 2k + 1 members, trimmed to 11 at the 28th view, then at the
     * 51st, 74th and 97th; 17 after three more. */
    member_counts(&m, &members, &items);
    TEST_CHECK(m == 17 && members == 17 && items == 8);
    profile_store_close(ps);
}

/* Events far apart in half-lives move the user's landmark (the sets are
 * rescaled once), and weights read the same as without. */
static void test_landmark_moves_with_time(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[2] = {
        sig("l1", "lena", AISLE__V1__SIGNAL_KIND__CLICK, "old", now - 100000),
        sig("l2", "lena", AISLE__V1__SIGNAL_KIND__VIEW, "new", now),
    };
    Aisle__V1__Signal *ptr[1];
    profile p;
    char err[256];
    redisReply *r;
    profile_config_default(&cfg);
    cfg.half_life_s = 1; /* 100 half-lives between the two */
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    ptr[0] = &s[0];
    TEST_REQUIRE(apply(ps, ptr, 1) == 1);
    ptr[0] = &s[1];
    TEST_REQUIRE(apply(ps, ptr, 1) == 1);
    TEST_CHECK(stored_get("aisle:u:{lena}:profile", "lm") == (double)now);
    TEST_REQUIRE(profile_get(ps, "lena", now, 10, &p, err, sizeof(err)) == 0);
    TEST_REQUIRE(p.n_items == 2);
    TEST_CHECK_STR(p.items[0].id, "new");
    TEST_CHECK(fabs(p.items[0].weight - 1.0) < 1e-9);
    TEST_CHECK(fabs(p.items[1].weight / (2.0 * pow(2, -100)) - 1) < 1e-9);
    profile_clear(&p);
    profile_store_close(ps);
    /* Popularity written with this half-life would mislead later tests. */
    r = raw("DEL %s", "aisle:popular");
    if (r) freeReplyObject(r);
}

/* The worker sums a user's events per field before the script sees them;
 * events of one batch far apart in half-lives go in runs of their own, so
 * the sums stay finite and read as events applied one by one would. A
 * run held back for a duplicate (here "m2" sent twice) is sent again
 * without it, and counts each new event once; "m1", applied before, is a
 * run of its own and counts nothing. */
static void test_summed_runs(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[4] = {
        sig("m1", "mona", AISLE__V1__SIGNAL_KIND__CLICK, "old", now - 100000),
        sig("m2", "mona", AISLE__V1__SIGNAL_KIND__VIEW, "new", now),
        sig("m3", "mona", AISLE__V1__SIGNAL_KIND__VIEW, "new", now),
        sig("m2", "mona", AISLE__V1__SIGNAL_KIND__VIEW, "new", now),
    };
    Aisle__V1__Signal *ptr[4] = {&s[0], &s[1], &s[2], &s[3]};
    profile p;
    char err[256];
    profile_config_default(&cfg);
    cfg.half_life_s = 1; /* 100 half-lives between old and new */
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    TEST_REQUIRE(apply(ps, ptr, 1) == 1);
    TEST_CHECK(apply(ps, ptr, 4) == 2);
    TEST_REQUIRE(profile_get(ps, "mona", now, 10, &p, err, sizeof(err)) == 0);
    TEST_REQUIRE(p.n_items == 2);
    TEST_CHECK_STR(p.items[0].id, "new");
    TEST_CHECK(fabs(p.items[0].weight - 2.0) < 1e-9);
    TEST_CHECK(fabs(p.items[1].weight / (2.0 * pow(2, -100)) - 1) < 1e-9);
    TEST_CHECK(p.n_seen == 2 && p.seen[0].weight == (double)now);
    profile_clear(&p);
    profile_store_close(ps);
    redisReply *r = raw("DEL %s", "aisle:popular");
    if (r) freeReplyObject(r);
}

/* One batch with more distinct items than one popularity call takes in
 * one piece (1,999 members): every one of them is counted. */
static void test_popular_long_batch(void) {
    enum { N = 2500 };
    static char ev[N][24], it[N][24];
    static Aisle__V1__Signal s[N];
    static profile_event e[N];
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    profile_entry *pop;
    char err[256];
    int n;
    TEST_REQUIRE(ps != NULL);
    for (int i = 0; i < N; i++) {
        snprintf(ev[i], sizeof(ev[i]), "lb%d", i);
        snprintf(it[i], sizeof(it[i]), "lb-item%d", i);
        s[i] = sig(ev[i], i % 2 ? "lb-a" : "lb-b", AISLE__V1__SIGNAL_KIND__VIEW, it[i], now);
        e[i] = (profile_event){&s[i], NULL, NULL, NULL, -1, 0};
    }
    TEST_REQUIRE(profile_apply(ps, e, N, NULL, err, sizeof(err)) == N);
    n = profile_popular(ps, now, 10000, &pop, err, sizeof(err));
    TEST_REQUIRE(n >= N);
    int found = 0;
    for (int i = 0; i < n; i++) found += strncmp(pop[i].id, "lb-item", 7) == 0;
    TEST_CHECK(found == N);
    profile_entries_free(pop, (size_t)n);
    profile_store_close(ps);
}

static void test_key_tag_escapes_braces(void) {
    char tag[64];
    TEST_CHECK(profile_key_tag("plain", tag, sizeof(tag)) == 5 && strcmp(tag, "plain") == 0);
    TEST_CHECK(profile_key_tag("}a{b%", tag, sizeof(tag)) == 11 &&
               strcmp(tag, "%7Da%7Bb%25") == 0);
    /* Distinct ids, distinct tags: the escape itself is escaped. */
    profile_key_tag("%7D", tag, sizeof(tag));
    TEST_CHECK(strcmp(tag, "%257D") == 0);
    TEST_CHECK(profile_key_tag("abc{", tag, 5) == 3); /* cut before a half escape */
}

/* An erasure outlives a replay of what came before it: the same events at
 * the same offsets, or re-read by another group, are skipped; an event
 * produced after it builds a new profile. A brace in the id changes
 * nothing. */
static void test_erasure_outlives_replay(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    const char *user = "}er{ase";
    Aisle__V1__Signal s[3] = {
        sig("x1", user, AISLE__V1__SIGNAL_KIND__CLICK, "old1", now - 2000),
        sig("x2", user, AISLE__V1__SIGNAL_KIND__CLICK, "old2", now - 1000),
        sig("x3", user, AISLE__V1__SIGNAL_KIND__CLICK, "new", now),
    };
    profile_event e[3];
    profile p;
    char err[256];
    TEST_REQUIRE(ps != NULL);
    for (int i = 0; i < 3; i++)
        e[i] = (profile_event){&s[i], NULL, NULL, "aisle.signals:1", 10 + i, now - 2000 + i};
    TEST_REQUIRE(profile_apply(ps, e, 2, NULL, err, sizeof(err)) == 2);
    TEST_CHECK(profile_delete(ps, user, err, sizeof(err)) == 1);
    TEST_CHECK(profile_apply(ps, e, 2, NULL, err, sizeof(err)) == 0);
    e[0].origin = e[1].origin = "other.topic:0"; /* a replay elsewhere, same log time */
    TEST_CHECK(profile_apply(ps, e, 2, NULL, err, sizeof(err)) == 0);
    e[2].produced_ms = now + 5000; /* produced after the erasure */
    TEST_CHECK(profile_apply(ps, &e[2], 1, NULL, err, sizeof(err)) == 1);
    TEST_REQUIRE(profile_get(ps, user, now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 1 && strcmp(p.items[0].id, "new") == 0);
    profile_clear(&p);
    TEST_CHECK(profile_delete(ps, user, err, sizeof(err)) == 1);
    TEST_CHECK(profile_delete(ps, user, err, sizeof(err)) == 0);
    profile_store_close(ps);
}

/* A new profile's meta fields: "erased" -1 for a user never erased and
 * the origin's mark, in either layout; the script's hash writes them
 * first (a small hash is a listpack, searched from its front, so each
 * run's lookups of them stop within a few entries), the module's record
 * keeps them in its head and index. */
static void test_meta_fields_come_first(void) {
    static const char *const first[] = {"erased", "lm", "n", "m", "last_ms", "o:aisle.signals:3"};
    static const char key[] = "aisle:u:{meta-first}:profile";
    profile_store *ps = open_store(100);
    Aisle__V1__Signal s = sig("mf1", "meta-first", AISLE__V1__SIGNAL_KIND__CLICK, "it",
                              clock_wall_ms());
    profile_event e = {&s, "cat", "brand", "aisle.signals:3", 7, 0};
    redisReply *r;
    char err[256];
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, &e, 1, NULL, err, sizeof(err)) == 1);
    TEST_CHECK(stored_get(key, "erased") == -1);
    TEST_CHECK(stored_get(key, "o:aisle.signals:3") == 7);
    r = raw("TYPE %s", key);
    TEST_REQUIRE(r && r->type == REDIS_REPLY_STATUS);
    if (strcmp(r->str, "hash") == 0) {
        freeReplyObject(r);
        r = raw("HKEYS %s", key);
        TEST_REQUIRE(r && r->type == REDIS_REPLY_ARRAY && r->elements > 6);
        for (size_t i = 0; i < 6; i++) TEST_CHECK_STR(r->element[i]->str, first[i]);
    } else {
        TEST_CHECK(getenv("AISLE_REDIS_MODULE") && strcmp(r->str, "string") == 0);
    }
    freeReplyObject(r);
    profile_store_close(ps);
}

/* Weight of item in the global popular list as of now_ms, 0 when absent. */
static double popular_weight(profile_store *ps, const char *item, int64_t now_ms) {
    profile_entry *pop;
    char err[256];
    double w = 0;
    int n = profile_popular(ps, now_ms, 10000, &pop, err, sizeof(err));
    for (int i = 0; i < n; i++)
        if (strcmp(pop[i].id, item) == 0) w = pop[i].weight;
    if (n > 0) profile_entries_free(pop, (size_t)n);
    return w;
}

/* With popular_delay_ms, popularity is summed across calls and written
 * once by profile_flush (forced, or when due), the same sums as call by
 * call. */
static void test_popular_summed_until_flushed(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[2] = {sig("pd1", "pd-a", AISLE__V1__SIGNAL_KIND__PURCHASE, "pd-hot", now),
                              sig("pd2", "pd-b", AISLE__V1__SIGNAL_KIND__CLICK, "pd-hot", now)};
    Aisle__V1__Signal *one[] = {&s[0]}, *two[] = {&s[1]};
    char err[256];
    profile_config_default(&cfg);
    cfg.half_life_s = 3600;
    cfg.popular_delay_ms = 60000;
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    TEST_CHECK(apply(ps, one, 1) == 1);
    TEST_CHECK(apply(ps, two, 1) == 1);
    TEST_CHECK(profile_flush(ps, 0, err, sizeof(err)) == AISLE_OK); /* not due yet */
    TEST_CHECK(popular_weight(ps, "pd-hot", now) == 0);
    TEST_CHECK(profile_flush(ps, 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(fabs(popular_weight(ps, "pd-hot", now) - 10.0) < 1e-6); /* purchase 8 + click 2 */
    TEST_CHECK(profile_flush(ps, 1, err, sizeof(err)) == AISLE_OK); /* nothing left */
    TEST_CHECK(fabs(popular_weight(ps, "pd-hot", now) - 10.0) < 1e-6);
    profile_store_close(ps);
}

static void test_popular_counts_only_new_positive_events(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[3] = {
        sig("p1", "carol", AISLE__V1__SIGNAL_KIND__PURCHASE, "hot", now),
        sig("p2", "dave", AISLE__V1__SIGNAL_KIND__VIEW, "warm", now),
        sig("p3", "dave", AISLE__V1__SIGNAL_KIND__DISMISS, "hot", now),
    };
    Aisle__V1__Signal *ptr[3] = {&s[0], &s[1], &s[2]};
    profile_entry *pop;
    char err[256];
    int n;
    TEST_REQUIRE(ps != NULL);
    profile p;
    TEST_CHECK(apply(ps, ptr, 3) == 3);
    TEST_CHECK(apply(ps, ptr, 3) == 0);
    TEST_REQUIRE(profile_get(ps, "dave", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 1 && p.n_dismissed == 1);
    TEST_CHECK(p.n_dismissed == 1 && strcmp(p.dismissed[0].id, "hot") == 0 &&
               fabs(p.dismissed[0].weight - 4.0) < 1e-6);
    profile_clear(&p);
    n = profile_popular(ps, now, 10, &pop, err, sizeof(err));
    TEST_REQUIRE(n >= 2);
    TEST_CHECK_STR(pop[0].id, "hot");
    TEST_CHECK(fabs(pop[0].weight - 8.0) < 1e-6);
    profile_entries_free(pop, (size_t)n);
    profile_store_close(ps);
}

static void test_trending_per_category(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[5] = {
        sig("t1", "gus", AISLE__V1__SIGNAL_KIND__PURCHASE, "t-mug", now),
        sig("t2", "hal", AISLE__V1__SIGNAL_KIND__PURCHASE, "t-pot", now),
        sig("t3", "gus", AISLE__V1__SIGNAL_KIND__CLICK, "t-pot", now),
        sig("t4", "hal", AISLE__V1__SIGNAL_KIND__VIEW, "t-tee", now),
        sig("t5", "hal", AISLE__V1__SIGNAL_KIND__DISMISS, "t-hat", now),
    };
    profile_event e[5] = {
        {&s[0], "t-kitchen", NULL, NULL, -1, 0}, {&s[1], "t-kitchen", NULL, NULL, -1, 0},
        {&s[2], "t-kitchen", NULL, NULL, -1, 0}, {&s[3], "t-apparel", NULL, NULL, -1, 0},
        {&s[4], "t-apparel", NULL, NULL, -1, 0},
    };
    profile_entry *t;
    char err[256];
    int n;
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, e, 5, NULL, err, sizeof(err)) == 5);
    TEST_CHECK(profile_apply(ps, e, 5, NULL, err, sizeof(err)) == 0); /* a replay adds nothing */
    n = profile_trending(ps, "t-kitchen", now, 10, &t, err, sizeof(err));
    TEST_REQUIRE(n == 2);
    TEST_CHECK_STR(t[0].id, "t-pot"); /* purchase 8 + click 2 */
    TEST_CHECK(fabs(t[0].weight - 10.0) < 1e-6);
    TEST_CHECK_STR(t[1].id, "t-mug");
    profile_entries_free(t, (size_t)n);
    /* Dismissals are not interest. */
    n = profile_trending(ps, "t-apparel", now, 10, &t, err, sizeof(err));
    TEST_REQUIRE(n == 1);
    TEST_CHECK_STR(t[0].id, "t-tee");
    profile_entries_free(t, (size_t)n);
    /* Decayed like the global list: an hour's half-life halves it. */
    n = profile_trending(ps, "t-apparel", now + 3600 * 1000, 10, &t, err, sizeof(err));
    TEST_REQUIRE(n == 1);
    TEST_CHECK(fabs(t[0].weight - 0.5) < 1e-6);
    profile_entries_free(t, (size_t)n);
    n = profile_trending_categories(ps, now, 10, &t, err, sizeof(err));
    TEST_REQUIRE(n >= 2);
    TEST_CHECK_STR(t[0].id, "t-kitchen"); /* 18 in all */
    profile_entries_free(t, (size_t)n);
    TEST_CHECK(profile_trending(ps, "t-none", now, 10, &t, err, sizeof(err)) == 0);
    TEST_CHECK(profile_trending(ps, "", now, 10, &t, err, sizeof(err)) == AISLE_EINVAL);
    profile_store_close(ps);
}

static void test_redis_down_is_an_error_then_recovers(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    char err[256];
    profile p;
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_get(ps, "alice", now, 10, &p, err, sizeof(err)) == 0);
    profile_clear(&p);
    redisproc_stop(&rp);
    TEST_CHECK(profile_get(ps, "alice", now, 10, &p, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(strstr(err, "redis") != NULL);
    TEST_REQUIRE(redisproc_start(&rp, err, sizeof(err)) == 0);
    profile_store_close(ps);
    ps = open_store(100);
    TEST_REQUIRE(ps != NULL);
    TEST_CHECK(profile_get(ps, "alice", now, 10, &p, err, sizeof(err)) == 0);
    profile_clear(&p);
    profile_store_close(ps);
}

static void test_offsets_catch_replays_beyond_the_id_window(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    char ev[6][16], err[256];
    Aisle__V1__Signal s[6];
    profile_event e[6];
    profile p;
    profile_config_default(&cfg);
    cfg.event_window = 2; /* ids alone would forget all but two */
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    for (int i = 0; i < 6; i++) {
        snprintf(ev[i], sizeof(ev[i]), "o%d", i);
        s[i] = sig(ev[i], "olga", AISLE__V1__SIGNAL_KIND__VIEW, "same", now);
        e[i] = (profile_event){&s[i], NULL, NULL, "aisle.signals:3", 100 + i, 0};
    }
    TEST_CHECK(profile_apply(ps, e, 4, NULL, err, sizeof(err)) == 4);
    /* A rebalance replays offsets 100..105: only the two new ones count. */
    TEST_CHECK(profile_apply(ps, e, 6, NULL, err, sizeof(err)) == 2);
    TEST_CHECK(profile_apply(ps, e, 6, NULL, err, sizeof(err)) == 0);
    /* Another origin has its own mark; the id window still catches the
     * last ids re-sent there. */
    e[5].origin = "aisle.signals:4";
    TEST_CHECK(profile_apply(ps, &e[5], 1, NULL, err, sizeof(err)) == 0);
    TEST_REQUIRE(profile_get(ps, "olga", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 1 && fabs(p.items[0].weight - 6.0) < 1e-6);
    profile_clear(&p);
    profile_store_close(ps);
}

static void test_seen_purchased_categories_brands(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[4] = {
        sig("f1", "fay", AISLE__V1__SIGNAL_KIND__VIEW, "tee", now - 2000),
        sig("f2", "fay", AISLE__V1__SIGNAL_KIND__PURCHASE, "mug", now - 1000),
        sig("f3", "fay", AISLE__V1__SIGNAL_KIND__CLICK, "cup", now),
        sig("f4", "fay", AISLE__V1__SIGNAL_KIND__DISMISS, "hat", now),
    };
    profile_event e[4] = {
        {&s[0], "apparel", "Acme", NULL, -1, 0},
        {&s[1], "kitchen", "Brew", NULL, -1, 0},
        {&s[2], "kitchen", NULL, NULL, -1, 0},
        {&s[3], "apparel", "Acme", NULL, -1, 0},
    };
    profile p;
    char err[256];
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, e, 4, NULL, err, sizeof(err)) == 4);
    TEST_REQUIRE(profile_get(ps, "fay", now, 10, &p, err, sizeof(err)) == 0);
    TEST_REQUIRE(p.n_seen == 3 && p.n_purchased == 1);
    TEST_CHECK_STR(p.seen[0].id, "cup"); /* most recent first, with its time */
    TEST_CHECK(p.seen[0].weight == (double)now);
    TEST_CHECK_STR(p.seen[2].id, "tee");
    TEST_CHECK_STR(p.purchased[0].id, "mug");
    /* kitchen: purchase 8 + click 2; apparel: view 1 (a dismissal adds
     * nothing to a category). */
    TEST_REQUIRE(p.n_categories == 2 && p.n_brands == 2);
    TEST_CHECK_STR(p.categories[0].id, "kitchen");
    TEST_CHECK(fabs(p.categories[0].weight - (8.0 * pow(2, -1000.0 / 3600000) + 2.0)) < 1e-6);
    TEST_CHECK_STR(p.brands[0].id, "Brew");
    TEST_CHECK(p.n_dismissed == 1 && p.n_items == 3);
    profile_clear(&p);
    /* Deleting erases every key of the user; the profile hash keeps the
     * erasure mark. */
    TEST_CHECK(profile_delete(ps, "fay", err, sizeof(err)) == 1);
    redisReply *r = raw("KEYS %s", "aisle:u:{fay}:*");
    TEST_CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
               strcmp(r->element[0]->str, "aisle:u:{fay}:profile") == 0);
    if (r) freeReplyObject(r);
    r = raw("HKEYS %s", "aisle:u:{fay}:profile");
    TEST_CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
               strcmp(r->element[0]->str, "erased") == 0);
    if (r) freeReplyObject(r);
    TEST_CHECK(profile_delete(ps, "fay", err, sizeof(err)) == 0);
    profile_store_close(ps);
}

/* A follow marks its creator followed, with its time, apart from the
 * creator's weight, which engagement adds to as well. */
static void test_follows(void) {
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[3] = {
        sig("g1", "gus", AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR, "", now - 1000),
        sig("g2", "gus", AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR, "", now),
        sig("g3", "gus", AISLE__V1__SIGNAL_KIND__VIEW, "tee", now),
    };
    profile_event e[3] = {{&s[0], NULL, NULL, NULL, -1, 0},
                          {&s[1], NULL, NULL, NULL, -1, 0},
                          {&s[2], NULL, NULL, NULL, -1, 0}};
    profile p;
    char err[256];
    s[1].creator_id = "cr2";
    s[2].creator_id = "cr3"; /* viewed, not followed */
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, e, 3, NULL, err, sizeof(err)) == 3);
    TEST_REQUIRE(profile_get(ps, "gus", now, 10, &p, err, sizeof(err)) == 0);
    TEST_REQUIRE(p.n_follows == 2);
    TEST_CHECK_STR(p.follows[0].id, "cr2"); /* the latest follow first, with its time */
    TEST_CHECK(p.follows[0].weight == (double)now);
    TEST_CHECK_STR(p.follows[1].id, "cr");
    TEST_CHECK(p.n_creators == 3 && p.n_items == 1);
    profile_clear(&p);
    profile_store_close(ps);
}

static void test_ttl_is_set_on_every_key(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s = sig("t1", "tim", AISLE__V1__SIGNAL_KIND__PURCHASE, "pen", now);
    profile_event e = {&s, "office", "Bic", "aisle.signals:0", 7, 0};
    char err[256];
    redisReply *keys, *ttl;
    profile_config_default(&cfg);
    cfg.ttl_s = 30 * 86400;
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    TEST_REQUIRE(profile_apply(ps, &e, 1, NULL, err, sizeof(err)) == 1);
    keys = raw("KEYS %s", "aisle:u:{tim}:*");
    TEST_REQUIRE(keys && keys->type == REDIS_REPLY_ARRAY);
    TEST_CHECK(keys->elements == 2); /* the profile hash and the event ids */
    for (size_t i = 0; i < keys->elements; i++) {
        ttl = raw("TTL %s", keys->element[i]->str);
        TEST_CHECK(ttl && ttl->type == REDIS_REPLY_INTEGER && ttl->integer > 29 * 86400 &&
                   ttl->integer <= 30 * 86400);
        if (ttl) freeReplyObject(ttl);
    }
    freeReplyObject(keys);
    profile_store_close(ps);
}

static void test_kind_weights(void) {
    profile_config cfg;
    profile_store *ps;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s = sig("k1", "kim", AISLE__V1__SIGNAL_KIND__CLICK, "k", now);
    Aisle__V1__Signal *ptr = &s;
    profile p;
    char err[256];
    profile_config_default(&cfg);
    TEST_CHECK(profile_parse_kind_weights(&cfg, "Click=7.5,dismiss=9", err, sizeof(err)) == 0);
    TEST_CHECK(cfg.kind_weights[AISLE__V1__SIGNAL_KIND__CLICK] == 7.5);
    TEST_CHECK(cfg.kind_weights[AISLE__V1__SIGNAL_KIND__DISMISS] == 9);
    TEST_CHECK(cfg.kind_weights[AISLE__V1__SIGNAL_KIND__VIEW] == 1);
    TEST_CHECK(profile_parse_kind_weights(&cfg, "view=0", err, sizeof(err)) == -1 &&
               strstr(err, "view"));
    TEST_CHECK(profile_parse_kind_weights(&cfg, "wink=2", err, sizeof(err)) == -1 &&
               strstr(err, "wink"));
    TEST_CHECK(profile_parse_kind_weights(&cfg, "view=2,click", err, sizeof(err)) == -1);
    TEST_CHECK(profile_parse_kind_weights(&cfg, "view=2x", err, sizeof(err)) == -1);
    TEST_CHECK(cfg.kind_weights[AISLE__V1__SIGNAL_KIND__VIEW] == 1); /* unchanged */
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &ps, err, sizeof(err)) == 0);
    TEST_REQUIRE(apply(ps, &ptr, 1) == 1);
    TEST_REQUIRE(profile_get(ps, "kim", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 1 && fabs(p.items[0].weight - 7.5) < 1e-6);
    profile_clear(&p);
    profile_store_close(ps);
}

static void test_bad_addresses(void) {
    profile_config cfg;
    profile_store *ps;
    char err[256];
    profile_config_default(&cfg);
    TEST_CHECK(profile_store_open("nocolon", &cfg, &ps, err, sizeof(err)) == -1);
    TEST_CHECK(profile_store_open("h:99999", &cfg, &ps, err, sizeof(err)) == -1);
    cfg.max_items = 0;
    TEST_CHECK(profile_store_open("h:1", &cfg, &ps, err, sizeof(err)) == -1);
}

/* The write the run asked for is the one Redis saw: AISLE.APPLY with the
 * module loaded (AISLE_REDIS_MODULE), the script without it; and a store
 * told not to use the module writes with the script even where it is. */
static void test_write_path(void) {
    const char *module = getenv("AISLE_REDIS_MODULE");
    int with_module = module && *module;
    profile_store *ps = open_store(10);
    profile_config cfg;
    profile_store *lua;
    Aisle__V1__Signal a = sig("wp-1", "wp-user", 1, "wp-item", clock_wall_ms()),
                      b = sig("wp-2", "wp-user", 1, "wp-item", clock_wall_ms());
    Aisle__V1__Signal *one[] = {&a}, *two[] = {&b};
    redisReply *r;
    char err[256];
    TEST_CHECK(ps != NULL);
    freeReplyObject(raw("CONFIG RESETSTAT", NULL));
    TEST_CHECK(apply(ps, one, 1) == 1);
    r = raw("INFO %s", "commandstats");
    TEST_CHECK(r && r->type == REDIS_REPLY_STRING);
    TEST_CHECK((strstr(r->str, "cmdstat_aisle.apply:calls=1,") != NULL) == with_module);
    TEST_CHECK((strstr(r->str, "cmdstat_aisle.popular:calls=1,") != NULL) == with_module);
    TEST_CHECK((strstr(r->str, "cmdstat_evalsha:calls=2,") != NULL) == !with_module);
    freeReplyObject(r);
    profile_config_default(&cfg);
    cfg.half_life_s = 3600;
    cfg.use_module = 0;
    TEST_CHECK(profile_store_open(rp.addr, &cfg, &lua, err, sizeof(err)) == 0);
    freeReplyObject(raw("CONFIG RESETSTAT", NULL));
    TEST_CHECK(apply(lua, two, 1) == 1);
    TEST_CHECK(apply(ps, two, 1) == 0); /* either write sees the other's ids */
    r = raw("INFO %s", "commandstats");
    /* Two from the script store; without the module ps's duplicate is a third. */
    TEST_CHECK(r && strstr(r->str, with_module ? "cmdstat_evalsha:calls=2,"
                                               : "cmdstat_evalsha:calls=3,"));
    freeReplyObject(r);
    profile_store_close(lua);
    profile_store_close(ps);
}

/* The module's commands answer bad arguments with an error, never
 * touching the keys, and the server stays up. */
static void test_module_refuses_bad_arguments(void) {
    static const char *const bad[] = {
        "AISLE.APPLY %s",
        "AISLE.APPLY 3 a b c %s",
        "AISLE.APPLY 2 a b 1 1 1 1 1 1 1 1 1 1 1 %s",  /* a head argument not a number */
        "AISLE.APPLY 2 a b 1 1 1 1 1 1 1 1 1 1 1 1 o:t:0 %s 0 1 1", /* a run cut short */
        "AISLE.APPLY 2 a b 1 1 1 1 1 1 1 1 1 1 1 1 o:t:0 1 0 1 1 e x %s",
        "AISLE.POPULAR 2 k 10 m %s",
        "AISLE.POPULAR 1 k 10 m %s",
    };
    const char *module = getenv("AISLE_REDIS_MODULE");
    redisReply *r;
    if (!module || !*module) return;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = raw(bad[i], "x");
        TEST_CHECK(r && r->type == REDIS_REPLY_ERROR);
        if (r) freeReplyObject(r);
    }
    r = raw("EXISTS %s", "a");
    TEST_CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    if (r) freeReplyObject(r);
    r = raw("PING %s", "up");
    TEST_CHECK(r && r->type == REDIS_REPLY_STRING);
    if (r) freeReplyObject(r);
}

/* The stored value of key as bytes into buf (at most cap), or -1 when it
 * is not a string. */
static long get_bytes(const char *key, char *buf, size_t cap) {
    redisReply *r = raw("GET %s", key);
    long n = r && r->type == REDIS_REPLY_STRING && r->len <= cap ? (long)r->len : -1;
    if (n > 0) memcpy(buf, r->str, (size_t)n);
    if (r) freeReplyObject(r);
    return n;
}

static void set_bytes(const char *key, const char *buf, size_t len) {
    redisContext *c = redisConnect("127.0.0.1", rp.port);
    redisReply *r = c && !c->err ? redisCommand(c, "SET %s %b", key, buf, len) : NULL;
    TEST_CHECK(r && r->type == REDIS_REPLY_STATUS);
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
}

/* Two profiles read the same: every list, id and weight. */
static int same_profile(const profile *a, const profile *b) {
    const profile_entry *la[] = {a->items, a->creators, a->categories, a->seen, a->follows},
                        *lb[] = {b->items, b->creators, b->categories, b->seen, b->follows};
    const size_t na[] = {a->n_items, a->n_creators, a->n_categories, a->n_seen, a->n_follows},
                 nb[] = {b->n_items, b->n_creators, b->n_categories, b->n_seen, b->n_follows};
    if (a->last_active_ms != b->last_active_ms) return 0;
    for (size_t k = 0; k < sizeof(na) / sizeof(na[0]); k++) {
        if (na[k] != nb[k]) return 0;
        for (size_t i = 0; i < na[k]; i++)
            if (strcmp(la[k][i].id, lb[k][i].id) || fabs(la[k][i].weight - lb[k][i].weight) > 1e-9)
                return 0;
    }
    return 1;
}

/* Applies e[0..n) and checks the verdicts: *want_refused for the events
 * of user `bad`, 0 for the others; returns what profile_apply returned. */
static int apply_expecting(profile_store *ps, const profile_event *e, size_t n,
                           const char *bad, char want_refused) {
    char refused[8], err[256];
    int rc;
    assert(n <= sizeof(refused));
    memset(refused, '?', sizeof(refused));
    rc = profile_apply(ps, e, n, refused, err, sizeof(err));
    for (size_t i = 0; i < n && rc >= 0; i++)
        TEST_CHECK(refused[i] == (strcmp(e[i].sig->user_id, bad) ? 0 : want_refused));
    return rc;
}

/* A corrupt or truncated profile (a record cut at every length, a bad
 * magic) is a clear error on read, never a crash; on a write its user's
 * events are refused with the check's verdict while another user's in the
 * same call apply, and the refused run leaves the record and the event ids
 * as they were. */
static void test_corrupt_record_refuses_only_its_user(void) {
    static const char key[] = "aisle:u:{cora}:profile";
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s = sig("co1", "cora", AISLE__V1__SIGNAL_KIND__VIEW, "it", now),
                      s2 = sig("co2", "cora", AISLE__V1__SIGNAL_KIND__VIEW, "it2", now),
                      g = sig("go1", "gina", AISLE__V1__SIGNAL_KIND__VIEW, "it", now);
    profile_event e = {&s, "cat", "brand", "aisle.signals:1", 3, 0},
                  two[2] = {{&s2, "cat", "brand", "aisle.signals:1", 4, 0},
                            {&g, "cat", "brand", "aisle.signals:1", 5, 0}};
    char rec[4096], back[4096], why[600], err[256];
    long len;
    int applied = 0;
    profile p;
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, &e, 1, NULL, err, sizeof(err)) == 1);
    if ((len = get_bytes(key, rec, sizeof(rec))) < 0) {
        TEST_CHECK(!getenv("AISLE_REDIS_MODULE"));
        memcpy(rec, "AIPR\1", 5); /* as a module would have left it, broken */
        len = 0;
    }
    for (long cut = 0; cut < len; cut += cut < 64 ? 1 : 7) {
        set_bytes(key, rec, (size_t)cut);
        TEST_CHECK(profile_get(ps, "cora", now, 10, &p, err, sizeof(err)) == AISLE_EFORMAT &&
                   strstr(err, "corrupt"));
        /* gina's event applies once, in the first call; cora's never. */
        applied += apply_expecting(ps, two, 2, "cora", PRECORD_REFUSED_RECORD[0]);
        TEST_CHECK(get_bytes(key, back, sizeof(back)) == cut && memcmp(back, rec, (size_t)cut) == 0);
    }
    TEST_CHECK(applied == (len > 0));
    if (len > 0) rec[0] = 'X';
    set_bytes(key, rec, (size_t)(len > 0 ? len : 5));
    TEST_CHECK(profile_get(ps, "cora", now, 10, &p, err, sizeof(err)) == AISLE_EFORMAT);
    TEST_CHECK(apply_expecting(ps, two, 2, "cora", PRECORD_REFUSED_RECORD[0]) == (len == 0));
    TEST_CHECK(profile_ping(ps, err, sizeof(err)) == AISLE_OK); /* the server is up */
    TEST_REQUIRE(profile_get(ps, "gina", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 1 && fabs(p.items[0].weight - 1) < 1e-9);
    profile_clear(&p);
    profile_refusal("cora", PRECORD_REFUSED_RECORD[0], why, sizeof(why));
    TEST_CHECK(strstr(why, key) && strstr(why, "corrupt profile record"));
    freeReplyObject(raw("DEL %s", key));
    /* Refused, co2 was not remembered: it applies now. */
    TEST_CHECK(profile_apply(ps, two, 1, NULL, err, sizeof(err)) == 1);
    profile_store_close(ps);
}

/* A hash whose value is not a number, and a profile key of another type,
 * are refused with their own verdicts by either write. */
static void test_unreadable_keys_are_refused(void) {
    static const char key[] = "aisle:u:{hana}:profile";
    profile_store *ps = open_store(100);
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s = sig("ha1", "hana", AISLE__V1__SIGNAL_KIND__VIEW, "it", now),
                      g = sig("ha2", "gil", AISLE__V1__SIGNAL_KIND__VIEW, "it", now);
    profile_event two[2] = {{&s, "cat", "brand", "aisle.signals:2", 4, 0},
                            {&g, "cat", "brand", "aisle.signals:2", 5, 0}};
    redisReply *r;
    char why[600];
    TEST_REQUIRE(ps != NULL);
    freeReplyObject(raw("HSET %s n not-a-number", key));
    TEST_CHECK(apply_expecting(ps, two, 2, "hana", PRECORD_REFUSED_HASH[0]) == 1);
    r = raw("HGET %s n", key);
    TEST_CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "not-a-number") == 0);
    if (r) freeReplyObject(r);
    freeReplyObject(raw("DEL %s", key));
    freeReplyObject(raw("RPUSH %s x", key));
    TEST_CHECK(apply_expecting(ps, two, 2, "hana", PRECORD_REFUSED_TYPE[0]) == 0);
    freeReplyObject(raw("DEL %s", key));
    freeReplyObject(raw("SET %s x", "aisle:u:{hana}:events"));
    TEST_CHECK(apply_expecting(ps, two, 1, "hana", PRECORD_REFUSED_TYPE[0]) == 0);
    profile_refusal("hana", PRECORD_REFUSED_TYPE[0], why, sizeof(why));
    TEST_CHECK(strstr(why, "aisle:u:{hana}:events") && strstr(why, "another Redis type"));
    freeReplyObject(raw("DEL %s", "aisle:u:{hana}:events"));
    TEST_CHECK(profile_apply(ps, two, 1, NULL, why, sizeof(why)) == 1);
    profile_store_close(ps);
}

/* Either write takes over a profile the other wrote, in its own layout,
 * keeping the profile, its marks and its expiry: the script's hash becomes
 * a record with the module's first write, a record becomes a hash again
 * with the script's. */
static void test_layouts_migrate_both_ways(void) {
    static const char key[] = "aisle:u:{mig}:profile";
    profile_config cfg;
    profile_store *lua, *mod;
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[3] = {sig("mg1", "mig", AISLE__V1__SIGNAL_KIND__VIEW, "a", now - 2000),
                              sig("mg2", "mig", AISLE__V1__SIGNAL_KIND__CLICK, "b", now - 1000),
                              sig("mg3", "mig", AISLE__V1__SIGNAL_KIND__PURCHASE, "c", now)};
    profile_event e[3];
    profile p, q;
    char err[256];
    redisReply *r;
    for (int i = 0; i < 3; i++) e[i] = (profile_event){&s[i], "cat", "br", "aisle.signals:2", i, 0};
    profile_config_default(&cfg);
    cfg.half_life_s = 3600;
    cfg.ttl_s = 5000;
    cfg.use_module = 0;
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &lua, err, sizeof(err)) == 0);
    cfg.use_module = 1;
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg, &mod, err, sizeof(err)) == 0);
    TEST_REQUIRE(profile_apply(lua, &e[0], 1, NULL, err, sizeof(err)) == 1);
    TEST_REQUIRE(profile_get(lua, "mig", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(profile_apply(mod, &e[0], 1, NULL, err, sizeof(err)) == 0); /* a replay, by offset */
    TEST_REQUIRE(profile_get(mod, "mig", now, 10, &q, err, sizeof(err)) == 0);
    TEST_CHECK(same_profile(&p, &q));
    profile_clear(&q);
    r = raw("TYPE %s", key);
    TEST_CHECK(r && strcmp(r->str, getenv("AISLE_REDIS_MODULE") ? "string" : "hash") == 0);
    freeReplyObject(r);
    r = raw("TTL %s", key);
    TEST_CHECK(r && r->integer > 4000 && r->integer <= 5000);
    freeReplyObject(r);
    TEST_CHECK(profile_apply(mod, &e[1], 1, NULL, err, sizeof(err)) == 1);
    TEST_CHECK(profile_apply(lua, &e[1], 1, NULL, err, sizeof(err)) == 0);
    TEST_CHECK(profile_apply(lua, &e[2], 1, NULL, err, sizeof(err)) == 1);
    r = raw("TYPE %s", key);
    TEST_CHECK(r && strcmp(r->str, "hash") == 0);
    freeReplyObject(r);
    profile_clear(&p);
    TEST_REQUIRE(profile_get(lua, "mig", now, 10, &p, err, sizeof(err)) == 0);
    TEST_CHECK(p.n_items == 3 && strcmp(p.items[0].id, "c") == 0 &&
               fabs(p.items[0].weight - 8) < 1e-9);
    TEST_CHECK(stored_get(key, "o:aisle.signals:2") == 2 && stored_get(key, "n") == 3);
    profile_clear(&p);
    profile_store_close(lua);
    profile_store_close(mod);
}

/* Restarts the test's redis-server, with the module or without it. The
 * test runs in its own directory (main), where a SAVE leaves dump.rdb for
 * the next start to load. */
static void restart_redis(int with_module, const char *module) {
    char err[256];
    redisproc_stop(&rp);
    if (!with_module) unsetenv("AISLE_REDIS_MODULE");
    TEST_REQUIRE(redisproc_start(&rp, err, sizeof(err)) == 0);
    if (module) setenv("AISLE_REDIS_MODULE", module, 1);
}

/* A profile and its event ids survive a restart from the RDB file and
 * read the same; a record loads into a Redis without the module too, and
 * the script then writes on from it. */
static void test_profile_survives_rdb_restart(void) {
    const char *env = getenv("AISLE_REDIS_MODULE");
    char module[4096];
    int64_t now = clock_wall_ms();
    Aisle__V1__Signal s[2] = {sig("rd1", "rdb", AISLE__V1__SIGNAL_KIND__VIEW, "x", now),
                              sig("rd2", "rdb", AISLE__V1__SIGNAL_KIND__LIKE, "y", now)};
    profile_event e[2] = {{&s[0], "cat", "br", "aisle.signals:5", 10, 0},
                          {&s[1], "cat", "br", "aisle.signals:5", 11, 0}};
    profile_store *ps = open_store(100);
    profile p, q;
    char err[256];
    snprintf(module, sizeof(module), "%s", env ? env : "");
    TEST_REQUIRE(ps != NULL);
    TEST_REQUIRE(profile_apply(ps, e, 1, NULL, err, sizeof(err)) == 1);
    TEST_REQUIRE(profile_get(ps, "rdb", now, 10, &p, err, sizeof(err)) == 0);
    profile_store_close(ps);
    freeReplyObject(raw("SAVE", NULL));
    for (int with_module = 1; with_module >= 0; with_module--) {
        restart_redis(with_module, env ? module : NULL);
        TEST_REQUIRE((ps = open_store(100)) != NULL);
        TEST_REQUIRE(profile_get(ps, "rdb", now, 10, &q, err, sizeof(err)) == 0);
        TEST_CHECK(same_profile(&p, &q) && q.n_items == 1);
        profile_clear(&q);
        TEST_CHECK(profile_apply(ps, e, 1, NULL, err, sizeof(err)) == 0); /* remembered */
        profile_store_close(ps);
    }
    /* Without the module: the script takes the record over. */
    TEST_REQUIRE((ps = open_store(100)) != NULL);
    TEST_CHECK(profile_apply(ps, e, 2, NULL, err, sizeof(err)) == 1);
    TEST_REQUIRE(profile_get(ps, "rdb", now, 10, &q, err, sizeof(err)) == 0);
    TEST_CHECK(q.n_items == 2 && strcmp(q.items[0].id, "y") == 0);
    profile_clear(&q);
    profile_clear(&p);
    profile_store_close(ps);
    restart_redis(1, env ? module : NULL);
}

int main(void) {
    char err[256], module[4096];
    const char *dir = getenv("TEST_TMPDIR");
    /* The server's files (dump.rdb) go into the test's own directory; the
     * module's path, relative to where the test started, is made absolute
     * first. */
    if (getenv("AISLE_REDIS_MODULE") && *getenv("AISLE_REDIS_MODULE") &&
        realpath(getenv("AISLE_REDIS_MODULE"), module))
        setenv("AISLE_REDIS_MODULE", module, 1);
    if (dir && chdir(dir) != 0) {
        fprintf(stderr, "cannot enter %s\n", dir);
        return 1;
    }
    if (redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot start redis-server: %s\n", err);
        return 1;
    }
    TEST_RUN(test_apply_dedup_and_order);
    TEST_RUN(test_bounded_and_unknown);
    TEST_RUN(test_bounded_across_calls);
    TEST_RUN(test_check_id);
    TEST_RUN(test_key_tag_escapes_braces);
    TEST_RUN(test_trimming_is_amortized);
    TEST_RUN(test_landmark_moves_with_time);
    TEST_RUN(test_summed_runs);
    TEST_RUN(test_popular_long_batch);
    TEST_RUN(test_erasure_outlives_replay);
    TEST_RUN(test_meta_fields_come_first);
    TEST_RUN(test_popular_counts_only_new_positive_events);
    TEST_RUN(test_popular_summed_until_flushed);
    TEST_RUN(test_trending_per_category);
    TEST_RUN(test_redis_down_is_an_error_then_recovers);
    TEST_RUN(test_offsets_catch_replays_beyond_the_id_window);
    TEST_RUN(test_seen_purchased_categories_brands);
    TEST_RUN(test_follows);
    TEST_RUN(test_ttl_is_set_on_every_key);
    TEST_RUN(test_kind_weights);
    TEST_RUN(test_bad_addresses);
    TEST_RUN(test_write_path);
    TEST_RUN(test_module_refuses_bad_arguments);
    TEST_RUN(test_corrupt_record_refuses_only_its_user);
    TEST_RUN(test_unreadable_keys_are_refused);
    TEST_RUN(test_layouts_migrate_both_ways);
    TEST_RUN(test_profile_survives_rdb_restart);
    redisproc_stop(&rp);
    return test_summary();
}
