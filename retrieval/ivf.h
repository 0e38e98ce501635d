/* ivf: the catalog's vector index, an inverted file over catalog slots.
 * Each vector lives in the list of its nearest centroid (by inner product),
 * the lists' vectors stored contiguously; a search scores the nprobe lists
 * whose centroids are nearest the query with vec_dots and keeps the k best.
 * One list (no centroids) is an exact search. With more lists the rows
 * are kept as half floats (retrieval/vec.h): a scan is bound by the bytes
 * it reads, not the products, so it runs nearly twice as fast; the scores
 * are then approximate (about three decimal digits), and the catalog
 * re-scores what a search returns with its float vectors. FAISS trains the centroids
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

#endif
