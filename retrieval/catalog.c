/* catalog: item table + inner-product index (retrieval/ivf.h, centroids
 * trained by FAISS), one rwlock over both. */
#include "retrieval/catalog.h"

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/ivf.h"
#include "retrieval/vec.h"
#include "services/base/status.h"
#include "services/base/strmap.h"

/* A snapshot's query side, in slot space (see catalog.h). */
typedef struct catalog_model {
    size_t n;               /* slots 0..n-1 may be covered */
    unsigned char *covered; /* n: whether the slot's vectors are the snapshot's */
    float *P;               /* n * dim */
    uint64_t *nb_off;       /* n + 1 */
    uint32_t *nb_slot;
    float *nb_w;
    float *bias;            /* n, or NULL */
    char *version;
} catalog_model;

struct catalog {
    pthread_rwlock_t lock;
    catalog_model *model; /* NULL until a snapshot is loaded */
    catalog_config cfg;
    int dim;
    int nlist;           /* IVF lists, 0 while flat */
    size_t next_rebuild; /* item count that triggers the next rebuild; 0 = none */
    catalog_item *items; /* cap entries; item_id == NULL marks a free slot */
    float *vecs;         /* cap * dim */
    size_t cap;
    size_t limit;        /* slots ever used */
    size_t count;        /* live items */
    size_t *free_slots;  /* stack of reusable slots, at most cap */
    size_t n_free;
    catalog_facets *facets; /* cap entries: each slot's interned fields */
    strmap keys;         /* interned category, brand and creator strings → key (1, 2 ...);
                          * never shrinks: keys stay valid while the catalog lives */
    strmap ids;          /* item_id → slot */
    uint64_t id_gen;     /* bumped (write lock held) whenever ids changes */
    strmap deleted;      /* ids the catalog topic deleted: a snapshot must not
                          * bring them back */
    ivf *index;          /* by slot */
    creators *creators;  /* creator vectors from the live items' index vectors */
};

static void catalog_faiss_err(char *err, size_t errlen, const char *what) {
    const char *msg = faiss_get_last_error();
    snprintf(err, errlen, "%s: %s", what, msg ? msg : "unknown FAISS error");
}

/* Writers first: requests hold the read lock briefly but without pause
 * under load, and glibc's default lets a stream of overlapping readers keep
 * the catalog feed (updates, stock changes, snapshot swaps) waiting for
 * good. With writers preferred, a waiting writer stops new readers. */
static int catalog_lock_init(pthread_rwlock_t *lock) {
    pthread_rwlockattr_t attr;
    int rc;
    if (pthread_rwlockattr_init(&attr) != 0) return -1;
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return rc;
}

void catalog_config_default(catalog_config *cfg) {
    cfg->dim = 32;
    cfg->ivf_threshold = 20000;
    cfg->nprobe = 0;
    cfg->max_neighbours = 0;
}

int catalog_new(const catalog_config *cfg, catalog **out, char *err, size_t errlen) {
    catalog *c = NULL;
    int dim = cfg->dim;
    *out = NULL;
    if (dim <= 0 || dim > CATALOG_MAX_DIM) {
        return status_fail(AISLE_EINVAL, err, errlen, "vector dimension %d is outside 1..%d",
                           dim, CATALOG_MAX_DIM);
    }
    if (cfg->nprobe < 0 || (cfg->ivf_threshold && cfg->ivf_threshold < 1000)) {
        return status_fail(AISLE_EINVAL, err, errlen,
                           "nprobe must be positive and the IVF threshold at least 1000");
    }
    /* Single-threaded BLAS (k-means training uses it) keeps the feed from
     * contending with requests for the cores; the setting is process-wide. */
    openblas_set_num_threads(1);
    c = calloc(1, sizeof(*c));
    if (!c) goto oom;
    c->cfg = *cfg;
    c->dim = dim;
    c->next_rebuild = cfg->ivf_threshold;
    strmap_init(&c->ids);
    strmap_init(&c->keys);
    strmap_init(&c->deleted);
    if (!(c->creators = creators_new(dim))) {
        free(c);
        goto oom;
    }
    if (catalog_lock_init(&c->lock) != 0) {
        creators_free(c->creators);
        free(c);
        goto oom;
    }
    if (ivf_new(dim, 1, NULL, 1, &c->index) != AISLE_OK) {
        catalog_free(c);
        goto oom;
    }
    *out = c;
    return AISLE_OK;
oom:
    return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
}

static void catalog_item_clear(catalog_item *it) {
    free(it->item_id);
    free(it->title);
    free(it->creator_id);
    free(it->category);
    free(it->brand);
    free(it->creator_name);
    memset(it, 0, sizeof(*it));
}

static void catalog_model_free(catalog_model *m) {
    if (!m) return;
    free(m->covered);
    free(m->P);
    free(m->nb_off);
    free(m->nb_slot);
    free(m->nb_w);
    free(m->bias);
    free(m->version);
    free(m);
}

void catalog_free(catalog *c) {
    if (!c) return;
    catalog_model_free(c->model);
    for (size_t i = 0; i < c->limit; i++) catalog_item_clear(&c->items[i]);
    free(c->items);
    free(c->vecs);
    free(c->free_slots);
    free(c->facets);
    strmap_free(&c->keys);
    strmap_free(&c->ids);
    strmap_free(&c->deleted);
    ivf_free(c->index);
    creators_free(c->creators);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

int catalog_dim(const catalog *c) { return c->dim; }

creators *catalog_creators(catalog *c) { return c->creators; }

/* Moves slot's index vector in the creator set from was's creator to now's
 * (either may be NULL: none); write lock held. Out of memory only leaves a
 * creator out of the suggestions, so it does not fail the event. */
static void catalog_creators_move(catalog *c, const catalog_item *was, const catalog_item *now,
                                  size_t slot) {
    const float *v = c->vecs + slot * (size_t)c->dim;
    if (was) creators_add(c->creators, was->creator_id, NULL, v, slot, -1);
    if (now) creators_add(c->creators, now->creator_id, now->creator_name, v, slot, 1);
}

static int catalog_reserve(catalog *c) {
    if (c->limit < c->cap) return 0;
    size_t ncap = c->cap ? c->cap * 2 : 1024;
    catalog_item *ni = realloc(c->items, ncap * sizeof(*ni));
    if (!ni) return -1;
    c->items = ni;
    memset(c->items + c->cap, 0, (ncap - c->cap) * sizeof(*ni));
    float *nv = realloc(c->vecs, ncap * (size_t)c->dim * sizeof(float));
    if (!nv) return -1;
    c->vecs = nv;
    size_t *nf = realloc(c->free_slots, ncap * sizeof(*nf));
    if (!nf) return -1;
    c->free_slots = nf;
    catalog_facets *fc = realloc(c->facets, ncap * sizeof(*fc));
    if (!fc) return -1;
    c->facets = fc;
    memset(c->facets + c->cap, 0, (ncap - c->cap) * sizeof(*fc));
    c->cap = ncap;
    return 0;
}

static int catalog_check_field(const char *name, const char *v, int required,
                               char *err, size_t errlen) {
    if (!v || !*v) {
        if (!required) return AISLE_OK;
        return status_fail(AISLE_EINVAL, err, errlen, "%s is empty", name);
    }
    if (strlen(v) > CATALOG_MAX_FIELD)
        return status_fail(AISLE_EINVAL, err, errlen, "%s is longer than %d bytes", name,
                           CATALOG_MAX_FIELD);
    return AISLE_OK;
}

static char *catalog_dup(const char *s) { return strdup(s ? s : ""); }

/* The key of s, interned when new (0 for ""); write lock held. Returns
 * AISLE_OK or AISLE_ENOMEM. */
static int catalog_intern(catalog *c, const char *s, uint32_t *key) {
    size_t k, len = strlen(s);
    *key = 0;
    if (!len) return AISLE_OK;
    if (strmap_get(&c->keys, s, len, &k) != AISLE_OK) {
        k = c->keys.used + 1; /* never deleted from, so keys stay distinct */
        if (k >= CATALOG_NO_KEY || strmap_put(&c->keys, s, len, k) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    *key = (uint32_t)k;
    return AISLE_OK;
}

/* it's interned fields, stock and price into *fc; write lock held. */
static int catalog_intern_item(catalog *c, const catalog_item *it, catalog_facets *fc) {
    fc->live = 1;
    fc->in_stock = it->in_stock != 0;
    fc->price_cents = it->price_cents;
    if (catalog_intern(c, it->category, &fc->category) != AISLE_OK ||
        catalog_intern(c, it->brand, &fc->brand) != AISLE_OK ||
        catalog_intern(c, it->creator_id, &fc->creator) != AISLE_OK)
        return AISLE_ENOMEM;
    return AISLE_OK;
}

uint32_t catalog_key(const catalog *c, const char *s) {
    size_t k;
    if (!s || !*s) return 0;
    return strmap_get(&c->keys, s, strlen(s), &k) == AISLE_OK ? (uint32_t)k : CATALOG_NO_KEY;
}

const catalog_facets *catalog_facets_at(const catalog *c, size_t slot) {
    assert(slot < c->limit);
    return &c->facets[slot];
}

/* How many IVF lists n items get: about 2·√n (a power of two, at least
 * 39 points per list for k-means, at least 16), or 0 for an exact index. */
static int catalog_lists(const catalog *c, size_t n) {
    int l = 1;
    if (!c->cfg.ivf_threshold || n < c->cfg.ivf_threshold) return 0;
    while ((size_t)l * 2 <= 2 * (size_t)sqrt((double)n) && (size_t)l * 2 * 39 <= n) l *= 2;
    return l >= 16 ? l : 0;
}

/* Centroids of nlist lists over the live slots' rows of vecs: FAISS's
 * k-means as its inner-product IVF index trains them, read back from its
 * quantizer. nlist * dim floats, malloc'ed (the caller frees them), or NULL. */
static float *catalog_train(const catalog *c, const float *vecs, int nlist) {
    size_t d = (size_t)c->dim, j = 0;
    char desc[32];
    FaissIndex *idx = NULL;
    FaissIndexIVF *as_ivf;
    float *x = malloc((c->count ? c->count : 1) * d * sizeof(float));
    float *cent = malloc((size_t)nlist * d * sizeof(float));
    for (size_t slot = 0; x && slot < c->limit; slot++)
        if (c->items[slot].item_id) memcpy(x + j++ * d, vecs + slot * d, d * sizeof(float));
    snprintf(desc, sizeof(desc), "IVF%d,Flat", nlist);
    omp_set_num_threads(omp_get_num_procs()); /* k-means may use every core */
    if (!x || !cent || faiss_index_factory(&idx, c->dim, desc, METRIC_INNER_PRODUCT) != 0 ||
        faiss_Index_train(idx, (idx_t)j, x) != 0 || !(as_ivf = faiss_IndexIVF_cast(idx)) ||
        faiss_Index_reconstruct_n(faiss_IndexIVF_quantizer(as_ivf), 0, nlist, cent) != 0) {
        free(cent);
        cent = NULL;
    }
    if (idx) faiss_Index_free(idx);
    free(x);
    return cent;
}

/* The lists an index of nlist lists probes: the setting, else lists/16 and
 * at least 8 (ivf clamps it to its lists). */
static int catalog_nprobe(const catalog *c, int nlist) {
    return c->cfg.nprobe ? c->cfg.nprobe : nlist / 16 > 8 ? nlist / 16 : 8;
}

/* Builds a fresh index over the live slots' rows of vecs: exact below the
 * IVF threshold, else IVF (catalog_lists). Reads the table without the
 * lock, so only the thread that applies catalog events may call it.
 * Returns 0 with the index in *out (the caller frees it) and its lists in
 * *nlist (0 when exact), or -1. */
static int catalog_build_index(const catalog *c, const float *vecs, ivf **out, int *nlist) {
    size_t d = (size_t)c->dim;
    float *cent = NULL;
    ivf *idx = NULL;
    int rc = -1;
    *out = NULL;
    *nlist = catalog_lists(c, c->count);
    if (*nlist && !(cent = catalog_train(c, vecs, *nlist))) goto out;
    if (ivf_new(c->dim, *nlist ? *nlist : 1, cent, catalog_nprobe(c, *nlist), &idx) != AISLE_OK)
        goto out;
    for (size_t slot = 0; slot < c->limit; slot++)
        if (c->items[slot].item_id && ivf_add(idx, slot, vecs + slot * d) != AISLE_OK) goto out;
    *out = idx;
    idx = NULL;
    rc = 0;
out:
    ivf_free(idx);
    free(cent);
    return rc;
}

/* Replaces the exact index with IVF once the catalog crosses the threshold.
 * Built without the lock (only the writer thread changes the table), so
 * requests go on with the old index; only the swap takes the write lock. On
 * failure the old index stays and the next attempt waits for the catalog to
 * double. */
static void catalog_rebuild(catalog *c) {
    ivf *idx, *old;
    int nlist;
    c->next_rebuild = c->count * 2;
    if (catalog_build_index(c, c->vecs, &idx, &nlist) != 0) return;
    pthread_rwlock_wrlock(&c->lock);
    old = c->index;
    c->index = idx;
    c->nlist = nlist;
    c->next_rebuild = c->count * 10;
    pthread_rwlock_unlock(&c->lock);
    ivf_free(old);
}

/* Whether a loaded snapshot supplies slot's vectors. */
static int catalog_covered(const catalog *c, size_t slot) {
    return c->model && slot < c->model->n && c->model->covered[slot];
}

int catalog_upsert(catalog *c, const catalog_item *f, const float *vec,
                   size_t vec_len, char *err, size_t errlen) {
    catalog_item nit = {0};
    catalog_facets fc;
    size_t slot;
    int existed, rc;

    if (catalog_check_field("item_id", f->item_id, 1, err, errlen) ||
        catalog_check_field("title", f->title, 0, err, errlen) ||
        catalog_check_field("creator_id", f->creator_id, 0, err, errlen) ||
        catalog_check_field("category", f->category, 0, err, errlen) ||
        catalog_check_field("brand", f->brand, 0, err, errlen) ||
        catalog_check_field("creator_name", f->creator_name, 0, err, errlen))
        return AISLE_EINVAL;
    if (vec_len != 0 && vec_len != (size_t)c->dim)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "embedding has %zu values, the index needs %d", vec_len, c->dim);
    for (size_t i = 0; i < vec_len; i++)
        if (!isfinite(vec[i]))
            return status_fail(AISLE_EINVAL, err, errlen, "embedding value %zu is not finite",
                               i);
    if (f->price_cents < 0)
        return status_fail(AISLE_EINVAL, err, errlen, "price_cents %lld is negative",
                           (long long)f->price_cents);
    nit.item_id = catalog_dup(f->item_id);
    nit.title = catalog_dup(f->title);
    nit.creator_id = catalog_dup(f->creator_id);
    nit.category = catalog_dup(f->category);
    nit.brand = catalog_dup(f->brand);
    nit.creator_name = catalog_dup(f->creator_name);
    nit.price_cents = f->price_cents;
    nit.in_stock = f->in_stock;
    if (!nit.item_id || !nit.title || !nit.creator_id || !nit.category ||
        !nit.brand || !nit.creator_name)
        goto oom;

    pthread_rwlock_wrlock(&c->lock);
    if (catalog_intern_item(c, &nit, &fc) != AISLE_OK) goto oom_locked;
    existed = strmap_get(&c->ids, f->item_id, strlen(f->item_id), &slot) == 0;
    if (!existed && vec_len == 0) {
        rc = status_fail(AISLE_EINVAL, err, errlen, "a new item needs an embedding");
        goto fail_locked;
    }
    if (existed && (vec_len == 0 || catalog_covered(c, slot))) {
        /* Facts only: the vector stays (a snapshot's is authoritative). */
        catalog_creators_move(c, &c->items[slot], &nit, slot);
        catalog_item_clear(&c->items[slot]);
        c->items[slot] = nit;
        c->facets[slot] = fc;
        pthread_rwlock_unlock(&c->lock);
        return AISLE_OK;
    }
    if (existed) {
        catalog_creators_move(c, &c->items[slot], NULL, slot);
    } else {
        if (c->n_free == 0 && catalog_reserve(c) != 0) goto oom_locked;
        slot = c->n_free ? c->free_slots[--c->n_free] : c->limit;
        c->id_gen++;
        if (strmap_put(&c->ids, f->item_id, strlen(f->item_id), slot) != 0) {
            if (slot != c->limit) c->n_free++;
            goto oom_locked;
        }
    }
    memcpy(c->vecs + slot * (size_t)c->dim, vec, vec_len * sizeof(float));
    /* ivf_add replaces an existing item's row. */
    if ((rc = ivf_add(c->index, slot, c->vecs + slot * (size_t)c->dim)) != AISLE_OK) {
        status_fail(rc, err, errlen, "no room to index the vector");
        /* The item cannot be searched: drop it rather than keep a stale row. */
        strmap_del(&c->ids, f->item_id, strlen(f->item_id));
        catalog_item_clear(&c->items[slot]);
        c->facets[slot].live = 0;
        /* A new slot past the limit was never handed out (the limit stays),
         * and one a loaded snapshot's neighbour lists name stays unused, as
         * after a delete. */
        if (slot < c->limit && (!c->model || slot >= c->model->n))
            c->free_slots[c->n_free++] = slot;
        if (existed) c->count--;
        goto fail_locked;
    }
    catalog_item_clear(&c->items[slot]);
    c->items[slot] = nit;
    c->facets[slot] = fc;
    catalog_creators_move(c, NULL, &c->items[slot], slot);
    if (!existed) {
        if (slot == c->limit) c->limit++;
        c->count++;
        strmap_del(&c->deleted, f->item_id, strlen(f->item_id));
    }
    pthread_rwlock_unlock(&c->lock);
    if (c->next_rebuild && c->count >= c->next_rebuild) catalog_rebuild(c);
    return AISLE_OK;

oom_locked:
    pthread_rwlock_unlock(&c->lock);
oom:
    catalog_item_clear(&nit);
    return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
fail_locked:
    pthread_rwlock_unlock(&c->lock);
    catalog_item_clear(&nit);
    return rc;
}

int catalog_delete(catalog *c, const char *item_id) {
    size_t slot;
    int rc = AISLE_ENOTFOUND;
    pthread_rwlock_wrlock(&c->lock);
    /* Marked even when unknown (a snapshot may know it). Best effort:
     * without memory for the mark a later snapshot could bring the item
     * back, as it did before marks existed. */
    strmap_put(&c->deleted, item_id, strlen(item_id), 1);
    if (strmap_get(&c->ids, item_id, strlen(item_id), &slot) != AISLE_OK) goto out;
    ivf_remove(c->index, slot);
    catalog_creators_move(c, &c->items[slot], NULL, slot);
    strmap_del(&c->ids, item_id, strlen(item_id));
    c->id_gen++;
    catalog_item_clear(&c->items[slot]);
    c->facets[slot].live = 0;
    /* Neighbour lists of a snapshot may name this slot: never reuse it for
     * another item while that snapshot is loaded. */
    if (!c->model || slot >= c->model->n) c->free_slots[c->n_free++] = slot;
    c->count--;
    rc = AISLE_OK;
out:
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

void catalog_read_begin(catalog *c) { pthread_rwlock_rdlock(&c->lock); }
void catalog_read_end(catalog *c) { pthread_rwlock_unlock(&c->lock); }

size_t catalog_count(const catalog *c) { return c->count; }
size_t catalog_slot_limit(const catalog *c) { return c->limit; }

const catalog_item *catalog_at(const catalog *c, size_t slot) {
    if (slot >= c->limit || !c->items[slot].item_id) return NULL;
    return &c->items[slot];
}

const float *catalog_vector(const catalog *c, size_t slot) {
    return c->vecs + slot * (size_t)c->dim;
}

int catalog_lookup(const catalog *c, const char *item_id, size_t *slot) {
    return strmap_get(&c->ids, item_id, strlen(item_id), slot);
}

uint64_t catalog_id_generation(const catalog *c) { return c->id_gen; }

int catalog_ivf_lists(const catalog *c) { return c->nlist; }

void catalog_set_nprobe(catalog *c, int nprobe) {
    assert(nprobe >= 0);
    pthread_rwlock_wrlock(&c->lock);
    c->cfg.nprobe = nprobe;
    if (c->nlist) ivf_set_nprobe(c->index, catalog_nprobe(c, c->nlist));
    pthread_rwlock_unlock(&c->lock);
}


/* With lists, the index scores half rows: it is asked a quarter deeper and
 * its hits are re-scored with the float vectors, so callers get real
 * inner products (the ranker uses them as scores, and as a bound). */
/* Re-scores a batch query's n approximate hits (asked deeper than its
 * caller's k) with the float vectors and keeps the k best of them in
 * *want, best first. h is scratch for n hits. */
#define CATALOG_RESCORE_GROUP 64 /* rows a vec_dots_at call, on the stack */
static void catalog_rescore(const catalog *c, const ivf_query *got, vec_hit *h,
                            catalog_query *want) {
    int n = got->n;
    /* The rows lie scattered over the table: ask for all of them before
     * the first product, so their cache misses overlap rather than queue. */
    for (int i = 0; i < n; i++) {
        const float *v = c->vecs + got->slots[i] * (size_t)c->dim;
        __builtin_prefetch(v);
        if (c->dim > 16) __builtin_prefetch(v + 16);
    }
    /* Four rows a call: a short row's cost is mostly its lane sum. */
    for (int i = 0; i < n; i += CATALOG_RESCORE_GROUP) {
        const float *at[CATALOG_RESCORE_GROUP];
        float score[CATALOG_RESCORE_GROUP];
        int m = n - i < CATALOG_RESCORE_GROUP ? n - i : CATALOG_RESCORE_GROUP;
        for (int k = 0; k < m; k++) at[k] = c->vecs + got->slots[i + k] * (size_t)c->dim;
        vec_dots_at(got->q, at, (size_t)m, c->dim, score);
        for (int k = 0; k < m; k++) h[i + k] = (vec_hit){score[k], (uint32_t)got->slots[i + k]};
    }
    if (n > 0) vec_hits_sort(h, (size_t)n);
    if (n > want->k) n = want->k;
    for (int i = 0; i < n; i++) {
        want->slots[i] = h[i].id;
        want->scores[i] = h[i].score;
    }
    want->n = n;
}

int catalog_search_batch(catalog *c, catalog_query *qs, size_t nq) {
    ivf_query deep[CATALOG_MAX_BATCH];
    size_t total = 0, at = 0;
    size_t *slots = NULL;
    float *scores = NULL;
    vec_hit *h = NULL;
    int rc = AISLE_ENOMEM, exact = ivf_exact(c->index);
    assert(nq <= CATALOG_MAX_BATCH);
    /* With lists the rows are half floats: ask each a little deeper and
     * re-score in float, so the k kept are the float order's. */
    for (size_t b = 0; b < nq; b++) {
        int k = qs[b].k > 0 ? qs[b].k : 0;
        deep[b] = (ivf_query){.q = qs[b].q, .k = exact ? k : k + k / 4 + 8,
                              .keep = qs[b].keep, .keep_arg = qs[b].keep_arg,
                              .any_order = !exact, .nprobe = qs[b].nprobe};
        if (!k) deep[b].k = 0;
        total += (size_t)deep[b].k;
    }
    slots = malloc((total + 1) * sizeof(*slots));
    scores = malloc((total + 1) * sizeof(*scores));
    h = malloc((total + 1) * sizeof(*h));
    if (!slots || !scores || !h) goto fail;
    for (size_t b = 0; b < nq; b++) {
        deep[b].slots = exact ? qs[b].slots : slots + at;
        deep[b].scores = exact ? qs[b].scores : scores + at;
        at += (size_t)deep[b].k;
    }
    if ((rc = ivf_search_batch(c->index, deep, nq)) != AISLE_OK) goto fail;
    for (size_t b = 0; b < nq; b++) {
        if (exact) qs[b].n = deep[b].n;
        else catalog_rescore(c, &deep[b], h, &qs[b]);
    }
fail:
    free(slots);
    free(scores);
    free(h);
    return rc;
}

int catalog_search(catalog *c, const float *q, int k, size_t *slots,
                   float *scores) {
    catalog_query one = {.q = q, .k = k, .slots = slots, .scores = scores};
    int rc = catalog_search_batch(c, &one, 1);
    return rc < 0 ? rc : one.n;
}

const float *catalog_query_vector(const catalog *c, size_t slot) {
    if (catalog_covered(c, slot)) return c->model->P + slot * (size_t)c->dim;
    return c->vecs + slot * (size_t)c->dim;
}

void catalog_neighbours(const catalog *c, size_t slot, const uint32_t **slots,
                        const float **weights, size_t *n) {
    *n = 0;
    *slots = NULL;
    *weights = NULL;
    if (!catalog_covered(c, slot)) return;
    *slots = c->model->nb_slot + c->model->nb_off[slot];
    *weights = c->model->nb_w + c->model->nb_off[slot];
    *n = (size_t)(c->model->nb_off[slot + 1] - c->model->nb_off[slot]);
}

float catalog_bias(const catalog *c, size_t slot) {
    return catalog_covered(c, slot) && c->model->bias ? c->model->bias[slot] : 0.0f;
}

int catalog_snapshot_version(catalog *c, char *buf, size_t len) {
    int has;
    pthread_rwlock_rdlock(&c->lock);
    has = c->model != NULL;
    if (buf && len) snprintf(buf, len, "%s", has ? c->model->version : "");
    pthread_rwlock_unlock(&c->lock);
    return has;
}

/* Gives every snapshot item a slot (new items: id only, in stock) and
 * records them in row_slot. Write lock held by the caller. */
static int catalog_snapshot_slots(catalog *c, const catalog_snapshot *snap, size_t *row_slot) {
    for (uint32_t r = 0; r < snap->n_items; r++) {
        const char *id = snap->item_ids[r];
        size_t slot;
        if (strmap_get(&c->ids, id, strlen(id), &slot) == 0) {
            row_slot[r] = slot;
            continue;
        }
        if (strmap_get(&c->deleted, id, strlen(id), &slot) == AISLE_OK) {
            row_slot[r] = SIZE_MAX; /* deleted since the snapshot was trained */
            continue;
        }
        if (c->n_free == 0 && catalog_reserve(c) != 0) return AISLE_ENOMEM;
        slot = c->n_free ? c->free_slots[--c->n_free] : c->limit;
        c->id_gen++;
        catalog_item it = {strdup(id), strdup(""), strdup(""), strdup(""), strdup(""), 0, 1,
                           strdup("")};
        if (!it.item_id || !it.title || !it.creator_id || !it.category || !it.brand ||
            !it.creator_name ||
            strmap_put(&c->ids, id, strlen(id), slot) != 0) {
            catalog_item_clear(&it);
            if (slot != c->limit) c->n_free++;
            return AISLE_ENOMEM;
        }
        memset(c->vecs + slot * (size_t)c->dim, 0, (size_t)c->dim * sizeof(float));
        c->items[slot] = it;
        c->facets[slot] = (catalog_facets){.live = 1, .in_stock = 1};
        if (slot == c->limit) c->limit++;
        c->count++;
        row_slot[r] = slot;
    }
    return AISLE_OK;
}

/* Builds the slot-space model and the new index vectors (no lock: only the
 * event-applying thread writes the table). */
static catalog_model *catalog_model_build(const catalog *c, const catalog_snapshot *snap,
                                          const size_t *row_slot, float *vecs) {
    const catalog_snapshot *em = snap;
    size_t d = (size_t)c->dim, n = c->limit;
    uint64_t keep = c->cfg.max_neighbours ? c->cfg.max_neighbours : UINT64_MAX;
    catalog_model *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->n = n;
    m->covered = calloc(n ? n : 1, 1);
    m->P = malloc((n ? n : 1) * d * sizeof(float));
    m->nb_off = calloc(n + 1, sizeof(uint64_t));
    m->nb_slot = malloc((em->nb_off[em->n_items] ? em->nb_off[em->n_items] : 1) * sizeof(uint32_t));
    m->nb_w = malloc((em->nb_off[em->n_items] ? em->nb_off[em->n_items] : 1) * sizeof(float));
    m->bias = em->bias ? calloc(n ? n : 1, sizeof(float)) : NULL;
    m->version = strdup(snap->version ? snap->version : "");
    if (!m->covered || !m->P || !m->nb_off || !m->nb_slot || !m->nb_w ||
        (em->bias && !m->bias) || !m->version)
        goto fail;
    memcpy(m->P, vecs, n * d * sizeof(float));
    /* Rows of deleted items (row_slot SIZE_MAX) are left out, and so are
     * neighbour entries that point at them; of the rest a list keeps its
     * first cfg.max_neighbours. */
    for (uint32_t r = 0; r < em->n_items; r++) {
        size_t slot = row_slot[r];
        if (slot == SIZE_MAX) continue;
        memcpy(vecs + slot * d, em->Q + (size_t)r * d, d * sizeof(float));
        memcpy(m->P + slot * d, em->P + (size_t)r * d, d * sizeof(float));
        m->covered[slot] = 1;
        if (m->bias) m->bias[slot] = em->bias[r];
        for (uint64_t e = em->nb_off[r]; e < em->nb_off[r + 1] && m->nb_off[slot + 1] < keep; e++)
            m->nb_off[slot + 1] += row_slot[em->nb_item[e]] != SIZE_MAX;
    }
    for (size_t s = 0; s < n; s++) m->nb_off[s + 1] += m->nb_off[s];
    for (uint32_t r = 0; r < em->n_items; r++) {
        if (row_slot[r] == SIZE_MAX) continue;
        uint64_t o = m->nb_off[row_slot[r]], end = m->nb_off[row_slot[r] + 1];
        for (uint64_t e = em->nb_off[r]; e < em->nb_off[r + 1] && o < end; e++) {
            if (row_slot[em->nb_item[e]] == SIZE_MAX) continue;
            m->nb_slot[o] = (uint32_t)row_slot[em->nb_item[e]];
            m->nb_w[o++] = em->nb_weight[e];
        }
    }
    return m;
fail:
    catalog_model_free(m);
    return NULL;
}

/* A creator set over the live items' rows of vecs (a snapshot's new index
 * vectors), built without the lock like the model; NULL when out of
 * memory. */
static creators *catalog_creators_build(const catalog *c, const float *vecs) {
    creators *cr = creators_new(c->dim);
    for (size_t slot = 0; cr && slot < c->limit; slot++) {
        const catalog_item *it = &c->items[slot];
        if (it->item_id && creators_add(cr, it->creator_id, it->creator_name,
                                        vecs + slot * (size_t)c->dim, slot, 1) != AISLE_OK) {
            creators_free(cr);
            cr = NULL;
        }
    }
    return cr;
}

int catalog_load_snapshot(catalog *c, const catalog_snapshot *snap, char *err,
                          size_t errlen) {
    size_t *row_slot = NULL;
    float *vecs = NULL, *old_vecs;
    catalog_model *m = NULL, *old_model;
    ivf *idx = NULL, *old_index;
    creators *cr = NULL, *old_creators;
    int nlist, rc = AISLE_ENOMEM;

    if (snap->dim != (uint32_t)c->dim)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "snapshot %s has %u-dimensional vectors, the catalog %d",
                           snap->version, snap->dim, c->dim);
    row_slot = malloc((snap->n_items + 1) * sizeof(*row_slot));
    if (!row_slot) goto oom;
    pthread_rwlock_wrlock(&c->lock);
    rc = catalog_snapshot_slots(c, snap, row_slot);
    pthread_rwlock_unlock(&c->lock);
    if (rc != AISLE_OK) goto oom;
    rc = AISLE_EINTERNAL;

    /* The expensive part runs while requests go on with the old index. */
    vecs = malloc(c->cap * (size_t)c->dim * sizeof(float));
    if (!vecs) goto oom;
    memcpy(vecs, c->vecs, c->limit * (size_t)c->dim * sizeof(float));
    if (!(m = catalog_model_build(c, snap, row_slot, vecs))) goto oom;
    if (!(cr = catalog_creators_build(c, vecs))) goto oom;
    if (catalog_build_index(c, vecs, &idx, &nlist) != 0) {
        catalog_faiss_err(err, errlen, "building the index for the snapshot");
        goto out;
    }

    pthread_rwlock_wrlock(&c->lock);
    old_vecs = c->vecs;
    old_index = c->index;
    old_model = c->model;
    old_creators = c->creators;
    c->vecs = vecs;
    c->creators = cr;
    c->index = idx;
    c->model = m;
    c->nlist = nlist;
    if (c->cfg.ivf_threshold) c->next_rebuild = nlist ? c->count * 10 : c->cfg.ivf_threshold;
    pthread_rwlock_unlock(&c->lock);
    free(old_vecs);
    ivf_free(old_index);
    catalog_model_free(old_model);
    creators_free(old_creators);
    vecs = NULL;
    m = NULL;
    cr = NULL;
    rc = AISLE_OK;
    goto out;
oom:
    rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory loading a snapshot");
out:
    free(row_slot);
    free(vecs);
    catalog_model_free(m);
    creators_free(cr);
    return rc;
}
