/* index: the catalog's vector search alone, on the synthetic shop's item
 * vectors (bench/recommend's catalog): µs per search and recall of the k
 * best against exact search, for the exact index and IVF at several nprobe,
 * beside FAISS's own IVFFlat on the same vectors and lists (what the
 * catalog searched before retrieval/ivf.c). Queries are profile-like: the
 * mean of 10 items of one category. Times are the best of three rounds.
 * Prints one "key=value" line a setting.
 *
 *   index [ITEMS [K [QUERIES]]]     # 100000 50 2000 by default */
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/catalog.h"
#include "services/base/clock.h"
#include "services/devtools/synth.h"

#define DIM 32

/* A catalog over every item of w (nprobe 0: the catalog's default). */
static catalog *index_catalog(const synth_world *w, size_t ivf_threshold, int nprobe) {
    catalog_config cfg;
    catalog *c;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    cfg.ivf_threshold = ivf_threshold;
    cfg.nprobe = nprobe;
    if (catalog_new(&cfg, &c, err, sizeof(err)) != 0) return NULL;
    for (size_t i = 0; i < w->cfg.n_items; i++) {
        const synth_item *s = &w->items[i];
        catalog_item it = {.item_id = (char *)s->id, .title = "", .creator_id = "",
                           .category = "", .brand = "", .price_cents = 100, .in_stock = 1};
        if (catalog_upsert(c, &it, s->vec, DIM, err, sizeof(err)) != 0) {
            catalog_free(c);
            return NULL;
        }
    }
    return c;
}

/* nq profile-like queries: the mean of 10 items of a random category. */
static float *index_queries(const synth_world *w, int nq) {
    float *q = calloc((size_t)nq * DIM, sizeof(float));
    uint64_t rng = 5;
    for (int i = 0; q && i < nq; i++) {
        int k = (int)(synth_rand(&rng) % (uint64_t)w->n_cats);
        size_t lo = w->cat_start[k], n = w->cat_start[k + 1] - lo;
        for (int m = 0; n && m < 10; m++) {
            const float *v = w->items[w->by_cat[lo + synth_rand(&rng) % n]].vec;
            for (int j = 0; j < DIM; j++) q[(size_t)i * DIM + j] += v[j] / 10;
        }
    }
    return q;
}

/* nq item-like queries: the vectors of random items, as the seed items'
 * and the context item's searches ask (rank.c). */
static float *index_item_queries(const synth_world *w, int nq) {
    float *q = malloc((size_t)nq * DIM * sizeof(float));
    uint64_t rng = 7;
    for (int i = 0; q && i < nq; i++)
        memcpy(q + (size_t)i * DIM, w->items[synth_rand(&rng) % w->cfg.n_items].vec,
               DIM * sizeof(float));
    return q;
}

/* Runs the queries on c, each probing nprobe lists (0: the catalog's);
 * answers into ans (nq * k slots); µs per search, the best of
 * INDEX_ROUNDS rounds (the machine is shared). */
#define INDEX_ROUNDS 3
static double index_run(catalog *c, const float *q, int nq, int k, int nprobe, size_t *ans) {
    float *sc = malloc((size_t)k * sizeof(float));
    double best = -1;
    catalog_read_begin(c);
    for (int r = 0; sc && r < INDEX_ROUNDS; r++) {
        int64_t t0 = clock_mono_us();
        for (int i = 0; i < nq; i++) {
            catalog_query one = {.q = q + (size_t)i * DIM, .k = k, .slots = ans + (size_t)i * k,
                                 .scores = sc, .nprobe = nprobe};
            if (catalog_search_batch(c, &one, 1) != 0) one.n = 0;
            for (int j = one.n; j < k; j++) one.slots[j] = SIZE_MAX; /* fewer found: misses */
        }
        if (best < 0 || (double)(clock_mono_us() - t0) / nq < best)
            best = (double)(clock_mono_us() - t0) / nq;
    }
    catalog_read_end(c);
    free(sc);
    return best;
}

/* Share of the exact answers that got found. */
static double index_recall(const size_t *exact, const size_t *got, int nq, int k) {
    long hit = 0;
    for (int i = 0; i < nq; i++)
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                if (got[(size_t)i * k + a] == exact[(size_t)i * k + b]) {
                    hit++;
                    break;
                }
    return (double)hit / ((double)nq * k);
}

/* FAISS's IVFFlat over the same items (ids are item indexes, which are the
 * catalog's slots here), one query at a time; µs per search. */
static double index_faiss(const synth_world *w, int nlist, int nprobe, const float *q, int nq,
                          int k, size_t *ans) {
    char desc[32];
    FaissIndex *idx = NULL;
    float *sc = malloc((size_t)k * sizeof(float));
    idx_t *lab = malloc((size_t)k * sizeof(idx_t));
    double us = -1;
    snprintf(desc, sizeof(desc), "IVF%d,Flat", nlist);
    if (sc && lab && faiss_index_factory(&idx, DIM, desc, METRIC_INNER_PRODUCT) == 0 &&
        faiss_Index_train(idx, (idx_t)w->cfg.n_items, w->vecs) == 0 &&
        faiss_Index_add(idx, (idx_t)w->cfg.n_items, w->vecs) == 0) {
        int64_t t0;
        faiss_IndexIVF_set_nprobe(faiss_IndexIVF_cast(idx), (size_t)nprobe);
        omp_set_num_threads(1); /* as the catalog's callers did */
        for (int r = 0; r < INDEX_ROUNDS; r++) {
            t0 = clock_mono_us();
            for (int i = 0; i < nq; i++) {
                faiss_Index_search(idx, 1, q + (size_t)i * DIM, k, sc, lab);
                for (int j = 0; j < k; j++) ans[(size_t)i * k + j] = (size_t)lab[j];
            }
            if (us < 0 || (double)(clock_mono_us() - t0) / nq < us)
                us = (double)(clock_mono_us() - t0) / nq;
        }
    }
    if (idx) faiss_Index_free(idx);
    free(sc);
    free(lab);
    return us;
}

/* The catalog's nprobe when none is set (retrieval/catalog.c). */
static int index_default_nprobe(int lists) { return lists / 16 > 8 ? lists / 16 : 8; }

/* Item queries (index_item_queries) on an IVF catalog at each per-query
 * nprobe of item_probes (0: the catalog's), against the exact catalog ex:
 * what a seed item's or a context item's search finds in few lists. */
static int index_items(const synth_world *w, catalog *ex, int nq, int k) {
    static const int item_probes[] = {0, 2, 4, 8};
    float *q = index_item_queries(w, nq);
    size_t *exact = malloc((size_t)nq * k * sizeof(*exact));
    size_t *got = malloc((size_t)nq * k * sizeof(*got));
    catalog *c = NULL;
    int rc = 1;
    if (!q || !exact || !got || !(c = index_catalog(w, w->cfg.n_items, 0))) goto fail;
    index_run(ex, q, nq, k, 0, exact);
    for (size_t i = 0; i < sizeof(item_probes) / sizeof(item_probes[0]); i++) {
        double us = index_run(c, q, nq, k, item_probes[i], got);
        printf("setting=ivf_item_queries lists=%d nprobe=%d%s k=%d us_per_search=%.1f "
               "recall=%.4f\n", catalog_ivf_lists(c),
               item_probes[i] ? item_probes[i] : index_default_nprobe(catalog_ivf_lists(c)),
               item_probes[i] ? "" : "(default)", k, us, index_recall(exact, got, nq, k));
    }
    rc = 0;
fail:
    if (c) catalog_free(c);
    free(q);
    free(exact);
    free(got);
    return rc;
}

int main(int argc, char **argv) {
    static const int probes[] = {0, 1, 2, 4, 8, 16, 32};
    synth_config sc;
    synth_world *w;
    char err[256];
    int k = argc > 2 ? atoi(argv[2]) : 50, nq = argc > 3 ? atoi(argv[3]) : 2000;
    size_t *exact, *got;
    float *q;
    catalog *c;
    synth_config_default(&sc);
    sc.n_items = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    sc.n_users = 1;
    sc.dim = DIM;
    if (k <= 0 || nq <= 0 || synth_world_new(&sc, &w, err, sizeof(err)) != 0) {
        fprintf(stderr, "usage: index [ITEMS [K [QUERIES]]]\n");
        return 2;
    }
    q = index_queries(w, nq);
    exact = malloc((size_t)nq * k * sizeof(*exact));
    got = malloc((size_t)nq * k * sizeof(*got));
    if (!q || !exact || !got || !(c = index_catalog(w, 0, 0))) return 1;
    printf("setting=exact items=%zu k=%d us_per_search=%.1f recall=1\n", sc.n_items, k,
           index_run(c, q, nq, k, 0, exact));
    if (index_items(w, c, nq, k) != 0) return 1;
    catalog_free(c);
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int lists, np;
        double us;
        /* The IVF threshold at the catalog's size, so its lists fit it. */
        if (!(c = index_catalog(w, sc.n_items, probes[i]))) return 1;
        lists = catalog_ivf_lists(c);
        np = probes[i] ? probes[i] : index_default_nprobe(lists);
        us = index_run(c, q, nq, k, 0, got);
        printf("setting=ivf lists=%d nprobe=%d%s k=%d us_per_search=%.1f recall=%.4f\n", lists,
               np, probes[i] ? "" : "(default)", k, us, index_recall(exact, got, nq, k));
        if (probes[i] == 0) {
            us = index_faiss(w, lists, np, q, nq, k, got);
            printf("setting=faiss_ivfflat lists=%d nprobe=%d k=%d us_per_search=%.1f "
                   "recall=%.4f\n", lists, np, k, us, index_recall(exact, got, nq, k));
        }
        catalog_free(c);
    }
    free(q);
    free(exact);
    free(got);
    synth_world_free(w);
    return 0;
}
