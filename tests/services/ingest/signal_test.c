/* Tests for services/ingest/signal: which messages ingest takes and which
 * it dead-letters, and the reason it gives, without Kafka. */
#include "services/ingest/signal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/profile/profile.h"
#include "tests/test.h"

static Aisle__V1__Signal click(int64_t ts) {
    Aisle__V1__Signal s = AISLE__V1__SIGNAL__INIT;
    s.event_id = "e";
    s.user_id = "u";
    s.kind = AISLE__V1__SIGNAL_KIND__CLICK;
    s.item_id = "i";
    s.creator_id = "c";
    s.ts_ms = ts;
    return s;
}

/* What signal_decode says about s once packed: its code and reason. */
static int decode(const Aisle__V1__Signal *s, int64_t now, char *why, size_t whylen) {
    size_t len = aisle__v1__signal__get_packed_size(s);
    uint8_t *buf = malloc(len + 1);
    Aisle__V1__Signal *out = NULL;
    int rc;
    aisle__v1__signal__pack(s, buf);
    rc = signal_decode(buf, len, now, &out, why, whylen);
    TEST_CHECK((rc == AISLE_OK) == (out != NULL));
    if (out) {
        TEST_CHECK_STR(out->user_id, s->user_id);
        aisle__v1__signal__free_unpacked(out, NULL);
    }
    free(buf);
    return rc;
}

static void test_check_fields(void) {
    int64_t now = 1760000000000LL;
    char err[256];
    Aisle__V1__Signal s = click(now);
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_OK);
    s.kind = 99;
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL && strstr(err, "kind"));
    s.kind = AISLE__V1__SIGNAL_KIND__SIGNAL_KIND_UNSPECIFIED;
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL);
    s.kind = AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    s.item_id = "";
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_OK); /* a follow needs no item */
    s.creator_id = "";
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "creator_id"));
    s = click(now);
    s.item_id = "";
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL &&
               strstr(err, "item_id"));
    s = click(now + 2 * 86400000LL);
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL && strstr(err, "future"));
    s = click(5);
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL && strstr(err, "2000"));
    s = click(now);
    s.weight = NAN;
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL && strstr(err, "weight"));
    s.weight = 1e6f;
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL);
    s.weight = 1000;
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_OK);
    s.user_id = "tab\there";
    TEST_CHECK(signal_check(&s, now, err, sizeof(err)) == AISLE_EINVAL && strstr(err, "control"));
}

static void test_decode_sorts_good_from_bad(void) {
    int64_t now = 1760000000000LL;
    char why[256];
    Aisle__V1__Signal s = click(now);
    Aisle__V1__Signal *out = (Aisle__V1__Signal *)1;
    static const uint8_t garbage[] = {0xff, 0xfe, 0x01, 0x02};
    TEST_CHECK(decode(&s, now, why, sizeof(why)) == AISLE_OK);
    s.event_id = "";
    TEST_CHECK(decode(&s, now, why, sizeof(why)) == AISLE_EINVAL && strstr(why, "event_id"));
    TEST_CHECK(signal_decode(NULL, 0, now, &out, why, sizeof(why)) == AISLE_EFORMAT &&
               !out && strstr(why, "no value"));
    out = (Aisle__V1__Signal *)1;
    TEST_CHECK(signal_decode(garbage, sizeof(garbage), now, &out, why, sizeof(why)) ==
                   AISLE_EFORMAT && !out && strstr(why, "not a Signal"));
    /* No error buffer: the code alone. */
    TEST_CHECK(signal_decode(NULL, 0, now, &out, NULL, 0) == AISLE_EFORMAT);
}

int main(void) {
    TEST_RUN(test_check_fields);
    TEST_RUN(test_decode_sorts_good_from_bad);
    return test_summary();
}
