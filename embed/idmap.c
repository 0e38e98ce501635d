/* Interning hash map for external ids: open addressing with linear probing
 * over an array of row numbers, so the names themselves live in one dense
 * array indexed by row and lookups touch one string at most per probe. */
#include "embed/idmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t idmap_hash(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

void embed_idmap_init(embed_idmap *m) { memset(m, 0, sizeof(*m)); }

void embed_idmap_free(embed_idmap *m) {
    for (uint32_t i = 0; i < m->count; i++) free(m->names[i]);
    free(m->names);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static int idmap_matches(const embed_idmap *m, uint32_t row, const char *name,
                         size_t len) {
    const char *s = m->names[row];
    return strncmp(s, name, len) == 0 && s[len] == '\0';
}

int64_t embed_idmap_find(const embed_idmap *m, const char *name, size_t len) {
    if (m->nslots == 0) return -1;
    uint32_t mask = m->nslots - 1;
    for (uint32_t i = (uint32_t)idmap_hash(name, len) & mask;; i = (i + 1) & mask) {
        uint32_t v = m->slots[i];
        if (v == 0) return -1;
        if (idmap_matches(m, v - 1, name, len)) return v - 1;
    }
}

static int idmap_grow(embed_idmap *m) {
    uint32_t n = m->nslots ? m->nslots * 2 : 1024;
    if (n < m->nslots) return -1;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (!slots) return -1;
    for (uint32_t row = 0; row < m->count; row++) {
        const char *s = m->names[row];
        uint32_t i = (uint32_t)idmap_hash(s, strlen(s)) & (n - 1);
        while (slots[i]) i = (i + 1) & (n - 1);
        slots[i] = row + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return 0;
}

int64_t embed_idmap_intern(embed_idmap *m, const char *name, size_t len) {
    int64_t found = embed_idmap_find(m, name, len);
    if (found >= 0) return found;
    if (m->count == UINT32_MAX - 1) return -1;
    /* Keep the load factor under one half so probes stay short. */
    if ((uint64_t)(m->count + 1) * 2 > m->nslots && idmap_grow(m) != 0) return -1;
    if (m->count == m->cap) {
        uint32_t cap = !m->cap ? 1024 : m->cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : m->cap * 2;
        char **names = realloc(m->names, (size_t)cap * sizeof(*names));
        if (!names) return -1;
        m->names = names;
        m->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    uint32_t row = m->count++;
    m->names[row] = copy;
    uint32_t mask = m->nslots - 1;
    uint32_t i = (uint32_t)idmap_hash(name, len) & mask;
    while (m->slots[i]) i = (i + 1) & mask;
    m->slots[i] = row + 1;
    return row;
}
