/* idmap: interning over the shared strmap (see idmap.h). A new name is
 * copied into names[] before it is indexed, so a failed insert never
 * leaves an index entry without its name. */
#include "embed/idmap.h"

#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

void embed_idmap_init(embed_idmap *m) {
    memset(m, 0, sizeof(*m));
    strmap_init(&m->index);
}

void embed_idmap_free(embed_idmap *m) {
    for (uint32_t i = 0; i < m->count; i++) free(m->names[i]);
    free(m->names);
    strmap_free(&m->index);
    memset(m, 0, sizeof(*m));
}

int embed_idmap_find(const embed_idmap *m, const char *name, size_t len, uint32_t *row) {
    size_t v;
    if (strmap_get(&m->index, name, len, &v) != AISLE_OK) return AISLE_ENOTFOUND;
    *row = (uint32_t)v;
    return AISLE_OK;
}

/* Room for one more name. */
static int idmap_reserve(embed_idmap *m) {
    if (m->count < m->cap) return AISLE_OK;
    uint32_t cap = !m->cap ? 1024 : m->cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : m->cap * 2;
    char **names = realloc(m->names, (size_t)cap * sizeof(*names));
    if (!names) return AISLE_ENOMEM;
    m->names = names;
    m->cap = cap;
    return AISLE_OK;
}

int embed_idmap_intern(embed_idmap *m, const char *name, size_t len, uint32_t *row) {
    if (embed_idmap_find(m, name, len, row) == AISLE_OK) return AISLE_OK;
    /* UINT32_MAX stays free: snapshots use it for "no row". */
    if (m->count >= UINT32_MAX - 1) return AISLE_EFULL;
    if (idmap_reserve(m) != AISLE_OK) return AISLE_ENOMEM;
    char *copy = malloc(len + 1);
    if (!copy) return AISLE_ENOMEM;
    memcpy(copy, name, len);
    copy[len] = '\0';
    if (strmap_put(&m->index, name, len, m->count) != AISLE_OK) {
        free(copy);
        return AISLE_ENOMEM;
    }
    m->names[m->count] = copy;
    *row = m->count++;
    return AISLE_OK;
}
