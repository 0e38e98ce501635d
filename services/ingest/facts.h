/* facts: what ingest needs to know about items, learned from the catalog
 * topic: item id → category and brand.
 *
 * A Signal names only its item and creator; profiles also weigh categories
 * and brands, so each ingest worker reads the whole catalog topic (a tail:
 * every partition, no group) into a map and keeps reading it as it changes.
 * A deleted item keeps its facts: signals about it still say something
 * about the user. An item with an id, category or brand longer than
 * FACTS_MAX_FIELD bytes is not learned, as serve's catalog refuses it. One
 * facts is used by one thread. */
#ifndef AISLE_FACTS_H
#define AISLE_FACTS_H

#include <stddef.h>

/* The longest field learned: serve's CATALOG_MAX_FIELD (retrieval/catalog.h),
 * which ingest does not link. */
#define FACTS_MAX_FIELD 1024

typedef struct facts facts;

/* Starts reading topic on brokers. Returns AISLE_OK, or tail_open's code with
 * err set. Free with facts_close. */
int facts_open(const char *brokers, const char *topic, facts **out, char *err,
               size_t errlen);
void facts_close(facts *f);
/* Reads what the topic has: waits up to wait_ms for a first message, then
 * takes what is queued for a short while (a big catalog comes in slices). */
void facts_poll(facts *f, int wait_ms);
/* Non-zero once the whole topic has been read once. */
int facts_caught_up(const facts *f);
/* The category and brand of item (NULL when not known); valid until the
 * next facts_poll. Returns AISLE_OK when the item is known, AISLE_ENOTFOUND
 * when not. */
int facts_lookup(const facts *f, const char *item, const char **category,
                 const char **brand);
size_t facts_count(const facts *f);

#endif
