/* query: a shopper's constraints read out of what they typed.
 *
 * "a gift for a runner under $50" carries a price ceiling and a category;
 * the ranker can honour those only once they are named in catalog terms.
 * Prices are read from the usual phrasings in dollars, euros or pounds
 * ("under $50", "below 30 dollars", "less than €20", "between $20 and $40",
 * "$25 or less", "over £10"). Categories and brands are matched against the
 * names the live catalog actually holds (a query_vocab), case-insensitively
 * and on word boundaries; a category also matches a word sharing its stem
 * ("runner" → "running"), and "not"/"no"/"except"/"without" before it turns
 * it into an exclusion. Anything unreadable is ignored, never an error. */
#ifndef AISLE_QUERY_H
#define AISLE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "ranker/rank.h"
#include "retrieval/catalog.h"

#define QUERY_MAX_BYTES 1000  /* longest query a request may carry */
#define QUERY_MAX_NAME 128    /* longest category, brand or creator kept */
#define QUERY_MAX_EXCLUDE 8
/* Amounts beyond this (in cents) constrain nothing and are ignored. */
#define QUERY_MAX_PRICE_CENTS 100000000000LL

enum query_kind { QUERY_CATEGORY, QUERY_BRAND, QUERY_CREATOR, QUERY_KINDS };

/* The distinct category, brand and creator names of a catalog at one
 * moment. Immutable once built, so threads may share one. */
typedef struct query_vocab query_vocab;

/* Collects the names in c (taking its read lock). Returns AISLE_OK or
 * AISLE_ENOMEM. The caller frees *out with query_vocab_free. */
int query_vocab_build(catalog *c, query_vocab **out);
void query_vocab_free(query_vocab *v); /* NULL is a no-op */
size_t query_vocab_count(const query_vocab *v, int kind);
const char *query_vocab_at(const query_vocab *v, int kind, size_t i);
/* The most words (space-separated) in any name of the vocabulary. */
int query_vocab_max_words(const query_vocab *v);

typedef struct query_constraints {
    int64_t max_price_cents; /* 0 = none */
    int64_t min_price_cents; /* 0 = none */
    char currency[8];        /* symbol the shopper used ("$" when none) */
    char category[QUERY_MAX_NAME];
    char brand[QUERY_MAX_NAME];
    char creator_id[QUERY_MAX_NAME];
    char exclude[QUERY_MAX_EXCLUDE][QUERY_MAX_NAME]; /* categories */
    size_t n_exclude;
} query_constraints;

/* A rank_filter that points into a query_constraints. */
typedef struct query_filter {
    rank_filter f;
    const char *exclude[QUERY_MAX_EXCLUDE];
} query_filter;

/* Reads text's constraints into out (zeroed first). v may be NULL (prices
 * only). Never fails: what cannot be read is left out. */
void query_parse(const char *text, const query_vocab *v, query_constraints *out);

/* Adds an excluded category; returns AISLE_OK, or AISLE_EFULL when the list
 * is full or the name too long. */
int query_exclude(query_constraints *q, const char *category);

/* Points qf->f at q's constraints; valid while q is unchanged. */
void query_to_filter(const query_constraints *q, query_filter *qf);

/* Whether q constrains anything. */
int query_constrained(const query_constraints *q);

/* Writes the constraints as words, "in running, from Stride, under $50"
 * ("" when none). Returns the length (truncated to fit len). */
size_t query_describe(const query_constraints *q, char *buf, size_t len);
/* Just the price part: "under $50", "over $20", "between $20 and $50". */
size_t query_describe_price(const query_constraints *q, char *buf, size_t len);

/* Text scanning shared with the answer composer. */

/* Letters, digits and any byte of a non-ASCII character count as word
 * characters, so "cafécoffee" does not contain the word "coffee". */
int query_wordc(unsigned char c);
/* If phrase w starts at s+i (ignoring ASCII case) on word boundaries,
 * returns the index after it; 0 otherwise. Only ends of w that are
 * letters or digits need a boundary, so "<" and "€" match right against a
 * number. */
size_t query_phrase_at(const char *s, size_t i, const char *w);

typedef struct query_amount {
    int64_t cents;   /* -1 when too large to mean anything */
    int money;       /* a currency was written, as a symbol or a word */
    const char *cur; /* its symbol (static); "$" when none */
    size_t end;      /* index after the amount */
} query_amount;

/* An amount at s+i: [currency] number [currency], the number with optional
 * thousands commas and up to two decimals ("$1,299.50", "30 dollars",
 * "€20"). Returns 0 and fills a, or -1 when none starts there. */
int query_amount_at(const char *s, size_t i, query_amount *a);

/* Formats cents as money with symbol cur: "$50" for whole amounts when
 * short is set, "$49.99" otherwise. */
void query_money(int64_t cents, const char *cur, int short_form, char *buf, size_t len);

#endif
