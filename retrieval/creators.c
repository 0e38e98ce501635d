/* creators: per-creator vector sums and a lazily rebuilt flat index over
 * their normalized means (see creators.h). */
#include "retrieval/creators.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/vec.h"
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
    pthread_mutex_t mu;     /* one search at a time rebuilds the index */
    float *means;           /* the index: rows normalized means of dim floats (owned) */
    uint32_t *rows;         /* position in entries of each row (owned) */
    size_t n_rows;
    /* The sums changed since the index was built. Set by writers, who
     * hold the catalog's lock alone; cleared (release) by the rebuild
     * once the index is in place, so a search that reads it clear
     * (acquire) scans an index no one replaces until the next writer. */
    atomic_int dirty;
};

creators *creators_new(int dim) {
    creators *cr = calloc(1, sizeof(*cr));
    if (!cr) return NULL;
    cr->dim = dim;
    atomic_init(&cr->dirty, 1);
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
    free(cr->means);
    free(cr->rows);
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
    atomic_store_explicit(&cr->dirty, 1, memory_order_relaxed);
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

/* The index anew from the sums: the normalized mean of each creator with
 * live items, in entry order. AISLE_OK, or AISLE_ENOMEM with the old
 * index kept. Under cr->mu. */
static int creators_rebuild(creators *cr) {
    size_t d = (size_t)cr->dim, m = 0;
    float *x = malloc((cr->n ? cr->n : 1) * d * sizeof(float));
    uint32_t *rows = malloc((cr->n ? cr->n : 1) * sizeof(*rows));
    if (!x || !rows) {
        free(x);
        free(rows);
        return AISLE_ENOMEM;
    }
    for (size_t i = 0; i < cr->n; i++) {
        const creators_entry *e = &cr->entries[i];
        double norm = 0;
        for (size_t j = 0; j < d; j++) norm += e->sum[j] * e->sum[j];
        if (e->n_items == 0 || !(norm > 0)) continue;
        norm = sqrt(norm);
        for (size_t j = 0; j < d; j++) x[m * d + j] = (float)(e->sum[j] / norm);
        rows[m++] = (uint32_t)i;
    }
    free(cr->means);
    free(cr->rows);
    cr->means = x;
    cr->rows = rows;
    cr->n_rows = m;
    atomic_store_explicit(&cr->dirty, 0, memory_order_release);
    return AISLE_OK;
}

int creators_search(creators *cr, const float *q, int k, creators_hit *out) {
    float *scores = NULL;
    vec_hit *h = NULL;
    size_t m;
    int n = 0, rc = AISLE_OK;
    /* The mutex only when the index is stale: searches that find it
     * current (all but the first after a burst of events) share it
     * without one, rather than queueing for a lock every call. */
    if (atomic_load_explicit(&cr->dirty, memory_order_acquire)) {
        pthread_mutex_lock(&cr->mu);
        if (atomic_load_explicit(&cr->dirty, memory_order_relaxed)) rc = creators_rebuild(cr);
        pthread_mutex_unlock(&cr->mu);
    }
    m = cr->n_rows;
    if (rc != AISLE_OK || k <= 0 || m == 0) goto out;
    scores = malloc(m * sizeof(*scores));
    h = malloc(m * sizeof(*h));
    if (!scores || !h) {
        rc = AISLE_ENOMEM;
        goto out;
    }
    vec_dots(q, cr->means, m, cr->dim, scores);
    /* By row on equal scores: the creator first seen first. */
    for (size_t r = 0; r < m; r++) h[r] = (vec_hit){scores[r], (uint32_t)r};
    vec_hits_heap(h, m);
    while (n < k && m > 0) {
        vec_hit best = vec_hits_pop(h, &m);
        const creators_entry *e = &cr->entries[cr->rows[best.id]];
        out[n++] = (creators_hit){e->id, e->name, best.score, e->n_items};
    }
out:
    free(scores);
    free(h);
    return rc != AISLE_OK ? rc : n;
}
