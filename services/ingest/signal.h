/* signal: what ingest accepts from the signal topic. A message's value is
 * decoded as an aisle.v1.Signal and checked for what a profile needs; a
 * message that fails either goes to the dead-letter topic with the reason
 * these functions give. Kept apart from the Kafka loop so the decision is
 * testable without a broker. */
#ifndef AISLE_SIGNAL_H
#define AISLE_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aisle/v1/events.pb-c.h"

/* Checks a decoded signal: ids present, at most PROFILE_MAX_ID bytes and
 * free of control characters (item_id may be empty only for a follow,
 * creator_id is required for one), a known kind, a finite weight in
 * [0, 1000], a time between 2000-01-01 and a day past now_ms. Returns
 * AISLE_OK, or AISLE_EINVAL with the reason in err. */
int signal_check(const Aisle__V1__Signal *s, int64_t now_ms, char *err, size_t errlen);

/* Decodes value[0..len) (value NULL: a message without a value) and checks
 * it. Returns AISLE_OK with *out set (free it with
 * aisle__v1__signal__free_unpacked), AISLE_EFORMAT when it is not a Signal,
 * or AISLE_EINVAL when signal_check refuses it, with the reason in err and
 * *out NULL. */
int signal_decode(const void *value, size_t len, int64_t now_ms, Aisle__V1__Signal **out,
                  char *err, size_t errlen);

#endif
