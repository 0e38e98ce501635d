/* catalog: item table + FAISS inner-product index, one rwlock over both. */
#include "retrieval/catalog.h"

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/strmap.h"

struct catalog {
    pthread_rwlock_t lock;
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
    strmap ids;          /* item_id → slot */
    FaissIndex *index;   /* ids are slots */
};

/* FAISS fans single-vector adds and searches out over OpenMP threads. The
 * callers (server workers, the catalog feed) already run concurrently, and
 * the extra threads only spin against them, so each calling thread asks for
 * a team of one. The setting is per thread and cheap to repeat. */
static void catalog_one_thread(void) { omp_set_num_threads(1); }

static void catalog_faiss_err(char *err, size_t errlen, const char *what) {
    const char *msg = faiss_get_last_error();
    snprintf(err, errlen, "%s: %s", what, msg ? msg : "unknown FAISS error");
}

void catalog_config_default(catalog_config *cfg) {
    cfg->dim = 32;
    cfg->ivf_threshold = 20000;
    cfg->nprobe = 0;
}

int catalog_new(const catalog_config *cfg, catalog **out, char *err, size_t errlen) {
    catalog *c = NULL;
    int dim = cfg->dim;
    *out = NULL;
    if (dim <= 0 || dim > CATALOG_MAX_DIM) {
        snprintf(err, errlen, "vector dimension %d is outside 1..%d", dim,
                 CATALOG_MAX_DIM);
        return -1;
    }
    if (cfg->nprobe < 0 || (cfg->ivf_threshold && cfg->ivf_threshold < 1000)) {
        snprintf(err, errlen, "nprobe must be positive and the IVF threshold at least 1000");
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (!c) goto oom;
    c->cfg = *cfg;
    c->dim = dim;
    c->next_rebuild = cfg->ivf_threshold;
    strmap_init(&c->ids);
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        goto oom;
    }
    if (faiss_index_factory(&c->index, dim, "IDMap,Flat",
                            METRIC_INNER_PRODUCT) != 0) {
        catalog_faiss_err(err, errlen, "creating the vector index");
        catalog_free(c);
        return -1;
    }
    *out = c;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void catalog_item_clear(catalog_item *it) {
    free(it->item_id);
    free(it->title);
    free(it->creator_id);
    free(it->category);
    free(it->brand);
    memset(it, 0, sizeof(*it));
}

void catalog_free(catalog *c) {
    if (!c) return;
    for (size_t i = 0; i < c->limit; i++) catalog_item_clear(&c->items[i]);
    free(c->items);
    free(c->vecs);
    free(c->free_slots);
    strmap_free(&c->ids);
    if (c->index) faiss_Index_free(c->index);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

int catalog_dim(const catalog *c) { return c->dim; }

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
    c->cap = ncap;
    return 0;
}

static int catalog_check_field(const char *name, const char *v, int required,
                               char *err, size_t errlen) {
    if (!v || !*v) {
        if (!required) return 0;
        snprintf(err, errlen, "%s is empty", name);
        return -1;
    }
    if (strlen(v) > CATALOG_MAX_FIELD) {
        snprintf(err, errlen, "%s is longer than %d bytes", name,
                 CATALOG_MAX_FIELD);
        return -1;
    }
    return 0;
}

static int catalog_remove_from_index(catalog *c, size_t slot) {
    FaissIDSelectorBatch *sel = NULL;
    idx_t id = (idx_t)slot;
    size_t removed = 0;
    if (faiss_IDSelectorBatch_new(&sel, 1, &id) != 0) return -1;
    int rc = faiss_Index_remove_ids(c->index, (FaissIDSelector *)sel, &removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    return rc == 0 && removed == 1 ? 0 : -1;
}

static char *catalog_dup(const char *s) { return strdup(s ? s : ""); }

/* Replaces the index with an IVF index trained on the current vectors.
 * Called with the write lock held. On failure the old index stays and the
 * next attempt waits for the catalog to double. */
static void catalog_rebuild(catalog *c) {
    size_t n = c->count, j = 0;
    int nlist = 1;
    char desc[32];
    float *x = malloc(n * (size_t)c->dim * sizeof(float));
    idx_t *ids = malloc(n * sizeof(idx_t));
    FaissIndex *ivf = NULL;
    FaissIndexIVF *as_ivf;

    c->next_rebuild = n * 2;
    /* About 2·√n lists, a power of two, with at least 39 points per list
     * for k-means. */
    while ((size_t)nlist * 2 <= 2 * (size_t)sqrt((double)n) &&
           (size_t)nlist * 2 * 39 <= n)
        nlist *= 2;
    if (!x || !ids || nlist < 16) goto out;
    for (size_t slot = 0; slot < c->limit; slot++) {
        if (!c->items[slot].item_id) continue;
        memcpy(x + j * (size_t)c->dim, c->vecs + slot * (size_t)c->dim,
               (size_t)c->dim * sizeof(float));
        ids[j++] = (idx_t)slot;
    }
    snprintf(desc, sizeof(desc), "IVF%d,Flat", nlist);
    if (faiss_index_factory(&ivf, c->dim, desc, METRIC_INNER_PRODUCT) != 0 ||
        faiss_Index_train(ivf, (idx_t)n, x) != 0 ||
        faiss_Index_add_with_ids(ivf, (idx_t)n, x, ids) != 0 ||
        !(as_ivf = faiss_IndexIVF_cast(ivf)))
        goto out;
    faiss_IndexIVF_set_nprobe(as_ivf, (size_t)(c->cfg.nprobe ? c->cfg.nprobe
                                               : nlist / 16 > 8 ? nlist / 16 : 8));
    faiss_Index_free(c->index);
    c->index = ivf;
    ivf = NULL;
    c->nlist = nlist;
    c->next_rebuild = n * 10;
out:
    if (ivf) faiss_Index_free(ivf);
    free(x);
    free(ids);
}

int catalog_upsert(catalog *c, const catalog_item *f, const float *vec,
                   size_t vec_len, char *err, size_t errlen) {
    catalog_item nit = {0};
    size_t slot;
    int existed;

    if (catalog_check_field("item_id", f->item_id, 1, err, errlen) ||
        catalog_check_field("title", f->title, 0, err, errlen) ||
        catalog_check_field("creator_id", f->creator_id, 0, err, errlen) ||
        catalog_check_field("category", f->category, 0, err, errlen) ||
        catalog_check_field("brand", f->brand, 0, err, errlen))
        return -1;
    if (vec_len != (size_t)c->dim) {
        snprintf(err, errlen, "embedding has %zu values, the index needs %d",
                 vec_len, c->dim);
        return -1;
    }
    for (size_t i = 0; i < vec_len; i++) {
        if (!isfinite(vec[i])) {
            snprintf(err, errlen, "embedding value %zu is not finite", i);
            return -1;
        }
    }
    if (f->price_cents < 0) {
        snprintf(err, errlen, "price_cents %lld is negative",
                 (long long)f->price_cents);
        return -1;
    }
    nit.item_id = catalog_dup(f->item_id);
    nit.title = catalog_dup(f->title);
    nit.creator_id = catalog_dup(f->creator_id);
    nit.category = catalog_dup(f->category);
    nit.brand = catalog_dup(f->brand);
    nit.price_cents = f->price_cents;
    nit.in_stock = f->in_stock;
    if (!nit.item_id || !nit.title || !nit.creator_id || !nit.category ||
        !nit.brand)
        goto oom;

    catalog_one_thread();
    pthread_rwlock_wrlock(&c->lock);
    existed = strmap_get(&c->ids, f->item_id, &slot) == 0;
    if (existed) {
        if (catalog_remove_from_index(c, slot) != 0) {
            catalog_faiss_err(err, errlen, "removing the old vector");
            goto fail_locked;
        }
    } else {
        if (c->n_free == 0 && catalog_reserve(c) != 0) goto oom_locked;
        slot = c->n_free ? c->free_slots[--c->n_free] : c->limit;
        if (strmap_put(&c->ids, f->item_id, slot) != 0) {
            if (slot != c->limit) c->n_free++;
            goto oom_locked;
        }
    }
    memcpy(c->vecs + slot * (size_t)c->dim, vec, vec_len * sizeof(float));
    idx_t id = (idx_t)slot;
    if (faiss_Index_add_with_ids(c->index, 1, c->vecs + slot * (size_t)c->dim,
                                 &id) != 0) {
        catalog_faiss_err(err, errlen, "adding the vector");
        /* The item cannot be searched: drop it rather than keep a stale row. */
        strmap_del(&c->ids, f->item_id);
        catalog_item_clear(&c->items[slot]);
        c->free_slots[c->n_free++] = slot;
        if (existed) c->count--;
        goto fail_locked;
    }
    catalog_item_clear(&c->items[slot]);
    c->items[slot] = nit;
    if (!existed) {
        if (slot == c->limit) c->limit++;
        c->count++;
        if (c->next_rebuild && c->count >= c->next_rebuild) catalog_rebuild(c);
    }
    pthread_rwlock_unlock(&c->lock);
    return 0;

oom_locked:
    snprintf(err, errlen, "out of memory");
fail_locked:
    pthread_rwlock_unlock(&c->lock);
    catalog_item_clear(&nit);
    return -1;
oom:
    snprintf(err, errlen, "out of memory");
    catalog_item_clear(&nit);
    return -1;
}

int catalog_delete(catalog *c, const char *item_id) {
    size_t slot;
    int rc = -1;
    catalog_one_thread();
    pthread_rwlock_wrlock(&c->lock);
    if (strmap_get(&c->ids, item_id, &slot) != 0) goto out;
    catalog_remove_from_index(c, slot);
    strmap_del(&c->ids, item_id);
    catalog_item_clear(&c->items[slot]);
    c->free_slots[c->n_free++] = slot;
    c->count--;
    rc = 0;
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
    return strmap_get(&c->ids, item_id, slot);
}

int catalog_ivf_lists(const catalog *c) { return c->nlist; }

int catalog_search(catalog *c, const float *q, int k, size_t *slots,
                   float *scores) {
    idx_t *labels;
    int n = 0;
    if (k <= 0) return 0;
    catalog_one_thread();
    labels = malloc((size_t)k * sizeof(*labels));
    if (!labels) return -1;
    if (faiss_Index_search(c->index, 1, q, k, scores, labels) != 0) {
        free(labels);
        return -1;
    }
    /* FAISS pads with -1 when fewer than k vectors exist. */
    for (int i = 0; i < k; i++) {
        if (labels[i] < 0) break;
        slots[n] = (size_t)labels[i];
        scores[n] = scores[i];
        n++;
    }
    free(labels);
    return n;
}
