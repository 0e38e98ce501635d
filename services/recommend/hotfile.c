/* hotfile: stat, parse when changed, swap under a mutex (see hotfile.h). */
#include "services/recommend/hotfile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "services/base/log.h"
#include "services/base/status.h"

struct hotfile_ref {
    int refs; /* under hotfile.mu */
    void *data;
};

void hotfile_drop(hotfile *h, hotfile_ref *r) {
    int last;
    if (!r) return;
    pthread_mutex_lock(&h->mu);
    last = --r->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (!last) return;
    h->free_data(r->data);
    free(r);
}

const void *hotfile_data(const hotfile_ref *r) { return r ? r->data : NULL; }

/* Parses path when its time or size changed since the last look (always
 * with force); under the lock. Sets *old to the contents it replaces, for
 * the caller to drop outside the lock. */
static int hotfile_reload(hotfile *h, const char *path, int force, hotfile_ref **old,
                          char *err, size_t errlen) {
    struct stat st;
    hotfile_ref *fresh;
    void *data;
    int rc;
    *old = NULL;
    if (stat(path, &st) != 0) {
        if (!force) return AISLE_OK; /* gone for a moment (an editor's rename) */
        return status_fail(AISLE_EIO, err, errlen, "%s: cannot be read", path);
    }
    if (!force && st.st_mtim.tv_sec == h->mtime.tv_sec && st.st_mtim.tv_nsec == h->mtime.tv_nsec &&
        st.st_size == h->size)
        return AISLE_OK;
    h->mtime = st.st_mtim;
    h->size = st.st_size;
    if ((rc = h->load(path, &data, err, errlen)) != AISLE_OK) return rc;
    if (!(fresh = calloc(1, sizeof(*fresh)))) {
        h->free_data(data);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    *fresh = (hotfile_ref){.refs = 1, .data = data};
    *old = h->cur;
    h->cur = fresh;
    log_info("recommend", "%s file %s loaded", h->what, path);
    return AISLE_OK;
}

int hotfile_set(hotfile *h, const char *path, char *err, size_t errlen) {
    hotfile_ref *old = NULL;
    char *copy = path && *path ? strdup(path) : NULL;
    int rc = AISLE_OK;
    if (path && *path && !copy) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    pthread_mutex_lock(&h->mu);
    free(h->path);
    h->path = copy;
    if (copy) rc = hotfile_reload(h, copy, 1, &old, err, errlen);
    pthread_mutex_unlock(&h->mu);
    hotfile_drop(h, old);
    return rc;
}

hotfile_ref *hotfile_take(hotfile *h, int64_t now_ms) {
    hotfile_ref *r, *old = NULL;
    const char *path;
    char err[512];
    pthread_mutex_lock(&h->mu);
    path = h->path ? h->path : h->env ? getenv(h->env) : NULL;
    if (path && *path && now_ms - h->checked_ms >= HOTFILE_CHECK_MS) {
        h->checked_ms = now_ms;
        if (hotfile_reload(h, path, 0, &old, err, sizeof(err)) != AISLE_OK)
            log_warn("recommend", "%s file refused, the settings in use stay: %s", h->what, err);
    }
    if ((r = h->cur)) r->refs++;
    pthread_mutex_unlock(&h->mu);
    hotfile_drop(h, old);
    return r;
}
