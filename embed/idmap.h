/* idmap: external string ids <-> dense rows.
 *
 * External ids (user ids, item ids, creator ids) are arbitrary strings; the
 * numeric code wants dense rows 0..n-1. An embed_idmap interns each distinct
 * string once and hands out rows in first-seen order, so the row of an item
 * is stable for the lifetime of the map and can index every per-item array.
 * The lookup is the shared strmap; names[] keeps the ids by row, which is
 * what readers of a snapshot (the server) walk. */
#ifndef AISLE_EMBED_IDMAP_H
#define AISLE_EMBED_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "services/base/strmap.h"

typedef struct embed_idmap {
    char **names;   /* names[row]: NUL-terminated copy, owned by the map */
    uint32_t count;
    uint32_t cap;   /* capacity of names */
    strmap index;   /* name -> row */
} embed_idmap;

void embed_idmap_init(embed_idmap *m);
/* Frees every copied name and the index; the map is empty afterwards. */
void embed_idmap_free(embed_idmap *m);
/* AISLE_OK with *row set when name[0..len) is known, else AISLE_ENOTFOUND. */
int embed_idmap_find(const embed_idmap *m, const char *name, size_t len, uint32_t *row);
/* The row of name[0..len), adding it if absent: AISLE_OK, AISLE_ENOMEM, or
 * AISLE_EFULL past 2^32-2 names. The map is unchanged on failure. */
int embed_idmap_intern(embed_idmap *m, const char *name, size_t len, uint32_t *row);

#endif
