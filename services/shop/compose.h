/* compose: shopping answers grounded in the products chosen for them.
 *
 * Every product, price, brand and creator an answer names must come from
 * the retrieved catalog entries. The deterministic composer writes the
 * answer from the ranked items and their reasons, and is what Aisle says
 * without a language model. With a model, the prompt lists the products as
 * numbered slots ([1], [2] ...) and asks the model to refer to them only
 * that way; its text then passes through a compose_filter, which:
 *   - replaces each valid slot with the item's title, price, brand and
 *     creator, exactly as the catalog has them;
 *   - strips slots that do not exist ([9] of five), money amounts that are
 *     neither a chosen item's price nor the shopper's own bound, brand and
 *     creator names of the catalog that are not the chosen items', and
 *     product-code-like words (letters mixed with digits) found in none of
 *     the chosen items' facts;
 *   - holds the text back until the model has cited a product, so an
 *     answer that never cites one is dropped whole and the caller sends
 *     the deterministic answer instead.
 * The filter streams: it releases text as soon as no construct in flight
 * (a slot, an amount, a multi-word brand) can still change it. */
#ifndef AISLE_COMPOSE_H
#define AISLE_COMPOSE_H

#include <stddef.h>

#include "ranker/rank.h"
#include "services/shop/query.h"

/* How far the items are from what the shopper asked. */
enum compose_fit {
    COMPOSE_FIT = 0,        /* they meet every constraint */
    COMPOSE_OUTSIDE_PRICE,  /* nothing met the price: closest outside it */
    COMPOSE_OUTSIDE_ALL,    /* nothing met the constraints: closest items */
};

typedef struct compose_input {
    const query_constraints *q;
    const rank_hit *const *items; /* the chosen products; slot k is items[k-1] */
    const char *const *angles;    /* per item, the sub-agent that chose it;
                                     NULL when one retrieval chose them all */
    size_t n;
    int fit; /* enum compose_fit */
} compose_input;

/* The deterministic answer: an opening line that says the constraints, then
 * one line per item ("- Title ($12.99, Brand, by c0001) — reason."). Lines
 * end in '\n' so a caller can stream them one by one. Returns a malloc'ed
 * string the caller frees, or NULL when out of memory. */
char *compose_answer(const compose_input *in);

/* What the model is told on every call (the system turn of a chat model;
 * after the request in a plain prompt). */
#define COMPOSE_INSTRUCTIONS \
    "You help a shopper choose. Answer in two sentences. Name products only as [1], [2]."

/* The call's own part of the model's prompt: the request (brackets and
 * newlines removed, cut to a couple of hundred bytes) and the slot list.
 * Caller frees; NULL when out of memory. */
char *compose_request(const compose_input *in, const char *query);

/* Receives repaired text; returns non-zero to stop (the client is gone). */
typedef int (*compose_emit_fn)(void *ud, const char *text, size_t len);

typedef struct compose_filter compose_filter;

/* A filter for one answer. in (and what it points to) and v are borrowed
 * and must outlive the filter; v may be NULL (no catalog names to guard).
 * Returns AISLE_OK or AISLE_ENOMEM; free with compose_filter_free. */
int compose_filter_new(const compose_input *in, const query_vocab *v, compose_emit_fn emit,
                       void *ud, compose_filter **out);
void compose_filter_free(compose_filter *f); /* NULL is a no-op */

/* Feeds len bytes of model text. Returns 0, non-zero when emit asked to
 * stop, or AISLE_ENOMEM. */
int compose_filter_feed(compose_filter *f, const char *text, size_t len);

/* Flushes what was held. Returns 0 when the answer cited at least one
 * product and was emitted; 1 when it never did and nothing was emitted
 * (send compose_answer instead); non-zero from emit; or AISLE_ENOMEM. */
int compose_filter_finish(compose_filter *f);

/* Repairs so far: slots, amounts and names stripped. */
int compose_filter_repairs(const compose_filter *f);
/* Valid slots replaced so far. */
int compose_filter_cited(const compose_filter *f);

#endif
