/* shop: the Recommender/Shop streaming RPC, an answer in words grounded in
 * products chosen for the shopper.
 *
 * A request is validated (user_id, limit 0..20, query up to 1000 bytes)
 * before anything is sent. Its constraints (price, category, brand) are
 * read from the query against the catalog's own names and given to the
 * ranker; when nothing meets them the closest items are offered, labelled
 * as outside. FAST mode makes one retrieval; CONTEMPLATING mode runs
 * sub-agents in parallel (best match, budget, favourite creators,
 * something new, brand loyalty), each with its own retrieval and Redis
 * connection, and merges those that finish before the merge deadline.
 * The first chunk carries the products (and the agents' contributions);
 * the text follows in chunks, from the deterministic composer or, with a
 * model, from the language model through the slot filter (compose.h);
 * the last chunk has done set. Cancellation and the call's deadline stop
 * generation between tokens. */
#ifndef AISLE_SHOP_H
#define AISLE_SHOP_H

#include <stddef.h>

#include "aisle/v1/aisle.pb-c.h"
#include "model/gen.h"
#include "ranker/rank.h"
#include "services/shop/speaker.h"
#include "retrieval/catalog.h"
#include "services/profile/profile.h"

#define SHOP_DEFAULT_LIMIT 5
#define SHOP_MAX_LIMIT 20

/* A language model loaded to write answers. */
typedef struct shop_engine {
    model *m;
    tok_tokenizer *tok;
    tpool *pool;     /* NULL when it runs on one thread */
    speaker *speaker; /* decodes every call's answer together */
} shop_engine;

/* Loads the model at model_path with the llama2.c tokenizer at tok_path (or,
 * when tok_path is NULL, the vocabulary inside a GGUF model), a pool of
 * threads (1 = none) and the speaker that decodes for every call, with the
 * chat template named (NULL: the file's own). Returns 0, or a negative
 * AISLE_* code with err set. Free with shop_engine_free. */
int shop_engine_load(const char *model_path, const char *tok_path, int threads,
                     const char *chat_template, shop_engine *e, char *err, size_t errlen);
void shop_engine_free(shop_engine *e);

typedef struct shop_config {
    const char *redis;       /* HOST:PORT, for the sub-agents' connections */
    profile_config profile;
    /* Borrowed, must outlive the shop; NULL: the deterministic composer. */
    const shop_engine *engine;
    int max_tokens;          /* tokens a model answer may have; default 96 */
    int contemplate_ms;      /* sub-agents' time budget; default 1500 */
    int max_agents;          /* sub-agent threads running at once, over all
                                calls, late ones included; default 32 */
    int default_deadline_ms; /* for calls without a deadline; default 10000 */
} shop_config;

typedef struct shop shop;

/* Fills cfg with the defaults above (no model, no Redis address). */
void shop_config_default(shop_config *cfg);

/* Returns 0, or -1 with err set (no memory). Free with shop_free after the
 * server has stopped. */
int shop_new(const shop_config *cfg, shop **out, char *err, size_t errlen);
/* Waits for sub-agents still finishing, then frees s. NULL is a no-op. */
void shop_free(shop *s);

/* Where an answer goes: the gRPC stream, or the demo's terminal. */
typedef struct shop_sink {
    /* Takes one chunk; returns 0, or non-zero when the receiver is gone. */
    int (*send)(void *ud, const Aisle__V1__ShopChunk *chunk);
    int (*cancelled)(void *ud); /* non-zero once the receiver gave up */
    void (*fail)(void *ud, int code, const char *msg); /* an AISLE_* code */
    void *ud;
} shop_sink;

/* Told the products a call chose, in order, just before the first chunk
 * goes (the serving layer logs them as an exposure); picks are borrowed
 * for the duration of the call. mode is the request's ShopMode. */
typedef void (*shop_chosen_fn)(void *arg, const rank_hit *const *picks, size_t n, int mode);

/* What one call brings: the catalog, this thread's Redis connection, its
 * deadline (clock_mono_ms(); INT64_MAX for none) and its request id; the
 * user's experiment assignments, named in the first chunk, and who is told
 * the choice (both optional). */
typedef struct shop_call {
    catalog *cat;
    profile_store *profiles; /* used on the calling thread only */
    int64_t deadline_ms;
    const char *request_id;
    Aisle__V1__VariantAssignment **assignments; /* borrowed; n_assignments of them */
    size_t n_assignments;
    shop_chosen_fn chosen; /* NULL: nobody */
    void *chosen_arg;
    int composer_only; /* the composer writes the answer even with a model loaded */
} shop_call;

/* Answers req into o: items first, text, done last; or o->fail with the
 * reason (AISLE_EINVAL for an invalid request, AISLE_EIO when Redis is
 * unavailable) before anything is sent. The user's profile is read once
 * and shared by every retrieval and sub-agent of the call. */
void shop_answer(shop *s, const shop_call *call, const Aisle__V1__ShopRequest *req,
                 const shop_sink *o);

#endif
