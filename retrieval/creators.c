/* creators: per-creator vector sums and a lazily rebuilt flat FAISS index
 * over their normalized means (see creators.h). */
#include "retrieval/creators.h"

#include <assert.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/grow.h"
#include "services/base/status.h"
#include "services/base/strmap.h"

typedef struct creators_entry {
    char *id;     /* owned */
    char *name;   /* owned; "" until the catalog gives one */
    double *sum;  /* owned: dim values */
    size_t n_items;
    uint32_t *slots; /* owned: the live items' catalog slots, n_items of them, in no order */
    size_t slots_cap;
} creators_entry;

struct creators {
    int dim;
    strmap ids;             /* creator id → position in entries */
    creators_entry *entries; /* n of them, cap allocated; never removed */
    size_t n, cap;
    size_t live;            /* entries with items */
    pthread_mutex_t mu;     /* guards index and dirty against concurrent searches */
    FaissIndex *index;      /* ids are positions in entries; NULL until built */
    int dirty;              /* the sums changed since the index was built */
};

creators *creators_new(int dim) {
    creators *cr = calloc(1, sizeof(*cr));
    if (!cr) return NULL;
    cr->dim = dim;
    cr->dirty = 1;
    strmap_init(&cr->ids);
    if (pthread_mutex_init(&cr->mu, NULL) != 0) {
        free(cr);
        return NULL;
    }
    return cr;
}

void creators_free(creators *cr) {
    if (!cr) return;
    for (size_t i = 0; i < cr->n; i++) {
        free(cr->entries[i].id);
        free(cr->entries[i].name);
        free(cr->entries[i].sum);
        free(cr->entries[i].slots);
    }
    free(cr->entries);
    strmap_free(&cr->ids);
    if (cr->index) faiss_Index_free(cr->index);
    pthread_mutex_destroy(&cr->mu);
    free(cr);
}

/* The entry of id, appended empty when new; NULL when out of memory. */
static creators_entry *creators_entry_for(creators *cr, const char *id) {
    size_t at, len = strlen(id);
    creators_entry e = {0};
    if (strmap_get(&cr->ids, id, len, &at) == AISLE_OK) return &cr->entries[at];
    if (GROW_ROOM(cr->entries, cr->n, cr->cap, 64)) return NULL;
    e.id = strdup(id);
    e.name = strdup("");
    e.sum = calloc((size_t)cr->dim, sizeof(double));
    if (!e.id || !e.name || !e.sum || strmap_put(&cr->ids, id, len, cr->n) != AISLE_OK) {
        free(e.id);
        free(e.name);
        free(e.sum);
        return NULL;
    }
    cr->entries[cr->n] = e;
    return &cr->entries[cr->n++];
}

/* Adds slot to e's list, or takes it out (the last entry takes its place:
 * a linear find, over one creator's items). Returns 1, 0 when taking out a
 * slot the list lacks (its add ran out of memory: the sum never had it
 * either), or AISLE_ENOMEM with e as it was. */
static int creators_slot(creators_entry *e, size_t slot, int sign) {
    if (sign < 0) {
        for (size_t i = 0; i < e->n_items; i++)
            if (e->slots[i] == slot) {
                e->slots[i] = e->slots[e->n_items - 1];
                return 1;
            }
        return 0;
    }
    if (GROW_ROOM(e->slots, e->n_items, e->slots_cap, 4)) return AISLE_ENOMEM;
    e->slots[e->n_items] = (uint32_t)slot;
    return 1;
}

int creators_add(creators *cr, const char *creator_id, const char *name, const float *vec,
                 size_t slot, int sign) {
    creators_entry *e;
    size_t at;
    int got;
    if (!creator_id || !*creator_id) return AISLE_OK;
    assert(slot < UINT32_MAX);
    if (sign < 0) {
        if (strmap_get(&cr->ids, creator_id, strlen(creator_id), &at) != AISLE_OK)
            return AISLE_OK;
        e = &cr->entries[at];
        if (e->n_items == 0) return AISLE_OK;
    } else if (!(e = creators_entry_for(cr, creator_id))) {
        return AISLE_ENOMEM;
    }
    if (sign > 0 && name && *name && strcmp(name, e->name) != 0) {
        char *copy = strdup(name);
        if (!copy) return AISLE_ENOMEM;
        free(e->name);
        e->name = copy;
    }
    if ((got = creators_slot(e, slot, sign)) <= 0) return got;
    for (int j = 0; j < cr->dim; j++) e->sum[j] += sign > 0 ? vec[j] : -(double)vec[j];
    if (sign > 0 && e->n_items++ == 0) cr->live++;
    if (sign < 0 && --e->n_items == 0) {
        /* No items left: clear the rounding residue so a return starts clean. */
        memset(e->sum, 0, (size_t)cr->dim * sizeof(double));
        cr->live--;
    }
    cr->dirty = 1;
    return AISLE_OK;
}

size_t creators_slots(const creators *cr, const char *creator_id, const uint32_t **slots) {
    size_t at;
    *slots = NULL;
    if (!*creator_id || strmap_get(&cr->ids, creator_id, strlen(creator_id), &at) != AISLE_OK)
        return 0;
    *slots = cr->entries[at].slots;
    return cr->entries[at].n_items;
}

size_t creators_count(const creators *cr) { return cr->live; }

/* A flat index of the normalized sums of the creators with items; the
 * caller holds cr->mu. Returns AISLE_OK, AISLE_ENOMEM or AISLE_EINTERNAL. */
static int creators_rebuild(creators *cr) {
    size_t d = (size_t)cr->dim, m = 0;
    float *x = malloc((cr->n ? cr->n : 1) * d * sizeof(float));
    idx_t *ids = malloc((cr->n ? cr->n : 1) * sizeof(idx_t));
    FaissIndex *idx = NULL;
    int rc = AISLE_ENOMEM;
    if (!x || !ids) goto out;
    for (size_t i = 0; i < cr->n; i++) {
        const creators_entry *e = &cr->entries[i];
        double norm = 0;
        for (size_t j = 0; j < d; j++) norm += e->sum[j] * e->sum[j];
        if (e->n_items == 0 || !(norm > 0)) continue;
        norm = sqrt(norm);
        for (size_t j = 0; j < d; j++) x[m * d + j] = (float)(e->sum[j] / norm);
        ids[m++] = (idx_t)i;
    }
    rc = AISLE_EINTERNAL;
    if (faiss_index_factory(&idx, cr->dim, "IDMap,Flat", METRIC_INNER_PRODUCT) != 0 ||
        (m && faiss_Index_add_with_ids(idx, (idx_t)m, x, ids) != 0))
        goto out;
    if (cr->index) faiss_Index_free(cr->index);
    cr->index = idx;
    idx = NULL;
    cr->dirty = 0;
    rc = AISLE_OK;
out:
    if (idx) faiss_Index_free(idx);
    free(x);
    free(ids);
    return rc;
}

int creators_search(creators *cr, const float *q, int k, creators_hit *out) {
    float *scores = NULL;
    idx_t *labels = NULL;
    int n = 0, rc = AISLE_OK;
    /* As for the catalog's searches: callers run concurrently already, and
     * an OpenMP team per call would only spin against them. */
    omp_set_num_threads(1);
    pthread_mutex_lock(&cr->mu);
    if (cr->dirty) rc = creators_rebuild(cr);
    /* Never more than the index holds: FAISS would leave the surplus unset. */
    if (rc == AISLE_OK && (idx_t)k > faiss_Index_ntotal(cr->index))
        k = (int)faiss_Index_ntotal(cr->index);
    if (rc != AISLE_OK || k <= 0) goto out;
    scores = malloc((size_t)k * sizeof(*scores));
    labels = malloc((size_t)k * sizeof(*labels));
    if (!scores || !labels) {
        rc = AISLE_ENOMEM;
        goto out;
    }
    if (faiss_Index_search(cr->index, 1, q, k, scores, labels) != 0) {
        rc = AISLE_EINTERNAL;
        goto out;
    }
    for (int i = 0; i < k && labels[i] >= 0; i++) {
        const creators_entry *e = &cr->entries[labels[i]];
        out[n++] = (creators_hit){e->id, e->name, scores[i], e->n_items};
    }
out:
    pthread_mutex_unlock(&cr->mu);
    free(scores);
    free(labels);
    return rc != AISLE_OK ? rc : n;
}
