/* String identifier <-> dense row mapping.
 *
 * External ids (user ids, item ids, creator ids) are arbitrary strings; the
 * numeric code wants dense rows 0..n-1. An embed_idmap interns each distinct
 * string once and hands out rows in first-seen order, so the row of an item
 * is stable for the lifetime of the map and can index every per-item array. */
#ifndef AISLE_EMBED_IDMAP_H
#define AISLE_EMBED_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct embed_idmap {
    char **names;     /* names[row]: NUL-terminated copy, owned by the map */
    uint32_t count;
    uint32_t cap;     /* capacity of names */
    uint32_t *slots;  /* open addressing: row + 1, 0 = empty */
    uint32_t nslots;  /* power of two */
} embed_idmap;

void embed_idmap_init(embed_idmap *m);
/* Frees every copied name and the tables; the map is empty afterwards. */
void embed_idmap_free(embed_idmap *m);
/* Returns the row of name[0..len), or -1 if absent. */
int64_t embed_idmap_find(const embed_idmap *m, const char *name, size_t len);
/* Returns the row of name[0..len), adding it if absent; -1 when out of
 * memory or when the map is full (2^32-1 names). */
int64_t embed_idmap_intern(embed_idmap *m, const char *name, size_t len);

#endif
