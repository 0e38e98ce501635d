/* rank: the recommendation pipeline over the catalog, for a plain profile
 * view: retrieve from several sources → filter → score → diversify and cap
 * → explain.
 *
 * Sources, each with a budget from the request's settings: the profile
 * vector (the weighted sum of the profile items' query vectors, dismissed
 * items pulling it away), the neighbours of the profile's heaviest and most
 * recent items, items of the creators the user engages with or follows, the popular
 * list, the trending lists of a few categories (the caller picks them: the
 * user's top categories, or the shop's trending ones for a new user), lexical matches of the request's words (BM25, lexical.h), the
 * caller's query vector and the context item's neighbours. Candidates are
 * merged by item; each keeps the sources that brought it. Every candidate
 * passes the same eligibility test (stock, the profile's seen, bought and
 * dismissed items, the request's filter, items already served on earlier
 * pages), so a filter holds on every path. The score combines named
 * features with the settings' weights; with the exact settings (surface "")
 * it is the offline job's formula, u·Q[j] + (Σ_i w_i·N_i(j) + b[j]) / Σ|w|,
 * plus a small boost for followed creators, and the order is the one the
 * quality bench measures. Where the page is just the pool's top scores (no
 * model, MMR, caps or boosts), a threshold pass scores the candidates only
 * the neighbour lists brought with the profile search's last score in
 * place of u·Q[j] (a bound) and computes u·Q[j] only for those whose bound
 * still beats the page's last real score; when no other source runs for
 * the request (the exact surface without words, vector or context item: a
 * learned snapshot's thousands of neighbour entries), a neighbour-only
 * candidate whose bound is below the profile search's own page does not
 * even enter the pool. The first round of every vector search the sources
 * make (the profile vector, the seed items, the context item, the query
 * vector) runs as one batch before them (catalog_search_batch), so index
 * lists that several probe are read once; a seed item's search probes
 * only the few lists nearest it (the settings' seed_nprobe), where the
 * profile vector, a mean over many items, probes the catalog's default. Per candidate the pipeline
 * compares catalog keys and slots (retrieval/catalog.h's facets), not
 * strings. MMR over item vectors and per-page caps then pick
 * the page; short pages are filled from the popular list, then from any
 * eligible item, so a page is short only when nothing else is eligible.
 * The surface's merchandising rules (rank_rule) act last: boosts multiply
 * candidates' scores before the pick, pins place eligible items on the
 * finished page. Each result says why it is there. Beside the page, the
 * catalog's creator index (retrieval/creators.h) suggests creators near
 * the profile vector whom the user does not engage with yet. */
#ifndef AISLE_RANK_H
#define AISLE_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "ranker/ltr/model.h"
#include "retrieval/catalog.h"
#include "services/base/status.h"

#define RANK_MAX_LIMIT 500
#define RANK_MAX_REASONS 4
#define RANK_MAX_CREATORS 16 /* creators a request may ask the creator index for */

/* Where a candidate came from; a hit keeps a bit for each. */
typedef enum rank_source {
    RANK_SRC_PROFILE,    /* the profile vector's nearest items */
    RANK_SRC_NEIGHBOURS, /* neighbours of the profile's items */
    RANK_SRC_CREATORS,   /* items of creators the user engages with or follows */
    RANK_SRC_POPULAR,    /* the popular list */
    RANK_SRC_QUERY,      /* lexical matches of the request's words */
    RANK_SRC_VECTOR,     /* the request's query vector */
    RANK_SRC_CONTEXT,    /* the context item's neighbours */
    RANK_SRC_FILL,       /* any eligible item, to fill a short page */
    RANK_SRC_TRENDING,   /* trending in the user's top categories (or the shop's) */
    RANK_SRC_FEATURED,   /* pinned or boosted by the surface's rules */
    RANK_SRC_COUNT
} rank_source;

/* "profile", "neighbours", ... (the API's ScoredItem.sources names). */
const char *rank_source_name(int source);

/* What a candidate is scored on, by the settings' hand weights or by a
 * learned model alike, and what each served item logs for training
 * (ExposureItem.features, in this order): one function in rank.c computes
 * them for both, so a model scores exactly what it was trained on. A new
 * feature goes at the end (a model over fewer is refused by the loader). */
enum {
    RANK_F_PERSONAL, /* the offline formula u·Q[j] + (Σ w_i·N_i(j) + b[j]) / Σ|w|; 0 without
                        a profile vector */
    RANK_F_CREATOR,  /* engagement with the item's creator over the top creator's, in [0, 1];
                        0 without a profile vector */
    /* RANK_SRC_COUNT - 1 of them, for RANK_SRC_NEIGHBOURS on: that source's score over its
     * best in the pool (0: it did not bring the item); the fill's is 1 for a fill item. */
    RANK_F_SOURCE,
    RANK_F_CATEGORY = RANK_F_SOURCE + RANK_SRC_COUNT - 1, /* category affinity, [0, 1] */
    RANK_F_BRAND,                                         /* brand affinity, [0, 1] */
    RANK_N_FEATURES
};

/* Constraints a result must meet (a shopper's "under $50", "running"). */
typedef struct rank_filter {
    int64_t max_price_cents; /* 0 = no ceiling */
    const char *category;    /* NULL or "" = any */
    const char *brand;       /* NULL or "" = any */
    const char *creator_id;  /* NULL or "" = any */
    int64_t min_price_cents; /* 0 = no floor */
    /* Categories a result must not be in ("not coffee", or what a shopper
     * already knows when looking for something new); borrowed. */
    const char *const *exclude_categories;
    size_t n_exclude_categories;
    /* Lists of the API's Filter, all borrowed; an empty include list means
     * any. */
    const char *const *categories;
    size_t n_categories;
    const char *const *brands;
    size_t n_brands;
    const char *const *exclude_brands;
    size_t n_exclude_brands;
    const char *const *creators;
    size_t n_creators;
    const char *const *exclude_creators;
    size_t n_exclude_creators;
    const char *const *exclude_item_ids;
    size_t n_exclude_item_ids;
    int include_out_of_stock; /* 0 = in stock only */
} rank_filter;

/* One weighted id of a profile: an item, a creator ... */
typedef struct rank_entry {
    const char *id;
    double weight;
} rank_entry;

/* What the ranker needs of a user: a plain in-memory view, borrowed from
 * whoever read the profile (the ranker never talks to a store). Weighted
 * lists come heaviest first; seen and purchased need only their ids. */
typedef struct rank_profile {
    const rank_entry *items;
    size_t n_items;
    const rank_entry *creators;
    size_t n_creators;
    const rank_entry *dismissed; /* negative feedback */
    size_t n_dismissed;
    const rank_entry *seen;
    size_t n_seen;
    const rank_entry *purchased;
    size_t n_purchased;
    const rank_entry *categories; /* affinities learned from the catalog */
    size_t n_categories;
    const rank_entry *brands;
    size_t n_brands;
    const rank_entry *follows; /* creators followed (weight: the time) */
    size_t n_follows;
} rank_profile;

/* Pipeline settings (a surface: home, product page, cart ...). */
typedef struct rank_settings {
    const char *name;
    /* Candidates asked of each source (0 = off). The profile source asks
     * for at least the page plus what the profile leaves out; the request's
     * own sources (query, vector, context) run only when it sets them. */
    int budget[RANK_SRC_COUNT];
    /* Weight of each source's score, normalized by its best hit; the
     * profile's weight multiplies the raw personal score. */
    float weight[RANK_SRC_COUNT];
    float w_category; /* affinity to the item's category, from the profile */
    float w_brand;
    /* MMR: λ·relevance − (1−λ)·max cosine to the items above; 1 = off. */
    float mmr_lambda;
    int cap_creator, cap_brand, cap_category; /* per page; 0 = none */
    /* Index lists each seed item's search probes (the neighbours source);
     * 0: the catalog's, as the profile vector's. An item's nearest items
     * lie in the few lists nearest it (bench/recommend/index prints the
     * item queries' recall by nprobe). */
    int seed_nprobe;
    /* How a context item reads in a reason: "the product you are looking
     * at", "in your cart" ... */
    const char *context_phrase;
} rank_settings;

/* The settings' hand weights over a candidate's features f (RANK_F_*): the
 * score the ranker gives without a model. */
float rank_hand_score(const rank_settings *set, const float *f);

/* The named settings: "" (exact: the profile and popular fill only, no
 * diversity or caps), "home", "product_page", "cart" and "similar" (the
 * SimilarItems call). NULL for an unknown name. */
const rank_settings *rank_surface(const char *name);

/* The 32-bit hash that page tokens keep for each item served. */
uint32_t rank_item_hash(const char *item_id);

/* A weighted list of items, heaviest first (the popular list, a trending
 * list), borrowed. A list read once and used by many calls may carry each
 * entry's catalog slot (rank_list_resolve), so that a call reads slots
 * instead of looking each id up; they are used while the catalog's ids
 * keep the generation they were read at (catalog_id_generation), and the
 * ids are looked up otherwise. */
typedef struct rank_list {
    const rank_entry *items;
    size_t n;
    const size_t *slots; /* n slots (SIZE_MAX: not in the catalog), or NULL */
    uint64_t generation; /* the catalog_id_generation slots were read at */
} rank_list;

/* Looks l's ids up in c (taking its read lock) into slots (l->n of them,
 * the caller's, kept as long as l) and points l->slots at them. */
void rank_list_resolve(catalog *c, rank_list *l, size_t *slots);

/* Supplies the popular list when a result needs filling; a profile that
 * fills the list never pays for it. Sets *out to a list the callback's
 * owner keeps (valid until rank_recommend returns); returns AISLE_OK or a
 * negative AISLE_* code with err set, which rank_recommend passes on. */
typedef int (*rank_popular_fn)(void *arg, rank_list *out, char *err, size_t errlen);

/* A merchandising rule of a surface (ranker/rules.h reads them): the item
 * is placed at position pin (1-based; 0 = not pinned) of the page when it
 * is eligible, and its score multiplied by boost (1 = none). Pins overrule
 * the page's caps; the filters hold. */
typedef struct rank_rule {
    char *item_id;
    int pin;
    float boost;
} rank_rule;

/* One category's trending list; borrowed. */
typedef struct rank_trending {
    const char *category;
    rank_list list;
} rank_trending;

typedef struct rank_request {
    const rank_profile *profile; /* NULL or empty: no personal part */
    rank_popular_fn popular;   /* NULL = no popular list */
    void *popular_arg;
    int limit;                 /* clamped to 1..RANK_MAX_LIMIT */
    const rank_filter *filter; /* NULL = none */
    const rank_settings *settings; /* NULL = rank_surface("") */
    const char *query;             /* NULL or "" = none */
    const float *query_vector;     /* catalog_dim floats, or NULL */
    const char *context_item_id;   /* NULL or "" = none */
    /* rank_item_hash of each item served on earlier pages, ascending;
     * they are left out. Borrowed. */
    const uint32_t *served;
    size_t n_served;
    /* A learned ranker over RANK_N_FEATURES features that scores the pool
     * instead of the settings' weights (sources, MMR and caps stay the
     * settings'); NULL: the weights. Borrowed. */
    ltr_model *model;
    /* Creators to suggest from the catalog's creator index (0 to
     * RANK_MAX_CREATORS): those nearest the profile vector, leaving out
     * the creators the profile engages with and those the filter rules
     * out. None without a personal profile. */
    int creators;
    /* Trending lists for the trending source (its budget is shared
     * between them); borrowed. */
    const rank_trending *trending;
    size_t n_trending;
    /* The surface's rules; borrowed. */
    const rank_rule *rules;
    size_t n_rules;
} rank_request;

typedef struct rank_hit {
    catalog_item item; /* copies; owned by the result */
    float score;
    char *reasons[RANK_MAX_REASONS];
    int n_reasons;
    unsigned sources; /* bit (1u << rank_source) for each source */
    /* The same as names (static strings), for the answer's messages. */
    const char *source_names[RANK_SRC_COUNT];
    int n_sources;
    float features[RANK_N_FEATURES]; /* as scored (see RANK_F_*) */
} rank_hit;

/* A creator the index suggests; strings owned by the result. */
typedef struct rank_creator {
    char *id;
    char *name;     /* display name, "" when the catalog has none */
    float score;    /* the profile vector · the creator's normalized mean */
    size_t n_items; /* their live items */
} rank_creator;

typedef struct rank_result {
    rank_hit *hits; /* best first */
    size_t n;
    rank_creator *creators; /* best first; rank_request.creators at most */
    size_t n_creators;
} rank_result;

/* Runs the pipeline for req (see the file comment). Returns AISLE_OK;
 * AISLE_ENOTFOUND (the context item is not in the catalog), AISLE_EINVAL
 * (a query vector with a non-finite value, a model over another number of
 * features), AISLE_ENOMEM or AISLE_EINTERNAL (the index or the model
 * failed) with err set; or the popular
 * callback's code. The caller frees out with
 * rank_result_free (also after a failure). */
int rank_recommend(catalog *c, const rank_request *req, rank_result *out, char *err,
                   size_t errlen);

/* How a reason names item's creator: the display name, else the id. */
const char *rank_creator_label(const catalog_item *item);
/* Whether p follows creator_id (a linear scan: at most max_creators). */
int rank_profile_follows(const rank_profile *p, const char *creator_id);
void rank_result_free(rank_result *r);

#endif
