/* listcache: weighted lists read from the profile store (the popular list,
 * each category's trending list, the trending categories), shared by the
 * calls of one process for a short while, so a busy replica asks Redis
 * for each about once a second instead of once a call, and keeps the last
 * good one for when Redis is away.
 *
 * Lists are reference-counted: a call keeps the list it took while a newer
 * read replaces it in the cache. The cache holds LISTCACHE_SLOTS keys; a
 * new key past that takes the slot of the one read longest ago. */
#ifndef AISLE_LISTCACHE_H
#define AISLE_LISTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ranker/rank.h"
#include "services/profile/profile.h"

#define LISTCACHE_SLOTS 64

typedef struct listcache_list {
    int refs;         /* under the cache's lock */
    profile_entry *e; /* owned */
    rank_entry *view; /* owned; points into e */
    size_t *slots;    /* owned: each entry's catalog slot, for list */
    rank_list list;   /* what the ranker reads: view, n and slots */
    size_t n;
    int64_t at_ms;    /* when it was read */
} listcache_list;

/* A list over e (n entries, taken over even on failure) read at now_ms,
 * with one reference for the caller; NULL when out of memory. A list of
 * items has its ids looked up in c (its read lock taken) once for all the
 * calls that will use it (rank_list_resolve); c is NULL for a list of
 * something else (categories). */
listcache_list *listcache_list_new(catalog *c, profile_entry *e, size_t n, int64_t now_ms);
/* Drops one reference (l may be NULL); the last frees the list. */
void listcache_drop(listcache_list *l);

/* The cached list of key with a reference for the caller, when there is
 * one read at most max_age_ms before now_ms (a list stamped after now_ms
 * is no fresher); else NULL. */
listcache_list *listcache_take(const char *key, int64_t now_ms, int64_t max_age_ms);
/* Caches l under key, with a reference of its own (the caller keeps its
 * one). Out of memory only leaves it uncached. */
void listcache_put(const char *key, listcache_list *l);

#endif
