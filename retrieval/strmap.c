/* strmap: string → size_t open-addressing map used for item id lookups. */
#include "retrieval/strmap.h"

#include <stdlib.h>
#include <string.h>

static char strmap_tomb_marker;
#define STRMAP_TOMB (&strmap_tomb_marker)

static unsigned long strmap_hash(const char *s) {
    unsigned long h = 1469598103934665603UL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211UL;
    }
    return h;
}

void strmap_init(strmap *m) { memset(m, 0, sizeof(*m)); }

void strmap_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != STRMAP_TOMB)
            free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

/* Index of key's slot, or of the slot an insert should use, or cap when the
 * table is empty. */
static size_t strmap_find(const strmap *m, const char *key, unsigned long h,
                          int *found) {
    *found = 0;
    if (m->cap == 0) return 0;
    size_t mask = m->cap - 1, i = h & mask, first_tomb = m->cap;
    for (;;) {
        strmap_slot *s = &m->slots[i];
        if (s->key == NULL) return first_tomb < m->cap ? first_tomb : i;
        if (s->key == STRMAP_TOMB) {
            if (first_tomb == m->cap) first_tomb = i;
        } else if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int strmap_grow(strmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    /* Rehash in place when tombstones, not live keys, fill the table. */
    if (m->cap && m->used * 2 < m->cap) ncap = m->cap;
    strmap_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        strmap_slot *s = &m->slots[i];
        if (!s->key || s->key == STRMAP_TOMB) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->tombs = 0;
    return 0;
}

int strmap_get(const strmap *m, const char *key, size_t *value) {
    int found;
    size_t i = strmap_find(m, key, strmap_hash(key), &found);
    if (!found) return -1;
    *value = m->slots[i].value;
    return 0;
}

int strmap_put(strmap *m, const char *key, size_t value) {
    unsigned long h = strmap_hash(key);
    int found;
    size_t i;
    if ((m->used + m->tombs + 1) * 4 > m->cap * 3 && strmap_grow(m) != 0)
        return -1;
    i = strmap_find(m, key, h, &found);
    if (found) {
        m->slots[i].value = value;
        return 0;
    }
    char *k = strdup(key);
    if (!k) return -1;
    if (m->slots[i].key == STRMAP_TOMB) m->tombs--;
    m->slots[i].key = k;
    m->slots[i].hash = h;
    m->slots[i].value = value;
    m->used++;
    return 0;
}

int strmap_del(strmap *m, const char *key) {
    int found;
    size_t i = strmap_find(m, key, strmap_hash(key), &found);
    if (!found) return -1;
    free(m->slots[i].key);
    m->slots[i].key = STRMAP_TOMB;
    m->used--;
    m->tombs++;
    return 0;
}
