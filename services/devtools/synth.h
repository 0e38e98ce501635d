/* synth: a plausible synthetic shop for the demo, tests and benchmarks.
 *
 * Products belong to categories and creators; each product's embedding is
 * its category's direction plus its creator's style plus noise, so similar
 * products really are near each other, as trained embeddings would make
 * them. Shoppers have favourite categories, a favourite creator and a
 * budget, and their signals follow those tastes. Everything is derived from
 * one seed, so a world can be rebuilt identically. */
#ifndef AISLE_SYNTH_H
#define AISLE_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aisle/v1/events.pb-c.h"

typedef struct synth_config {
    size_t n_items;    /* default 5000 */
    size_t n_creators; /* default 200 */
    size_t n_users;    /* default 200 */
    int dim;           /* default 32 */
    uint64_t seed;     /* default 1 */
} synth_config;

typedef struct synth_item {
    char id[24];
    char title[96];
    char creator_id[24];
    char creator_name[40]; /* "Mia Chen" */
    const char *category; /* static strings */
    const char *brand;
    int64_t price_cents;
    int in_stock;
    int cat;              /* category index */
    float *vec;           /* dim floats inside the world's block */
} synth_item;

typedef struct synth_user {
    char id[24];
    int cats[2];          /* favourite categories */
    size_t fav_creator;
    int64_t budget_cents;
} synth_user;

typedef struct synth_world {
    synth_config cfg;
    synth_item *items;
    synth_user *users;
    float *vecs;          /* n_items * dim */
    size_t *by_cat;       /* item indexes grouped by category */
    size_t cat_start[16]; /* by_cat offsets; cat_start[n_cats] = n_items */
    size_t *by_creator;   /* item indexes grouped by creator */
    size_t *creator_start; /* n_creators + 1 offsets */
    int n_cats;
} synth_world;

void synth_config_default(synth_config *cfg);
/* Builds a world. Returns 0, or -1 with err set (bad sizes, no memory).
 * Free with synth_world_free. */
int synth_world_new(const synth_config *cfg, synth_world **out, char *err,
                    size_t errlen);
void synth_world_free(synth_world *w);

/* The display name of creator c ("Mia Chen"), into buf (len bytes). */
void synth_creator_name(size_t c, char *buf, size_t len);

/* The name of category k. */
const char *synth_category(const synth_world *w, int k);

/* Writes every shopper's true tastes to f, a line each: "USER CATEGORY1
 * CATEGORY2 CREATOR BUDGET_CENTS" (favourite categories, most liked first,
 * the favourite creator's id and the budget), for simulations that answer
 * served pages as the shoppers would. Returns 0, or -1 when f fails. */
int synth_write_tastes(const synth_world *w, FILE *f);

/* Fills msg (initialised by the caller) to describe item i; its strings
 * and embedding point into the world, which must outlive msg. */
void synth_catalog_item(const synth_world *w, size_t i,
                        Aisle__V1__CatalogItem *msg);

/* Draws the next signal of user u from their tastes into msg (initialised
 * by the caller); ids point into the world and into event_id, a buffer of
 * at least 32 bytes the caller owns. rng is the caller's generator state. */
void synth_next_signal(const synth_world *w, size_t u, uint64_t *rng,
                       int64_t ts_ms, char *event_id,
                       Aisle__V1__Signal *msg);

/* A signal of user u on an item of category k: for demos of shifting taste. */
void synth_signal_in_category(const synth_world *w, size_t u, int k,
                              uint64_t *rng, int64_t ts_ms, char *event_id,
                              Aisle__V1__Signal *msg);

/* splitmix64: the generator behind everything here, exposed for callers
 * that draw their own events. */
uint64_t synth_rand(uint64_t *state);

#endif
