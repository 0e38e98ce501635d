/* facts: item → (category, brand) from the catalog topic, in an
 * open-addressing hash map (see facts.h). */
#include "services/ingest/facts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/kafka/tail.h"

/* How long one facts_poll reads on once messages come: a catalog burst is
 * taken in slices so that signals wait little. */
#define FACTS_POLL_BUDGET_MS 20

typedef struct facts_entry {
    char *item; /* NULL: free slot; the three strings are owned */
    char *category;
    char *brand;
} facts_entry;

struct facts {
    tail *t;
    facts_entry *slots;
    size_t cap; /* a power of two */
    size_t n;
};

static uint64_t facts_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static facts_entry *facts_slot(facts_entry *slots, size_t cap, const char *item) {
    size_t i = facts_hash(item) & (cap - 1);
    while (slots[i].item && strcmp(slots[i].item, item) != 0) i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Doubles the table. Returns 0, or -1 when out of memory. */
static int facts_grow(facts *f) {
    size_t cap = f->cap ? f->cap * 2 : 1024;
    facts_entry *slots = calloc(cap, sizeof(*slots));
    if (!slots) return -1;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].item) *facts_slot(slots, cap, f->slots[i].item) = f->slots[i];
    free(f->slots);
    f->slots = slots;
    f->cap = cap;
    return 0;
}

static char *facts_dup(const char *s) { return s && *s ? strdup(s) : NULL; }

/* Records an item's facts, replacing what was known. */
static void facts_put(facts *f, const Aisle__V1__CatalogItem *ci) {
    facts_entry *e;
    char *cat, *brand;
    if ((f->n + 1) * 10 > f->cap * 7 && facts_grow(f)) {
        log_error("facts", "out of memory; item %s not learned", ci->item_id);
        return;
    }
    cat = facts_dup(ci->category);
    brand = facts_dup(ci->brand);
    e = facts_slot(f->slots, f->cap, ci->item_id);
    if (!e->item) {
        if (!(e->item = strdup(ci->item_id))) {
            free(cat);
            free(brand);
            return;
        }
        f->n++;
    }
    free(e->category);
    free(e->brand);
    e->category = cat;
    e->brand = brand;
}

void facts_poll(facts *f, int wait_ms) {
    int64_t deadline = clock_mono_ms() + wait_ms + FACTS_POLL_BUDGET_MS;
    int wait = wait_ms;
    for (;;) {
        rd_kafka_message_t *m = tail_poll(f->t, wait);
        Aisle__V1__CatalogItem *ci;
        if (!m) return;
        /* Tombstones and deletes keep the facts (see facts.h); what does
         * not parse is serve's to report, here it is just not learned. */
        ci = m->payload ? aisle__v1__catalog_item__unpack(NULL, m->len, m->payload) : NULL;
        if (ci && !ci->deleted && ci->item_id && *ci->item_id) facts_put(f, ci);
        if (ci) aisle__v1__catalog_item__free_unpacked(ci, NULL);
        rd_kafka_message_destroy(m);
        if (clock_mono_ms() >= deadline) return;
        wait = 0;
    }
}

int facts_caught_up(const facts *f) { return tail_caught_up(f->t); }

int facts_lookup(const facts *f, const char *item, const char **category,
                 const char **brand) {
    const facts_entry *e;
    *category = *brand = NULL;
    if (!f->n) return -1;
    e = facts_slot(f->slots, f->cap, item);
    if (!e->item) return -1;
    *category = e->category;
    *brand = e->brand;
    return 0;
}

size_t facts_count(const facts *f) { return f->n; }

int facts_open(const char *brokers, const char *topic, facts **out, char *err,
               size_t errlen) {
    facts *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tail_open(brokers, topic, RD_KAFKA_OFFSET_BEGINNING, "facts", &f->t, err, errlen)) {
        free(f);
        return -1;
    }
    *out = f;
    return 0;
}

void facts_close(facts *f) {
    if (!f) return;
    tail_close(f->t);
    for (size_t i = 0; i < f->cap; i++) {
        free(f->slots[i].item);
        free(f->slots[i].category);
        free(f->slots[i].brand);
    }
    free(f->slots);
    free(f);
}
