/* catalog: the live product table and its vector index (retrieval/ivf.h).
 *
 * Every item lives in a dense slot; the slot number is also its index id, so
 * a search hit leads straight to the item's facts and vector without another
 * lookup. Catalog events (upserts, deletes, snapshot loads) come from one
 * writer thread and take the write lock only to change what readers see;
 * requests bracket their reads with catalog_read_begin/end and may run
 * concurrently.
 * The vector index is an inner-product index that supports removal, so an
 * update replaces a row and a delete removes it; freed slots are reused.
 * Small catalogs use an exact flat index. Once the catalog reaches
 * ivf_threshold items it is rebuilt as an inverted-file (IVF) index with
 * about 2·√n lists (centroids from FAISS's k-means), searched through nprobe
 * of them: a scan of a few percent
 * of the vectors instead of all, at a small cost in recall. It is rebuilt
 * again whenever the catalog has grown tenfold since.
 *
 * A snapshot of a learned model (catalog_snapshot: the embedding job's
 * output, adapted by the layer that reads it from disk) can be loaded, at start or later as a hot swap: its item-side vectors replace
 * the index vectors of the items it covers, and it adds query-side vectors,
 * neighbour lists and biases, so a user's score is
 *   u·Q[j] + Σ_i w_i·N_i(j) + b[j],  u = Σ_i w_i·P[i].
 * Its vectors are authoritative for the items it covers: catalog events
 * then update only their facts. Items new since the snapshot are indexed
 * with their own catalog embeddings until a snapshot covers them. Items
 * known only from a snapshot count as in stock until the catalog says
 * otherwise; items the catalog deleted stay deleted, whatever a snapshot
 * trained before the deletion says. The new index is built beside the old one, so requests go on
 * during the build and only wait for the pointer swap. */
#ifndef AISLE_CATALOG_H
#define AISLE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "retrieval/creators.h"

#define CATALOG_MAX_DIM 4096
#define CATALOG_MAX_FIELD 1024 /* longest id, title, brand … accepted */

typedef struct catalog_item {
    /* All strings owned by the catalog; valid while the read lock is held. */
    char *item_id;
    char *title;
    char *creator_id;
    char *category;
    char *brand;
    int64_t price_cents;
    int in_stock;
    /* The creator's display name; "" (or NULL in fields handed to
     * catalog_upsert) when the catalog has none. Last, so that positional
     * initializers written before it still mean what they say. */
    char *creator_name;
} catalog_item;

typedef struct catalog catalog;

/* An item's category, brand and creator id as keys the catalog interns
 * when an item brings a new string: equal keys are equal strings, 0 is
 * the empty string. So a request compares a few integers per candidate
 * (filters, caps, affinities) and resolves its own strings once
 * (catalog_key). */
typedef struct catalog_facets {
    uint32_t category, brand, creator;
    /* The item's stock, and whether the slot holds an item at all, beside
     * its price: every candidate's eligibility test reads these, and one
     * packed row per slot costs it one cache line where the item table's
     * entry (and the facets after it) cost two. */
    uint8_t live, in_stock;
    int64_t price_cents;
} catalog_facets;

#define CATALOG_NO_KEY UINT32_MAX /* catalog_key of a string no item has had */

typedef struct catalog_config {
    int dim;              /* floats per vector */
    size_t ivf_threshold; /* items at which to switch to IVF; 0 = never */
    int nprobe;           /* IVF lists searched; 0 = lists/16, at least 8 */
    /* Entries kept of each snapshot item's neighbour list, its first (a
     * snapshot's lists come heaviest first); 0 = all. Shorter lists make a
     * call cheaper (the profile source reads every entry of the user's
     * items' lists) at some cost in recall: a serving setting of its own. */
    size_t max_neighbours;
} catalog_config;

/* dim 32, IVF from 20,000 items, automatic nprobe, whole neighbour lists. */
void catalog_config_default(catalog_config *cfg);

/* Creates an empty catalog. Returns AISLE_OK, AISLE_EINVAL (bad
 * settings) or AISLE_ENOMEM, with err set. The caller frees it with catalog_free. */
int catalog_new(const catalog_config *cfg, catalog **out, char *err, size_t errlen);
void catalog_free(catalog *c);
int catalog_dim(const catalog *c);

/* Inserts or replaces the item with fields->item_id. Strings are copied;
 * vec must hold exactly dim finite floats, or be empty (vec_len 0) to
 * update only the facts of an item already present. Returns AISLE_OK, or AISLE_EINVAL (bad
 * input), AISLE_ENOMEM or AISLE_EINTERNAL with
 * the reason in err, leaving the catalog as it was. */
int catalog_upsert(catalog *c, const catalog_item *fields, const float *vec,
                   size_t vec_len, char *err, size_t errlen);
/* Removes the item. Returns AISLE_OK, or AISLE_ENOTFOUND. */
int catalog_delete(catalog *c, const char *item_id);

void catalog_read_begin(catalog *c);
void catalog_read_end(catalog *c);

/* The following need the read lock. */
size_t catalog_count(const catalog *c);       /* live items */
size_t catalog_slot_limit(const catalog *c);  /* slots are < this */
/* The item in slot, or NULL when the slot is free. */
const catalog_item *catalog_at(const catalog *c, size_t slot);
const float *catalog_vector(const catalog *c, size_t slot);
/* slot's interned fields, stock and price (slot < catalog_slot_limit; a
 * free slot's live is 0 and the rest stale). */
const catalog_facets *catalog_facets_at(const catalog *c, size_t slot);
/* The key of s: 0 for NULL or "", CATALOG_NO_KEY when no item has ever had
 * it as its category, brand or creator id. */
uint32_t catalog_key(const catalog *c, const char *s);
/* AISLE_OK with *slot set, or AISLE_ENOTFOUND. */
int catalog_lookup(const catalog *c, const char *item_id, size_t *slot);
/* A count that changes whenever an item id gains or loses its slot (a new
 * item, a delete, a snapshot's new items): what catalog_lookup answered
 * for any id holds while it stays the same, so a list of ids looked up
 * once serves many requests. */
uint64_t catalog_id_generation(const catalog *c);
/* The k best items for query q by inner product, best first, into slots and
 * scores (each k long). Returns how many were found (≤ k), or
 * AISLE_ENOMEM. */
int catalog_search(catalog *c, const float *q, int k, size_t *slots,
                   float *scores);

#define CATALOG_MAX_BATCH 16 /* searches in one catalog_search_batch */

/* One search of a batch: what catalog_search takes, and n, set to how
 * many hits it found (0 when k ≤ 0). Arrays borrowed. keep, when set,
 * makes it a filtered search: the k best of the slots keep accepts
 * (ivf_query's keep; called under the read lock). */
typedef struct catalog_query {
    const float *q;
    int k;
    size_t *slots;
    float *scores;
    int n;
    int (*keep)(void *keep_arg, size_t slot);
    void *keep_arg;
    int nprobe; /* index lists probed (ivf_query's); 0: the catalog's --nprobe */
} catalog_query;

/* Runs nq (≤ CATALOG_MAX_BATCH) searches, each with catalog_search's
 * answer, in one pass over the index's lists (retrieval/ivf.h): the few
 * searches of one request share the lists they probe. Returns AISLE_OK or
 * AISLE_ENOMEM. */
int catalog_search_batch(catalog *c, catalog_query *qs, size_t nq);
/* The creators of the live items and their vector index (creators.h),
 * kept current by every event and snapshot swap; search it under the read
 * lock. */
creators *catalog_creators(catalog *c);
/* IVF lists in use, or 0 while the index is flat. */
int catalog_ivf_lists(const catalog *c);
/* Sets the lists probed per search (0: the default of catalog_config) for
 * the current index and every later rebuild; takes the write lock, so
 * searches in flight finish on the old count. Used to measure one built
 * index at several counts (services/app/serveprobe.c). */
void catalog_set_nprobe(catalog *c, int nprobe);

/* Query-side vector of slot: the snapshot's P row when a snapshot covers
 * it, else the index vector. Needs the read lock. */
const float *catalog_query_vector(const catalog *c, size_t slot);
/* Neighbour list of slot (slots and weights, *n of them; 0 without a
 * snapshot) and its bias. Need the read lock. */
void catalog_neighbours(const catalog *c, size_t slot, const uint32_t **slots,
                        const float **weights, size_t *n);
float catalog_bias(const catalog *c, size_t slot);
/* Whether a snapshot is loaded; its version into buf (may be NULL). */
int catalog_snapshot_version(catalog *c, char *buf, size_t len);

/* What the catalog reads of a learned snapshot: item ids by row and, by
 * row, the query-side vectors P, the item-side vectors Q, CSR neighbour
 * lists and optional biases. All borrowed for the catalog_load_snapshot
 * call only (the catalog copies what it keeps). */
typedef struct catalog_snapshot {
    const char *version;
    uint32_t n_items;
    uint32_t dim;
    const char *const *item_ids; /* n_items */
    const float *P;              /* n_items x dim */
    const float *Q;              /* n_items x dim */
    const uint64_t *nb_off;      /* n_items + 1 */
    const uint32_t *nb_item;     /* rows, each < n_items; each list heaviest first */
    const float *nb_weight;
    const float *bias;           /* n_items, or NULL */
} catalog_snapshot;

/* Loads snap (see the file comment). snap->dim must equal the
 * catalog's dim. Call from the thread that applies catalog events (their
 * writes must not interleave with the build). Returns AISLE_OK, or a negative
 * AISLE_* code with err set and the catalog as it was. */
int catalog_load_snapshot(catalog *c, const catalog_snapshot *snap, char *err,
                          size_t errlen);

#endif
