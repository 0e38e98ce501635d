/* strmap: the one hash map from byte-string keys to size_t values.
 *
 * Item ids to catalog slots on every request, item facts in ingest, ids to
 * rows in the embedding job, token pieces to ids in the tokenizer: all are
 * "string to small number". A flat open-addressing table with linear
 * probing keeps a lookup to one or two cache misses. Keys are byte strings
 * of explicit length (a token piece may hold any byte); the map copies them
 * in and owns the copies. Deletions leave tombstones that inserts reuse.
 * Not thread-safe: callers hold their own lock. */
#ifndef AISLE_STRMAP_H
#define AISLE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_slot {
    char *key;     /* owned, NUL-terminated copy; NULL = empty, or the tombstone */
    size_t len;
    size_t value;
    uint64_t hash;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap;   /* power of two */
    size_t used;  /* live keys */
    size_t tombs; /* tombstones */
} strmap;

/* Zeroes the map (as does `strmap m = {0}`); the first insert allocates. */
void strmap_init(strmap *m);
void strmap_free(strmap *m);

/* AISLE_OK with *value set when key[0..len) is present, else AISLE_ENOTFOUND. */
int strmap_get(const strmap *m, const char *key, size_t len, size_t *value);
/* Inserts or overwrites. AISLE_OK or AISLE_ENOMEM (the map is unchanged). */
int strmap_put(strmap *m, const char *key, size_t len, size_t value);
/* AISLE_OK when key was present and is now removed, else AISLE_ENOTFOUND. */
int strmap_del(strmap *m, const char *key, size_t len);

/* FNV-1a over len bytes: the map's hash, for callers that bucket the same
 * keys elsewhere. */
uint64_t strmap_hash(const char *key, size_t len);

#endif
