/* facts: item → (category, brand) from the catalog topic: a strmap from
 * item id to a position in one growing array of entries (see facts.h). */
#include "services/ingest/facts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/base/grow.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/base/strmap.h"
#include "services/kafka/tail.h"

/* How long one facts_poll reads on once messages come: a catalog burst is
 * taken in slices so that signals wait little. */
#define FACTS_POLL_BUDGET_MS 20

typedef struct facts_entry {
    char *category; /* owned; NULL when the catalog gives none */
    char *brand;
} facts_entry;

struct facts {
    tail *t;
    strmap index;         /* item id → position in entries */
    facts_entry *entries; /* n of them, cap allocated */
    size_t n, cap;
};

static char *facts_dup(const char *s) { return s && *s ? strdup(s) : NULL; }

/* The entry for item, appended empty when new. NULL when out of memory. */
static facts_entry *facts_entry_for(facts *f, const char *item) {
    size_t at, len = strlen(item);
    if (strmap_get(&f->index, item, len, &at) == AISLE_OK) return &f->entries[at];
    if (GROW_ROOM(f->entries, f->n, f->cap, 1024)) return NULL;
    if (strmap_put(&f->index, item, len, f->n) != AISLE_OK) return NULL;
    memset(&f->entries[f->n], 0, sizeof(f->entries[f->n]));
    return &f->entries[f->n++];
}

/* Records an item's facts, replacing what was known. */
static void facts_put(facts *f, const Aisle__V1__CatalogItem *ci) {
    facts_entry *e = facts_entry_for(f, ci->item_id);
    char *cat = facts_dup(ci->category), *brand = facts_dup(ci->brand);
    if (!e || (ci->category && *ci->category && !cat) || (ci->brand && *ci->brand && !brand)) {
        log_error("facts", "out of memory; item %s not learned", ci->item_id);
        free(cat);
        free(brand);
        return;
    }
    free(e->category);
    free(e->brand);
    e->category = cat;
    e->brand = brand;
}

static int facts_field_ok(const char *v) { return !v || strlen(v) <= FACTS_MAX_FIELD; }

/* What serve's catalog accepts (retrieval/catalog.c refuses an item with a
 * longer field): a category or brand of megabytes would otherwise be
 * copied into every viewer's profile. */
static int facts_acceptable(const Aisle__V1__CatalogItem *ci) {
    if (!ci->item_id || !*ci->item_id) return 0;
    if (facts_field_ok(ci->item_id) && facts_field_ok(ci->category) && facts_field_ok(ci->brand))
        return 1;
    log_warn("facts", "item %.64s...: a field is longer than %d bytes; not learned",
             ci->item_id, FACTS_MAX_FIELD);
    return 0;
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
        if (ci && !ci->deleted && facts_acceptable(ci)) facts_put(f, ci);
        if (ci) aisle__v1__catalog_item__free_unpacked(ci, NULL);
        rd_kafka_message_destroy(m);
        if (clock_mono_ms() >= deadline) return;
        wait = 0;
    }
}

int facts_caught_up(const facts *f) { return tail_caught_up(f->t); }

int facts_lookup(const facts *f, const char *item, const char **category,
                 const char **brand) {
    size_t at;
    *category = *brand = NULL;
    if (strmap_get(&f->index, item, strlen(item), &at) != AISLE_OK) return AISLE_ENOTFOUND;
    *category = f->entries[at].category;
    *brand = f->entries[at].brand;
    return AISLE_OK;
}

size_t facts_count(const facts *f) { return f->n; }

int facts_open(const char *brokers, const char *topic, facts **out, char *err,
               size_t errlen) {
    facts *f = calloc(1, sizeof(*f));
    int rc;
    *out = NULL;
    if (!f) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    strmap_init(&f->index);
    if ((rc = tail_open(brokers, topic, RD_KAFKA_OFFSET_BEGINNING, "facts", &f->t, err,
                        errlen)) != AISLE_OK) {
        free(f);
        return rc;
    }
    *out = f;
    return AISLE_OK;
}

void facts_close(facts *f) {
    if (!f) return;
    tail_close(f->t);
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].category);
        free(f->entries[i].brand);
    }
    free(f->entries);
    strmap_free(&f->index);
    free(f);
}
