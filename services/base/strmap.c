/* strmap: byte-string → size_t open-addressing map with tombstones. */
#include "services/base/strmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

static char strmap_tomb_marker;
#define STRMAP_TOMB (&strmap_tomb_marker)

uint64_t strmap_hash(const char *key, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void strmap_init(strmap *m) { memset(m, 0, sizeof(*m)); }

void strmap_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != STRMAP_TOMB) free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

/* Index of key's slot (*found set), or of the slot an insert should use.
 * The table must not be empty. */
static size_t strmap_find(const strmap *m, const char *key, size_t len, uint64_t h,
                          int *found) {
    size_t mask = m->cap - 1, i = h & mask, first_tomb = m->cap;
    assert(m->cap > 0);
    *found = 0;
    for (;;) {
        const strmap_slot *s = &m->slots[i];
        if (s->key == NULL) return first_tomb < m->cap ? first_tomb : i;
        if (s->key == STRMAP_TOMB) {
            if (first_tomb == m->cap) first_tomb = i;
        } else if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
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
    if (!ns) return AISLE_ENOMEM;
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
    return AISLE_OK;
}

int strmap_get(const strmap *m, const char *key, size_t len, size_t *value) {
    int found;
    size_t i;
    if (m->used == 0) return AISLE_ENOTFOUND;
    i = strmap_find(m, key, len, strmap_hash(key, len), &found);
    if (!found) return AISLE_ENOTFOUND;
    *value = m->slots[i].value;
    return AISLE_OK;
}

int strmap_put(strmap *m, const char *key, size_t len, size_t value) {
    uint64_t h = strmap_hash(key, len);
    int found;
    size_t i;
    char *k;
    if ((m->used + m->tombs + 1) * 4 > m->cap * 3 && strmap_grow(m) != AISLE_OK)
        return AISLE_ENOMEM;
    i = strmap_find(m, key, len, h, &found);
    if (found) {
        m->slots[i].value = value;
        return AISLE_OK;
    }
    if (!(k = malloc(len + 1))) return AISLE_ENOMEM;
    memcpy(k, key, len);
    k[len] = '\0';
    if (m->slots[i].key == STRMAP_TOMB) m->tombs--;
    m->slots[i] = (strmap_slot){k, len, value, h};
    m->used++;
    return AISLE_OK;
}

int strmap_del(strmap *m, const char *key, size_t len) {
    int found;
    size_t i;
    if (m->used == 0) return AISLE_ENOTFOUND;
    i = strmap_find(m, key, len, strmap_hash(key, len), &found);
    if (!found) return AISLE_ENOTFOUND;
    free(m->slots[i].key);
    m->slots[i].key = STRMAP_TOMB;
    m->used--;
    m->tombs++;
    return AISLE_OK;
}
