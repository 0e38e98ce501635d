/* ivf: the catalog's vector index, an inverted file over catalog slots.
 * Each vector lives in the list of its nearest centroid (by inner product),
 * the lists' vectors stored contiguously; a search scores the nprobe lists
 * whose centroids are nearest the query with vec_dots and keeps the k best.
 * One list (no centroids) is an exact search. With more lists rows are
 * kept as half floats, and from dim 128 (where a scan is bound by bytes,
 * not by the work per row) also as 8-bit codes with a scale
 * (retrieval/vec.h): a scan is bound by the bytes it reads, so it reads
 * the codes (a quarter of a float row), keeps a short list of
 * candidates (about twice k) and re-scores those from their half rows;
 * the scores returned are the half rows' (about three decimal digits),
 * and the catalog re-scores what a search returns with its float
 * vectors. The answer is the half rows' own k best whenever those are
 * among the candidates (on the Gowalla snapshots: 99 % of them at dim
 * 256, 89 % at dim 512, whose scores spread over a smaller share of the
 * codes' range; Recall@20 online the same either way, embed/README.md). Searches may come
 * in a batch (one request's few queries): every list any of them probes is
 * read once and scored for each query that probes it, and the k kept are
 * the k best by (score, slot) whatever the order lists are read in. FAISS trains the centroids
 * (retrieval/catalog.c); scanning here instead of in FAISS uses the vector
 * unit, which Debian's FAISS build leaves idle.
 *
 * Not thread-safe: the catalog's lock covers it (searches share it, adds
 * and removes hold it alone). */
#ifndef AISLE_IVF_H
#define AISLE_IVF_H

#include <stddef.h>

typedef struct ivf ivf;

/* An empty index of dim-dimensional vectors with nlist lists; centroids
 * (nlist * dim floats, copied) is NULL when nlist is 1. nprobe lists are
 * scanned per search (clamped to 1..nlist). AISLE_OK, or AISLE_ENOMEM. */
int ivf_new(int dim, int nlist, const float *centroids, int nprobe, ivf **out);
void ivf_free(ivf *x);
/* Lists scanned per search from now on (clamped as in ivf_new); the caller
 * excludes concurrent searches. */
void ivf_set_nprobe(ivf *x, int nprobe);

/* Adds (or replaces) slot's vector v (dim floats, copied). AISLE_OK,
 * AISLE_EINVAL for a slot past 2^32 - 2, or AISLE_ENOMEM (slot then absent). */
int ivf_add(ivf *x, size_t slot, const float *v);
/* Removes slot; nothing when it is absent. */
void ivf_remove(ivf *x, size_t slot);
size_t ivf_count(const ivf *x);
/* Whether scores are exact (one list of float rows). */
int ivf_exact(const ivf *x);

/* The (at most) k vectors with the largest inner product with q, best
 * first (ties by slot), into slots and scores (from the half rows when
 * the index has lists: see above). Returns how many, or AISLE_ENOMEM. */
int ivf_search(const ivf *x, const float *q, int k, size_t *slots, float *scores);

#define IVF_MAX_BATCH 32 /* searches in one ivf_search_batch */

/* One search of a batch: the query (dim floats), the k wanted and room for
 * k hits (borrowed); n is set to how many were found. With keep set, only
 * the slots keep(keep_arg, slot) accepts are hits: the k best of those
 * (a filtered search, so a caller whose filter drops most rows need not
 * search deeper and deeper). keep is asked only about rows that would
 * enter the k best so far, so a search where most rows pass pays for few
 * calls. With any_order set the hits come in no particular order (for a
 * caller that re-scores and sorts them itself). nprobe, when positive, is
 * how many lists this query probes (clamped to 1..nlist) instead of the
 * index's: an item's own neighbours lie in the few lists nearest it, where
 * a profile vector's spread over many. */
typedef struct ivf_query {
    const float *q;
    int k;
    size_t *slots;
    float *scores;
    int n;
    int (*keep)(void *keep_arg, size_t slot);
    void *keep_arg;
    int any_order;
    int nprobe;
} ivf_query;

/* Runs nq (≤ IVF_MAX_BATCH) searches, each giving what ivf_search gives
 * for it, in one pass over the lists: a list that several of them probe is
 * read once (one request's profile vector, its seed items and its context
 * item probe many of the same lists). AISLE_OK, or AISLE_ENOMEM. */
int ivf_search_batch(const ivf *x, ivf_query *qs, size_t nq);

#endif
