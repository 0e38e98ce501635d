/* Tests for services/shop's answer pipeline without a transport: a real
 * redis-server holds the profile, a small catalog the products, and a sink
 * records the chunks. Checks the order (products, text, done), that bad
 * requests fail before anything is sent with AISLE_EINVAL, that a price
 * bound is honoured, and that contemplating mode reads the profile once
 * for all its sub-agents. */
#include "services/shop/shop.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/devtools/redisproc.h"
#include "tests/test.h"

#define DIM 4

static redisproc rp;

typedef struct sink_log {
    int chunks, items, agents, done, failed, text_after_done;
    int64_t max_price;
    char text[4096];
} sink_log;

static int sink_send(void *ud, const Aisle__V1__ShopChunk *ch) {
    sink_log *l = ud;
    if (l->done) l->text_after_done = 1;
    l->chunks++;
    l->items += (int)ch->n_items;
    l->agents += (int)ch->n_agents;
    for (size_t i = 0; i < ch->n_items; i++)
        if (ch->items[i]->price_cents > l->max_price) l->max_price = ch->items[i]->price_cents;
    strncat(l->text, ch->text, sizeof(l->text) - strlen(l->text) - 1);
    if (ch->done) l->done = 1;
    return 0;
}

static int sink_cancelled(void *ud) {
    (void)ud;
    return 0;
}

static void sink_fail(void *ud, int code, const char *msg) {
    (void)msg;
    ((sink_log *)ud)->failed = code;
}

/* Twelve items: coffee gear at $10..$60 along one axis, audio along another. */
static catalog *make_catalog(void) {
    catalog_config cfg;
    catalog *c;
    char id[16], title[32], err[256];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (catalog_new(&cfg, &c, err, sizeof(err)) != AISLE_OK) return NULL;
    for (int i = 0; i < 12; i++) {
        float v[DIM] = {0};
        int coffee = i < 6;
        v[coffee ? 0 : 1] = 1.0f + 0.05f * (float)i;
        snprintf(id, sizeof(id), "i%d", i);
        snprintf(title, sizeof(title), "%s %d", coffee ? "Dripper" : "Speaker", i);
        catalog_item it = {id, title, coffee ? "cr1" : "cr2", coffee ? "coffee" : "audio",
                           coffee ? "Crema" : "Tone", 1000 * (i % 6 + 1), 1, ""};
        if (catalog_upsert(c, &it, v, DIM, err, sizeof(err)) != AISLE_OK) return NULL;
    }
    return c;
}

static long long profile_reads(void) {
    redisContext *rc = redisConnect("127.0.0.1", rp.port);
    redisReply *r = rc && !rc->err ? redisCommand(rc, "INFO commandstats") : NULL;
    long long calls = 0;
    const char *p;
    /* A profile read is one GET of the user's profile record or one
     * HGETALL of its hash (services/profile); nothing else in a Shop call
     * sends either outside a script. */
    static const char *const reads[] = {"cmdstat_get:calls=", "cmdstat_hgetall:calls="};
    for (size_t i = 0; i < 2; i++)
        if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, reads[i])))
            calls += atoll(p + strlen(reads[i]));
    if (r) freeReplyObject(r);
    if (rc) redisFree(rc);
    return calls;
}

static void ask(shop *sh, catalog *cat, profile_store *ps, const char *user, const char *query,
                int mode, int limit, sink_log *l) {
    shop_sink o = {sink_send, sink_cancelled, sink_fail, l};
    shop_call call = {.cat = cat, .profiles = ps, .deadline_ms = clock_mono_ms() + 5000,
                      .request_id = "test"};
    Aisle__V1__ShopRequest req = AISLE__V1__SHOP_REQUEST__INIT;
    memset(l, 0, sizeof(*l));
    req.user_id = (char *)user;
    req.query = (char *)query;
    req.mode = mode;
    req.limit = limit;
    shop_answer(sh, &call, &req, &o);
}

static void test_pipeline(void) {
    catalog *cat = make_catalog();
    shop_config cfg;
    shop *sh;
    profile_store *ps;
    sink_log l;
    char err[256];
    long long before;
    TEST_REQUIRE(cat != NULL);
    shop_config_default(&cfg);
    cfg.redis = rp.addr;
    TEST_REQUIRE(shop_new(&cfg, &sh, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(profile_store_open(rp.addr, &cfg.profile, &ps, err, sizeof(err)) == AISLE_OK);

    ask(sh, cat, ps, "", "coffee", AISLE__V1__SHOP_MODE__SHOP_MODE_FAST, 3, &l);
    TEST_CHECK(l.failed == AISLE_EINVAL && l.chunks == 0);
    ask(sh, cat, ps, "u1", "coffee", AISLE__V1__SHOP_MODE__SHOP_MODE_FAST, 99, &l);
    TEST_CHECK(l.failed == AISLE_EINVAL && l.chunks == 0);

    ask(sh, cat, ps, "u1", "a coffee gift under $30", AISLE__V1__SHOP_MODE__SHOP_MODE_FAST, 3,
        &l);
    TEST_CHECK(l.failed == 0 && l.done && !l.text_after_done);
    TEST_CHECK(l.items == 3 && l.max_price <= 3000);
    TEST_CHECK(strstr(l.text, "Dripper") != NULL);

    before = profile_reads();
    ask(sh, cat, ps, "u1", "coffee", AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING, 4, &l);
    TEST_CHECK(l.failed == 0 && l.done && l.agents == 5 && l.items > 0);
    /* One profile read for the whole call, whatever the agents do. */
    TEST_CHECK(profile_reads() - before == 1);

    profile_store_close(ps);
    shop_free(sh);
    catalog_free(cat);
}

int main(void) {
    char err[256];
    if (redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "redis-server: %s\n", err);
        return 1;
    }
    TEST_RUN(test_pipeline);
    redisproc_stop(&rp);
    return test_summary();
}
