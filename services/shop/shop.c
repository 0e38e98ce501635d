/* shop: Recommender/Shop request handling, retrieval, sub-agents and text. */
#include "services/shop/shop.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/aisle.pb-c.h"
#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/obs/hooks.h"
#include "services/shop/compose.h"
#include "services/shop/council.h"
#include "services/base/log.h"
#include "services/shop/query.h"

#define SHOP_POOL_MAX 16        /* idle Redis connections kept for sub-agents */
#define SHOP_VOCAB_TTL_MS 1000  /* how stale the catalog's names may be */
#define SHOP_WIDE 4             /* budget and closest items look this much further */
#define SHOP_SEND_RESERVE_MS 20 /* kept back at the end of a call for the last chunk */

enum { SHOP_BEST, SHOP_BUDGET, SHOP_CREATORS, SHOP_NEW, SHOP_BRAND, SHOP_AGENTS };
static const char *const shop_angles[SHOP_AGENTS] = {
    "best match", "budget", "favourite creators", "something new", "brand loyalty"};

/* The catalog's names at one moment, shared by the requests that use it. */
typedef struct shop_vocab {
    query_vocab *v;
    int refs; /* under shop.lock */
    int64_t built_ms;
} shop_vocab;

struct shop {
    shop_config cfg;
    pthread_mutex_t lock; /* guards vocab and idle */
    shop_vocab *vocab;
    profile_store *idle[SHOP_POOL_MAX];
    int n_idle;
    council_group agents;
    atomic_uint_fast64_t next_id;
};

void shop_config_default(shop_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    profile_config_default(&cfg->profile);
    cfg->max_tokens = 96;
    cfg->contemplate_ms = 1500;
    cfg->max_agents = 32;
    cfg->default_deadline_ms = 10000;
}

int shop_new(const shop_config *cfg, shop **out, char *err, size_t errlen) {
    shop *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    council_group_init(&s->agents, cfg->max_agents);
    atomic_init(&s->next_id, 1);
    *out = s;
    return AISLE_OK;
}

int shop_engine_load(const char *model_path, const char *tok_path, int threads,
                     const char *chat_template, shop_engine *e, char *err, size_t errlen) {
    int rc;
    memset(e, 0, sizeof(*e));
    if ((rc = model_load(model_path, &e->m, err, errlen)) != 0) return rc;
    if (tok_path)
        rc = tok_load_file(tok_path, model_get_config(e->m)->vocab_size, &e->tok, err, errlen);
    else if (model_gguf(e->m))
        rc = tok_load_gguf(model_gguf(e->m), &e->tok, err, errlen);
    else {
        snprintf(err, errlen, "%s carries no vocabulary: give a tokenizer", model_path);
        rc = AISLE_EINVAL;
    }
    if (rc == 0 && threads > 1 && tpool_new(threads, &e->pool) != 0) {
        snprintf(err, errlen, "cannot start %d model threads", threads);
        rc = AISLE_ENOMEM;
    }
    if (rc == 0)
        rc = speaker_new(e->m, e->tok, e->pool, COMPOSE_INSTRUCTIONS, chat_template, &e->speaker,
                         err, errlen);
    if (rc != 0) shop_engine_free(e);
    return rc;
}

void shop_engine_free(shop_engine *e) {
    speaker_free(e->speaker);
    tpool_free(e->pool);
    tok_free(e->tok);
    model_free(e->m);
    memset(e, 0, sizeof(*e));
}

static void shop_vocab_unref_locked(shop_vocab *sv) {
    if (sv && --sv->refs == 0) {
        query_vocab_free(sv->v);
        free(sv);
    }
}

void shop_free(shop *s) {
    if (!s) return;
    council_group_drain(&s->agents);
    for (int i = 0; i < s->n_idle; i++) profile_store_close(s->idle[i]);
    shop_vocab_unref_locked(s->vocab);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The catalog's names, rebuilt when older than SHOP_VOCAB_TTL_MS. NULL when
 * out of memory: the query is then read for prices only. */
static shop_vocab *shop_vocab_get(shop *s, catalog *cat) {
    shop_vocab *sv;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&s->lock);
    if (!s->vocab || now - s->vocab->built_ms >= SHOP_VOCAB_TTL_MS) {
        shop_vocab *fresh = calloc(1, sizeof(*fresh));
        if (fresh && query_vocab_build(cat, &fresh->v) == 0) {
            fresh->refs = 1;
            fresh->built_ms = now;
            shop_vocab_unref_locked(s->vocab);
            s->vocab = fresh;
        } else {
            free(fresh);
        }
    }
    if ((sv = s->vocab)) sv->refs++;
    pthread_mutex_unlock(&s->lock);
    return sv;
}

static void shop_vocab_put(shop *s, shop_vocab *sv) {
    pthread_mutex_lock(&s->lock);
    shop_vocab_unref_locked(sv);
    pthread_mutex_unlock(&s->lock);
}

/* A Redis connection for a sub-agent: profile stores are one per thread. */
static profile_store *shop_store_get(shop *s, char *err, size_t errlen) {
    profile_store *ps = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->n_idle) ps = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    if (!ps && profile_store_open(s->cfg.redis, &s->cfg.profile, &ps, err, errlen) != 0)
        return NULL;
    return ps;
}

static void shop_store_put(shop *s, profile_store *ps) {
    pthread_mutex_lock(&s->lock);
    if (s->n_idle < SHOP_POOL_MAX) {
        s->idle[s->n_idle++] = ps;
        ps = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    profile_store_close(ps);
}

static int shop_cheaper(const void *a, const void *b) {
    const rank_hit *x = a, *y = b;
    return (x->item.price_cents > y->item.price_cents) -
           (x->item.price_cents < y->item.price_cents);
}

/* How far a price lies outside q's bounds. */
static int64_t shop_price_gap(const query_constraints *q, int64_t cents) {
    if (q->max_price_cents && cents > q->max_price_cents) return cents - q->max_price_cents;
    if (q->min_price_cents && cents < q->min_price_cents) return q->min_price_cents - cents;
    return 0;
}

static int shop_closer(const void *a, const void *b, void *arg) {
    int64_t x = shop_price_gap(arg, ((const rank_hit *)a)->item.price_cents);
    int64_t y = shop_price_gap(arg, ((const rank_hit *)b)->item.price_cents);
    return (x > y) - (x < y);
}

static int shop_wide(int limit) {
    return limit * SHOP_WIDE < RANK_MAX_LIMIT ? limit * SHOP_WIDE : RANK_MAX_LIMIT;
}

/* Items for q. When none meets q, the closest: without the price bounds
 * first, then without any constraint, nearest the asked price first; *fit
 * says which. Every try ranks the same read of the profile. Returns
 * recommend_rank's code; the caller frees rr. */
static int shop_retrieve(catalog *cat, profile_store *ps, const recommend_user *user,
                         int limit, const query_constraints *q, rank_result *rr, int *fit,
                         char *err, size_t errlen) {
    query_constraints relaxed = *q;
    query_filter qf;
    int rc, priced = q->max_price_cents || q->min_price_cents;

    *fit = COMPOSE_FIT;
    query_to_filter(q, &qf);
    rc = recommend_rank(cat, ps, user, limit, &qf.f, rr, err, errlen);
    if (rc || rr->n || !query_constrained(q)) return rc;
    rank_result_free(rr);
    relaxed.max_price_cents = relaxed.min_price_cents = 0;
    *fit = COMPOSE_OUTSIDE_PRICE;
    if (priced && query_constrained(&relaxed)) {
        query_to_filter(&relaxed, &qf);
        rc = recommend_rank(cat, ps, user, shop_wide(limit), &qf.f, rr, err, errlen);
        if (rc || rr->n) goto sort;
        rank_result_free(rr);
    }
    if (!priced || query_constrained(&relaxed)) *fit = COMPOSE_OUTSIDE_ALL;
    rc = recommend_rank(cat, ps, user, shop_wide(limit), NULL, rr, err, errlen);
sort:
    if (rc == 0 && priced)
        qsort_r(rr->hits, rr->n, sizeof(*rr->hits), shop_closer, (void *)q);
    return rc;
}

/* --- sub-agents --- */

static void shop_agent_summary(council_agent *a) {
    char price[48], tail[256], more[32] = "";
    const rank_hit *h = a->n_picks ? &a->found.hits[0] : NULL;
    char angle[32];

    snprintf(angle, sizeof(angle), "%s", a->angle);
    angle[0] = (char)(angle[0] - 32);
    if (!h) {
        query_describe(&a->want, tail, sizeof(tail));
        snprintf(a->summary, sizeof(a->summary), "%s: nothing%s%s.", angle, *tail ? " " : "",
                 tail);
        return;
    }
    switch (a->kind) {
    case SHOP_BUDGET: snprintf(tail, sizeof(tail), "the cheapest that fit"); break;
    case SHOP_CREATORS:
        /* The pick is by the wanted creator: its catalog facts name them. */
        snprintf(tail, sizeof(tail), "by %s, %s", rank_creator_label(&h->item),
                 rank_profile_follows(&a->user->view, h->item.creator_id)
                     ? "whom you follow"
                     : "a creator you engage with");
        break;
    case SHOP_NEW:
        snprintf(tail, sizeof(tail), "in %s, a category you have not explored",
                 h->item.category);
        break;
    case SHOP_BRAND:
        snprintf(tail, sizeof(tail), "from %s, a brand you keep coming back to", a->want.brand);
        break;
    default: snprintf(tail, sizeof(tail), "the closest to what you asked"); break;
    }
    if (a->n_picks > 1) snprintf(more, sizeof(more), " and %zu more", a->n_picks - 1);
    query_money(h->item.price_cents, "$", 0, price, sizeof(price));
    snprintf(a->summary, sizeof(a->summary), "%s: %s (%s)%s, %s.", angle, h->item.title, price,
             more, tail);
}

/* One angle's retrieval, on its own thread and its own Redis connection. */
static void shop_agent_run(council_agent *a, void *arg) {
    shop *s = arg;
    query_filter qf;
    char err[256];
    profile_store *ps = shop_store_get(s, err, sizeof(err));
    int rc;

    if (!ps) {
        snprintf(a->summary, sizeof(a->summary), "%s: no connection (%s).", a->angle, err);
        return;
    }
    query_to_filter(&a->want, &qf);
    rc = recommend_rank(a->cat, ps, a->user,
                          a->kind == SHOP_BUDGET ? shop_wide(a->limit) : a->limit, &qf.f,
                          &a->found, err, sizeof(err));
    shop_store_put(s, ps);
    if (rc != 0) {
        snprintf(a->summary, sizeof(a->summary), "%s: retrieval failed (%s).", a->angle, err);
        return;
    }
    if (a->kind == SHOP_BUDGET)
        qsort(a->found.hits, a->found.n, sizeof(*a->found.hits), shop_cheaper);
    a->n_picks = a->found.n < (size_t)a->limit ? a->found.n : (size_t)a->limit;
    shop_agent_summary(a);
}

static void shop_skip(council_agent *a, const char *why) {
    a->skip = 1;
    snprintf(a->summary, sizeof(a->summary), "%c%s: %s.", a->angle[0] - 32, a->angle + 1, why);
}

/* The creator the creators angle looks for: the heaviest one the user
 * follows, else the one they followed last, else their heaviest; NULL when
 * the profile names none. */
static const char *shop_favourite_creator(const rank_profile *p) {
    for (size_t i = 0; i < p->n_creators; i++)
        if (p->creators[i].weight > 0 && rank_profile_follows(p, p->creators[i].id))
            return p->creators[i].id;
    if (p->n_follows) return p->follows[0].id;
    return p->n_creators ? p->creators[0].id : NULL;
}

/* Gives each angle what it looks for, from the user's profile: their
 * favourite creator, the categories they know, the brand they return to. */
static void shop_angles_from_profile(council *c, catalog *cat, const rank_profile *p) {
    council_agent *creators = council_agent_at(c, SHOP_CREATORS);
    council_agent *fresh = council_agent_at(c, SHOP_NEW);
    council_agent *brand = council_agent_at(c, SHOP_BRAND);
    const char *fav = shop_favourite_creator(p);
    double best = 0;

    if (*creators->want.creator_id)
        shop_skip(creators, "you named a creator already");
    else if (!fav || strlen(fav) >= QUERY_MAX_NAME)
        shop_skip(creators, "no favourite creator yet");
    else
        strcpy(creators->want.creator_id, fav);
    if (!p->n_items) shop_skip(fresh, "no history yet, so everything is new");
    if (*brand->want.brand) shop_skip(brand, "you named a brand already");

    catalog_read_begin(cat);
    for (size_t i = 0; i < p->n_items; i++) {
        size_t slot;
        const catalog_item *it;
        double w = 0;
        if (catalog_lookup(cat, p->items[i].id, &slot) != 0) continue;
        it = catalog_at(cat, slot);
        if (!fresh->skip) query_exclude(&fresh->want, it->category);
        /* The brand with the most weight over the profile's items. */
        for (size_t j = 0; j < p->n_items && *it->brand; j++) {
            size_t sj;
            if (catalog_lookup(cat, p->items[j].id, &sj) == 0 &&
                strcmp(catalog_at(cat, sj)->brand, it->brand) == 0)
                w += p->items[j].weight;
        }
        if (!brand->skip && w > best && strlen(it->brand) < QUERY_MAX_NAME) {
            best = w;
            strcpy(brand->want.brand, it->brand);
        }
    }
    catalog_read_end(cat);
    if (!brand->skip && best <= 0) shop_skip(brand, "no favourite brand yet");
    for (size_t i = 0; !fresh->skip && *fresh->want.category && i < fresh->want.n_exclude; i++)
        if (strcmp(fresh->want.exclude[i], fresh->want.category) == 0)
            shop_skip(fresh, "what you asked for is a category you know already");
}

/* Runs the sub-agents on user (taken: the council owns it from here)
 * until merge_at. Returns AISLE_OK with *out set (the caller releases it),
 * or AISLE_ENOMEM with err set. */
static int shop_contemplate(catalog *cat, shop *s, recommend_user *user,
                            const query_constraints *q, int limit, int64_t merge_at,
                            const shop_sink *o, council **out, char *err, size_t errlen) {
    council *c;

    *out = NULL;
    if (council_new(SHOP_AGENTS, user, &c) != AISLE_OK)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (int k = 0; k < SHOP_AGENTS; k++) {
        council_agent *a = council_agent_at(c, (size_t)k);
        a->angle = shop_angles[k];
        a->kind = k;
        a->cat = cat;
        a->want = *q;
        a->limit = limit;
    }
    shop_angles_from_profile(c, cat, &user->view);
    council_start(c, &s->agents, shop_agent_run, s);
    council_wait(c, merge_at, o->cancelled, o->ud);
    *out = c;
    return AISLE_OK;
}

/* --- the stream --- */

/* Sends a text chunk (done on the last). Returns the sink's code. */
static int shop_send_text(const shop_sink *o, const char *text, size_t len, int done) {
    Aisle__V1__ShopChunk ch = AISLE__V1__SHOP_CHUNK__INIT;
    char *copy = strndup(text, len);
    int rc;
    if (!copy) return -1;
    ch.text = copy;
    ch.done = done;
    rc = o->send(o->ud, &ch);
    free(copy);
    return rc;
}

static int shop_emit(void *o, const char *text, size_t len) {
    return shop_send_text(o, text, len, 0) != 0;
}

/* The deterministic answer, a line per chunk. Returns 0 or -1 (gone). */
static int shop_send_answer(const shop_sink *o, const compose_input *in) {
    char *text = compose_answer(in);
    int rc = 0;
    if (!text) return -1;
    for (char *line = text; *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        rc = shop_send_text(o, line, n, 0);
        line += n;
    }
    free(text);
    return rc;
}

typedef struct shop_talk {
    compose_filter *f;
    const shop_sink *o;
} shop_talk;

static int shop_piece(void *ud, const char *text, size_t len) {
    shop_talk *t = ud;
    return t->o->cancelled(t->o->ud) || compose_filter_feed(t->f, text, len) != 0;
}

/* The model's answer through the slot filter. Returns 0 when it was sent,
 * 1 when the deterministic answer should be sent instead, -1 when the
 * client is gone. */
static int shop_speak(shop *s, const shop_sink *o, const compose_input *in, const char *query,
                      const query_vocab *v, int64_t deadline_ms, uint64_t seed) {
    shop_talk talk = {NULL, o};
    char *request = compose_request(in, query);
    gen_params p;
    gen_stats gs = {0};
    int rc = 1;

    if (!request || compose_filter_new(in, v, shop_emit, (void *)o, &talk.f) != 0) goto out;
    gen_params_init(&p);
    p.temperature = 0.7f;
    p.topp = 0.9f;
    p.seed = seed;
    p.max_tokens = s->cfg.max_tokens;
    p.deadline_ns = (deadline_ms - SHOP_SEND_RESERVE_MS) * 1000000LL;
    if (speaker_say(s->cfg.engine->speaker, request, &p, shop_piece, &talk, &gs) != AISLE_OK)
        goto out; /* no room for the prompt: the composer answers */
    obs_model_generated(gs.n_tokens, gs.elapsed_ns);
    if (o->cancelled(o->ud)) {
        rc = -1;
        goto out;
    }
    rc = compose_filter_finish(talk.f);
    rc = rc < 0 || rc > 1 ? -1 : rc;
    log_debug("shop", "model answer: %d tokens, stop %s, %d slots cited, %d repairs%s",
              gs.n_tokens, gen_stop_name(gs.reason), compose_filter_cited(talk.f),
              compose_filter_repairs(talk.f), rc == 1 ? ", fell back" : "");
out:
    compose_filter_free(talk.f);
    free(request);
    return rc;
}

/* The first chunk: the products, and in contemplating mode the agents. */
static int shop_send_first(const shop_sink *o, const shop_call *call, const compose_input *in,
                           council *c) {
    Aisle__V1__ShopChunk ch = AISLE__V1__SHOP_CHUNK__INIT;
    Aisle__V1__ScoredItem items[SHOP_MAX_LIMIT], *iptr[SHOP_MAX_LIMIT];
    Aisle__V1__AgentContribution ag[SHOP_AGENTS], *aptr[SHOP_AGENTS];
    char *ids[SHOP_AGENTS][SHOP_MAX_LIMIT];
    static char late[] = "Did not finish in time; left out.";

    for (size_t i = 0; i < in->n; i++) {
        recommend_scored_item(&items[i], in->items[i]);
        iptr[i] = &items[i];
    }
    for (size_t k = 0; c && k < council_size(c); k++) {
        council_agent *a = council_agent_at(c, k);
        aisle__v1__agent_contribution__init(&ag[k]);
        ag[k].agent = (char *)a->angle;
        /* An agent that missed the merge may still be writing: read
         * nothing of it. */
        ag[k].summary = a->finished ? a->summary : late;
        for (size_t i = 0; a->finished && i < a->n_picks; i++) ids[k][i] = a->found.hits[i].item.item_id;
        ag[k].item_ids = ids[k];
        ag[k].n_item_ids = a->finished ? a->n_picks : 0;
        ag[k].used = a->used;
        aptr[k] = &ag[k];
    }
    ch.items = iptr;
    ch.n_items = in->n;
    ch.agents = aptr;
    ch.n_agents = c ? council_size(c) : 0;
    ch.request_id = (char *)call->request_id;
    ch.assignments = call->assignments;
    ch.n_assignments = call->n_assignments;
    return o->send(o->ud, &ch);
}

/* The products a call chose, and what owns them. */
typedef struct shop_choice {
    rank_result rr;   /* one retrieval's result */
    council *c;       /* or the sub-agents' (their picks point into it) */
    const rank_hit *picks[SHOP_MAX_LIMIT];
    const char *angles[SHOP_MAX_LIMIT];
    compose_input ci; /* over picks */
} shop_choice;

/* Checks the request; returns 0, or -1 with the reason in err. */
static int shop_validate(const Aisle__V1__ShopRequest *in, char *err, size_t errlen) {
    size_t qlen = strlen(in->query);
    if (!*in->user_id)
        snprintf(err, errlen, "user_id is empty");
    else if (strlen(in->user_id) > PROFILE_MAX_ID)
        snprintf(err, errlen, "user_id is longer than %d bytes", PROFILE_MAX_ID);
    else if (in->limit < 0 || in->limit > SHOP_MAX_LIMIT)
        snprintf(err, errlen, "limit %d is outside 0..%d", in->limit, SHOP_MAX_LIMIT);
    else if (qlen > QUERY_MAX_BYTES)
        snprintf(err, errlen, "query is %zu bytes; the most is %d", qlen, QUERY_MAX_BYTES);
    else if (in->mode != AISLE__V1__SHOP_MODE__SHOP_MODE_FAST &&
             in->mode != AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING)
        snprintf(err, errlen, "unknown mode %d", (int)in->mode);
    else
        return 0;
    return -1;
}

/* Reads the caller's profile once for the whole call; malloc'ed so a
 * council can take it. Returns AISLE_OK or the store's code, err set. */
static int shop_user(const shop_call *call, const char *user_id, recommend_user **out,
                     char *err, size_t errlen) {
    recommend_user *u = malloc(sizeof(*u));
    int rc;
    *out = NULL;
    if (!u) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = recommend_user_load(call->profiles, user_id, clock_wall_ms(), u, err, errlen))) {
        free(u);
        return rc;
    }
    *out = u;
    return AISLE_OK;
}

/* Whether a language model writes this call's answer. */
static int shop_speaks(const shop *s, const shop_call *call) {
    return s->cfg.engine && !call->composer_only;
}

/* Chooses the products: the sub-agents' merged picks in contemplating
 * mode (with the closest items when none fits), one retrieval in fast
 * mode. user is taken (a council may keep it past the call). */
static int shop_choose(shop *s, const shop_call *call, const Aisle__V1__ShopRequest *in,
                       recommend_user *user, const query_constraints *q, int limit,
                       int64_t deadline, const shop_sink *o, shop_choice *ch, char *err,
                       size_t errlen) {
    int64_t now = clock_mono_ms();
    int rc;
    if (in->mode != AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING) {
        rc = shop_retrieve(call->cat, call->profiles, user, limit, q, &ch->rr, &ch->ci.fit, err,
                           errlen);
        recommend_user_clear(user);
        free(user);
        return rc;
    }
    /* Leave the answer half of what is left when a model writes it. */
    int64_t budget = shop_speaks(s, call) ? (deadline - now) / 2
                                          : deadline - now - SHOP_SEND_RESERVE_MS;
    if (budget > s->cfg.contemplate_ms) budget = s->cfg.contemplate_ms;
    rc = shop_contemplate(call->cat, s, user, q, limit, now + budget, o, &ch->c, err, errlen);
    if (rc != AISLE_OK) return rc;
    ch->ci.n = council_merge(ch->c, (size_t)limit, ch->picks, ch->angles);
    ch->ci.angles = ch->angles;
    if (ch->ci.n == 0 && query_constrained(q)) {
        /* No angle found anything that fits: the closest, as in FAST. The
         * council still owns the user, and lives until the call ends. */
        rc = shop_retrieve(call->cat, call->profiles, user, limit, q, &ch->rr, &ch->ci.fit, err,
                           errlen);
        ch->ci.angles = NULL;
    }
    return rc;
}

void shop_answer(shop *s, const shop_call *call, const Aisle__V1__ShopRequest *in,
                 const shop_sink *o) {
    shop_vocab *sv = NULL;
    query_constraints q;
    shop_choice ch;
    recommend_user *user;
    char err[256];
    int64_t deadline;
    uint64_t id = atomic_fetch_add(&s->next_id, 1);
    int limit, rc;

    memset(&ch, 0, sizeof(ch));
    ch.ci = (compose_input){&q, ch.picks, NULL, 0, COMPOSE_FIT};
    if (shop_validate(in, err, sizeof(err)) != AISLE_OK) {
        o->fail(o->ud, AISLE_EINVAL, err);
        return;
    }
    deadline = call->deadline_ms != INT64_MAX ? call->deadline_ms
                                              : clock_mono_ms() + s->cfg.default_deadline_ms;
    limit = in->limit ? in->limit : SHOP_DEFAULT_LIMIT;
    sv = shop_vocab_get(s, call->cat);
    query_parse(in->query, sv ? sv->v : NULL, &q);
    if ((rc = shop_user(call, in->user_id, &user, err, sizeof(err))) == AISLE_OK)
        rc = shop_choose(s, call, in, user, &q, limit, deadline, o, &ch, err, sizeof(err));
    if (rc != AISLE_OK) {
        o->fail(o->ud, rc, err);
        goto out;
    }
    for (size_t i = 0; !ch.ci.angles && i < ch.rr.n && i < (size_t)limit; i++)
        ch.picks[ch.ci.n++] = &ch.rr.hits[i];

    if (call->chosen) call->chosen(call->chosen_arg, ch.picks, ch.ci.n, (int)in->mode);
    if (shop_send_first(o, call, &ch.ci, ch.c) != 0) goto out;
    rc = shop_speaks(s, call) ? shop_speak(s, o, &ch.ci, in->query, sv ? sv->v : NULL, deadline, id)
                              : 1;
    if (rc == 1) rc = shop_send_answer(o, &ch.ci);
    if (rc == 0) shop_send_text(o, "", 0, 1);
    log_debug("shop", "request_id=%s user=%s mode=%d items=%zu fit=%d", call->request_id,
              in->user_id, (int)in->mode, ch.ci.n, ch.ci.fit);
out:
    if (ch.c) council_release(ch.c);
    rank_result_free(&ch.rr);
    if (sv) shop_vocab_put(s, sv);
}
