/* listcache: a small process-wide table of reference-counted lists by
 * key, under one mutex (see listcache.h). */
#include "services/recommend/listcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct {
    pthread_mutex_t mu;
    char *keys[LISTCACHE_SLOTS]; /* owned; NULL = free slot */
    listcache_list *lists[LISTCACHE_SLOTS];
} listcache = {.mu = PTHREAD_MUTEX_INITIALIZER};

listcache_list *listcache_list_new(catalog *c, profile_entry *e, size_t n, int64_t now_ms) {
    listcache_list *l = calloc(1, sizeof(*l));
    rank_entry *v = malloc((n + 1) * sizeof(*v));
    size_t *slots = malloc((n + 1) * sizeof(*slots));
    if (!l || !v || !slots) {
        profile_entries_free(e, n);
        free(l);
        free(v);
        free(slots);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) v[i] = (rank_entry){e[i].id, e[i].weight};
    *l = (listcache_list){.refs = 1, .e = e, .view = v, .slots = slots, .list = {.items = v, .n = n},
                          .n = n, .at_ms = now_ms};
    if (c) rank_list_resolve(c, &l->list, slots);
    return l;
}

void listcache_drop(listcache_list *l) {
    int last;
    if (!l) return;
    pthread_mutex_lock(&listcache.mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&listcache.mu);
    if (!last) return;
    profile_entries_free(l->e, l->n);
    free(l->view);
    free(l->slots);
    free(l);
}

/* The slot of key, or -1; under the lock. */
static int listcache_find(const char *key) {
    for (int i = 0; i < LISTCACHE_SLOTS; i++)
        if (listcache.keys[i] && strcmp(listcache.keys[i], key) == 0) return i;
    return -1;
}

listcache_list *listcache_take(const char *key, int64_t now_ms, int64_t max_age_ms) {
    listcache_list *l = NULL;
    int i;
    pthread_mutex_lock(&listcache.mu);
    if ((i = listcache_find(key)) >= 0) {
        l = listcache.lists[i];
        if (now_ms >= l->at_ms && now_ms - l->at_ms <= max_age_ms) l->refs++;
        else l = NULL;
    }
    pthread_mutex_unlock(&listcache.mu);
    return l;
}

void listcache_put(const char *key, listcache_list *l) {
    listcache_list *old = NULL;
    int i, oldest = 0;
    pthread_mutex_lock(&listcache.mu);
    if ((i = listcache_find(key)) < 0) {
        /* A free slot, else the one read longest ago. */
        for (i = 0; i < LISTCACHE_SLOTS && listcache.keys[i]; i++)
            if (listcache.lists[i]->at_ms < listcache.lists[oldest]->at_ms) oldest = i;
        if (i == LISTCACHE_SLOTS) {
            i = oldest;
            free(listcache.keys[i]);
            old = listcache.lists[i];
        }
        listcache.keys[i] = strdup(key);
        listcache.lists[i] = NULL;
    } else {
        old = listcache.lists[i];
    }
    if (listcache.keys[i]) {
        l->refs++;
        listcache.lists[i] = l;
    }
    pthread_mutex_unlock(&listcache.mu);
    listcache_drop(old);
}
