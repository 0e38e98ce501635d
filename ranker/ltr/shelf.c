/* shelf: models by path, reloaded when their files change (see shelf.h). */
#include "ranker/ltr/shelf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "services/base/log.h"
#include "services/base/status.h"

typedef struct ltr_shelf_entry {
    char *path;      /* owned */
    ltr_slot *slot;  /* owned; empty until a load succeeds */
    int64_t checked_ms;
    struct timespec mtime; /* of the file last tried, loaded or refused */
    off_t size;
    ino_t ino; /* a file renamed over the path is new even within one clock tick */
} ltr_shelf_entry;

struct ltr_shelf {
    pthread_mutex_t lock; /* guards the entries and their check times */
    ltr_shelf_entry e[LTR_SHELF_MAX];
    int n;
    uint32_t n_features;
    int check_ms;
};

int ltr_shelf_new(uint32_t n_features, int check_ms, ltr_shelf **out) {
    ltr_shelf *s = calloc(1, sizeof(*s));
    if (!s) return AISLE_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->n_features = n_features;
    s->check_ms = check_ms > 0 ? check_ms : LTR_SHELF_CHECK_MS;
    *out = s;
    return AISLE_OK;
}

void ltr_shelf_free(ltr_shelf *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].path);
        ltr_slot_free(s->e[i].slot);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The entry for path, added when new; NULL when the shelf is full or
 * memory short. Under the lock. */
static ltr_shelf_entry *ltr_shelf_entry_for(ltr_shelf *s, const char *path) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].path, path) == 0) return &s->e[i];
    if (s->n == LTR_SHELF_MAX) {
        log_warn("ranker", "more than %d ranker model files named; %s not loaded",
                 LTR_SHELF_MAX, path);
        return NULL;
    }
    ltr_shelf_entry *e = &s->e[s->n];
    memset(e, 0, sizeof(*e));
    if (!(e->path = strdup(path)) || ltr_slot_new(&e->slot) != AISLE_OK) {
        free(e->path);
        return NULL;
    }
    e->checked_ms = INT64_MIN;
    s->n++;
    return e;
}

/* Loads e's file when it changed since it was last tried. Under the lock. */
static void ltr_shelf_refresh(ltr_shelf *s, ltr_shelf_entry *e) {
    struct stat st;
    ltr_model *m;
    char err[512];
    if (stat(e->path, &st) != 0 ||
        (st.st_mtim.tv_sec == e->mtime.tv_sec && st.st_mtim.tv_nsec == e->mtime.tv_nsec &&
         st.st_size == e->size && st.st_ino == e->ino))
        return;
    e->mtime = st.st_mtim;
    e->size = st.st_size;
    e->ino = st.st_ino;
    if (ltr_model_load(e->path, &m, err, sizeof(err)) != AISLE_OK) {
        log_warn("ranker", "ranker model refused, the one in use stays: %s", err);
        return;
    }
    if (ltr_model_features(m) != s->n_features) {
        log_warn("ranker", "ranker model refused, the one in use stays: %s takes %u features, "
                 "the ranker computes %u", e->path, ltr_model_features(m), s->n_features);
        ltr_model_release(m);
        return;
    }
    ltr_slot_put(e->slot, m);
    log_info("ranker", "ranker model %s loaded", e->path);
}

ltr_model *ltr_shelf_get(ltr_shelf *s, const char *path, int64_t now_ms) {
    ltr_model *m = NULL;
    pthread_mutex_lock(&s->lock);
    ltr_shelf_entry *e = ltr_shelf_entry_for(s, path);
    if (e && (e->checked_ms == INT64_MIN || now_ms - e->checked_ms >= s->check_ms)) {
        e->checked_ms = now_ms;
        ltr_shelf_refresh(s, e);
    }
    if (e) m = ltr_slot_acquire(e->slot);
    pthread_mutex_unlock(&s->lock);
    return m;
}
