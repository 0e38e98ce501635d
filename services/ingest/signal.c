/* signal: decoding and checking one message of the signal topic. */
#include "services/ingest/signal.h"

#include <math.h>

#include "services/base/status.h"
#include "services/profile/profile.h"

#define SIGNAL_MIN_TS_MS 946684800000LL /* 2000-01-01 */
#define SIGNAL_MAX_AHEAD_MS 86400000LL  /* clocks run ahead by less than a day */

int signal_check(const Aisle__V1__Signal *s, int64_t now_ms, char *err, size_t errlen) {
    int follow = s->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    int rc;
    if ((rc = profile_check_id("event_id", s->event_id, 1, err, errlen)) ||
        (rc = profile_check_id("user_id", s->user_id, 1, err, errlen)) ||
        (rc = profile_check_id("item_id", s->item_id, !follow, err, errlen)) ||
        (rc = profile_check_id("creator_id", s->creator_id, follow, err, errlen)))
        return rc;
    if (s->kind <= 0 || s->kind >= PROFILE_KINDS)
        return status_fail(AISLE_EINVAL, err, errlen, "unknown signal kind %d", (int)s->kind);
    if (!isfinite(s->weight) || s->weight < 0 || s->weight > 1000)
        return status_fail(AISLE_EINVAL, err, errlen, "weight %g is outside [0, 1000]",
                           s->weight);
    if (s->ts_ms < SIGNAL_MIN_TS_MS || s->ts_ms > now_ms + SIGNAL_MAX_AHEAD_MS)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "ts_ms %lld is before 2000 or in the future", (long long)s->ts_ms);
    return AISLE_OK;
}

int signal_decode(const void *value, size_t len, int64_t now_ms, Aisle__V1__Signal **out,
                  char *err, size_t errlen) {
    Aisle__V1__Signal *s;
    int rc;
    *out = NULL;
    if (!value) return status_fail(AISLE_EFORMAT, err, errlen, "message has no value");
    s = aisle__v1__signal__unpack(NULL, len, value);
    if (!s) return status_fail(AISLE_EFORMAT, err, errlen, "value is not a Signal");
    if ((rc = signal_check(s, now_ms, err, errlen)) != AISLE_OK) {
        aisle__v1__signal__free_unpacked(s, NULL);
        return rc;
    }
    *out = s;
    return AISLE_OK;
}
