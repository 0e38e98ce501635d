/* strmap: an open-addressing hash map from strings to size_t values.
 *
 * The catalog needs to turn external item ids into dense slots on every
 * request and every catalog event; a flat table with linear probing keeps
 * that to one or two cache misses. Keys are copied in (the map owns them);
 * deletions leave tombstones that inserts reuse. Not thread-safe: callers
 * hold their own lock. */
#ifndef AISLE_STRMAP_H
#define AISLE_STRMAP_H

#include <stddef.h>

typedef struct strmap_slot {
    char *key;     /* owned; NULL = empty, STRMAP_TOMB = deleted */
    size_t value;
    unsigned long hash;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap;   /* power of two */
    size_t used;  /* live keys */
    size_t tombs; /* tombstones */
} strmap;

/* Zeroes the map; the first insert allocates. */
void strmap_init(strmap *m);
void strmap_free(strmap *m);

/* Returns 0 and sets *value when key is present, -1 otherwise. */
int strmap_get(const strmap *m, const char *key, size_t *value);
/* Inserts or overwrites. Returns 0, or -1 when out of memory. */
int strmap_put(strmap *m, const char *key, size_t value);
/* Returns 0 when key was present and is now removed, -1 otherwise. */
int strmap_del(strmap *m, const char *key);

#endif
