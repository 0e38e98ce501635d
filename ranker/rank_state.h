/* rank_state: rank.c's working state of one ranking call, and the few of
 * its helpers that snapscore.c (the learned snapshot's scoring path) calls;
 * private to ranker/ (rank.h is the public face). */
#ifndef AISLE_RANKER_RANK_STATE_H
#define AISLE_RANKER_RANK_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ranker/rank.h"
#include "ranker/scratch.h"
#include "retrieval/catalog.h"

#define RANK_SEED_ITEMS 1     /* heaviest profile items whose neighbours are asked */
#define RANK_SEED_RECENT 1    /* the most recently seen item likewise (a search each) */
/* Vector searches a call plans: the profile vector, the seeds, the context
 * item and the query vector. */
#define RANK_MAX_PLANNED (3 + RANK_SEED_ITEMS + RANK_SEED_RECENT)

/* One item in the pool, with what each source and the profile say of it. */
typedef struct rank_cand {
    size_t slot;
    float raw[RANK_SRC_COUNT]; /* each source's own score (its best) */
    float search;              /* the profile search's score; NAN when not a hit */
    float score;               /* the combined score */
    unsigned sources;
    int creator; /* index into p->creators, or -1 */
    float f[RANK_N_FEATURES];
} rank_cand;

/* Catalog slot → a uint32_t, open addressing sized to what it holds
 * rather than the catalog (a dense array would be touched anew on every
 * call); owned by the call's state. */
typedef struct rank_slotmap {
    size_t *keys; /* slot + 1; 0 = empty */
    uint32_t *vals;
    size_t cap, n; /* cap a power of two */
} rank_slotmap;

/* The request's filter with its strings resolved to catalog keys once a
 * call, each list sorted for bsearch; prices and stock stay the filter's.
 * The excluded item ids are marked by slot instead (RANK_EXCLUDED). */
enum { RANK_KF_CATEGORY, RANK_KF_BRAND, RANK_KF_CREATOR, RANK_KF_KINDS };
typedef struct rank_keyfilter {
    const rank_filter *f;          /* NULL: passes everything */
    uint32_t one[RANK_KF_KINDS];   /* the single-value fields; 0 = any */
    uint32_t *in[RANK_KF_KINDS];   /* the include lists (owned); NULL = any */
    size_t n_in[RANK_KF_KINDS];
    uint32_t *out[RANK_KF_KINDS];  /* the exclude lists (owned) */
    size_t n_out[RANK_KF_KINDS];
} rank_keyfilter;


/* Working state of one ranking call; everything here is freed by
 * rank_state_free. */
typedef struct rank_state {
    catalog *c;
    const rank_request *req;
    const rank_profile *p;
    const rank_filter *filter;
    const rank_settings *set;
    rank_slotmap marks; /* slot → RANK_IN_* and RANK_TAKEN flags (ids compared once, as slots) */
    /* Catalog keys (catalog_key) of the profile's creators, categories
     * and brands → index + 1 into p->creators, p->categories, p->brands. */
    rank_slotmap creators, categories, brands;
    rank_slotmap followed; /* catalog key of a creator the user follows → 1 */
    rank_keyfilter kf; /* the request's filter as catalog keys */
    size_t *pslots;    /* catalog slot of each profile item, or SIZE_MAX */
    float *u;          /* user vector */
    double wsum;
    int personal;      /* whether u means anything */
    float *ns;         /* Σ_i w_i·N_i(j) by slot, scr's; NULL when no neighbours */
    rank_scratch *scr; /* the zeroed arrays ns lies in, taken for the call */
    uint32_t *touched; /* the slots ns holds, in order of first appearance */
    size_t n_touched;
    /* When the profile source prunes (rank_offer_pruned), the best
     * Σ_i w_i·N_i(j) of any eligible listed item, pooled or not, for the
     * neighbour feature's scale; 0 when none. */
    float pruned_best;
    /* The profile search's last (lowest) score: no item it left out has a
     * larger u·Q[j] (with IVF, nearly none). An answer shorter than asked
     * keeps its last score too: exact search then returned every item,
     * and an IVF's probed lists held no more, the same approximation as a
     * full answer (a NAN here turned pruning off for those calls: 2.3x
     * the CPU on a dim-256 Gowalla snapshot at nprobe 8, for the same
     * Recall@20 online). NAN when it returned nothing or did not run. */
    float floor;
    float *lex;        /* BM25 by slot when the request has words */
    /* The first round of every vector search the sources will make, run
     * as one batch before them (rank_plan_searches); rank_offer_search
     * takes its answer from here when query and depth match. Arrays owned. */
    catalog_query planned[RANK_MAX_PLANNED];
    size_t n_planned;
    size_t ctx;        /* the context item's slot, or SIZE_MAX */
    rank_slotmap at; /* slots offered so far → pool index + 1, or UINT32_MAX: not eligible */
    rank_cand *pool;
    size_t npool, poolcap;
    rank_list popular; /* fetched once, owned by the callback */
    int popular_read;
    float best[RANK_SRC_COUNT]; /* each source's best raw score over the pool */
    rank_result *out;
    size_t cap;
} rank_state;


/* Fills cd->f (see RANK_F_* in rank.h) and cd->creator from the pool's
 * best raw score by source. */
void rank_features(const rank_state *st, rank_cand *cd, const float *best);
/* Adds score to the min-heap h of at most cap of the best scores seen. */
void rank_heap_push(float *h, size_t *n, size_t cap, float score);
/* Whether slot may be recommended at all. */
int rank_eligible(rank_state *st, size_t slot);
/* Offers slot to the pool from source src: 1 a candidate, 0 not
 * eligible, or AISLE_ENOMEM. */
int rank_offer(rank_state *st, size_t slot, int src, float score);
/* Offers the k best items by inner product with q from source src. */
int rank_offer_search(rank_state *st, const float *q, int k, int src, int deepen, char *err,
                      size_t errlen);
/* How deep to search first for a source with this budget. */
int rank_depth(const rank_state *st, int budget);

#endif
