/* Tests for services/profile/precord: a record grown by inserts in any
 * order stays sorted and finds every field; its head numbers round-trip;
 * a rebuild keeps it; and precord_check refuses every truncation, a wrong
 * magic or version, a name past the heap, fields out of order and a wrong
 * count of marks. */
#include "services/profile/precord.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/test.h"

#define CAP 8192

/* A record of 40 fields of three kinds (marks among them), inserted in a
 * scrambled order, into r; returns its size. */
static size_t grown(unsigned char *r) {
    static const char kinds[] = "ios";
    precord_init(r, -1);
    for (int i = 0; i < 40; i++) {
        char name[16];
        int j = (i * 17) % 40; /* 17 and 40 are coprime: each j once */
        size_t at;
        snprintf(name, sizeof(name), "n%d", j);
        TEST_CHECK(!precord_find(r, kinds[j % 3], name, strlen(name), &at));
        precord_insert(r, at, kinds[j % 3], name, strlen(name), (double)j);
        TEST_CHECK(precord_check(r, precord_size(r)) == 0);
    }
    return precord_size(r);
}

static void test_inserts_keep_order_and_find(void) {
    unsigned char r[CAP];
    size_t len = grown(r), at;
    precord_field f;
    TEST_CHECK(precord_count(r) == 40 && precord_marks(r) == 13); /* j % 3 == 1 */
    TEST_CHECK(precord_check(r, len) == 0);
    for (int j = 0; j < 40; j++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", j);
        TEST_REQUIRE(precord_find(r, "ios"[j % 3], name, strlen(name), &at));
        precord_field_at(r, at, &f);
        TEST_CHECK(f.v == (double)j && f.len == strlen(name) && !memcmp(f.name, name, f.len));
        TEST_CHECK(!precord_find(r, "ios"[(j + 1) % 3], name, strlen(name), &at));
    }
    precord_set_value(r, 0, 2.5);
    precord_field_at(r, 0, &f);
    TEST_CHECK(f.v == 2.5 && f.kind == 'i');
}

static void test_meta_round_trips(void) {
    unsigned char r[PRECORD_HEAD];
    precord_init(r, -1);
    TEST_CHECK(precord_meta(r, PRECORD_ERASED) == -1 && isnan(precord_meta(r, PRECORD_LM)));
    TEST_CHECK(precord_meta(r, PRECORD_N) == 0 && precord_meta(r, PRECORD_LAST_MS) == 0);
    precord_set_meta(r, PRECORD_LAST_MS, 1735689600123.0);
    TEST_CHECK(precord_meta(r, PRECORD_LAST_MS) == 1735689600123.0);
    TEST_CHECK(precord_check(r, sizeof(r)) == 0 && precord_size(r) == PRECORD_HEAD);
}

static void test_rebuild_keeps_the_fields(void) {
    unsigned char r[CAP], out[CAP];
    precord_field f[40];
    double meta[PRECORD_NMETA] = {1, 2, 3, 4};
    grown(r);
    for (size_t i = 0; i < 40; i++) precord_field_at(r, i, &f[i]);
    TEST_REQUIRE(precord_build_size(f + 5, 30) <= sizeof(out));
    precord_build(out, meta, f + 5, 30);
    TEST_CHECK(precord_size(out) == precord_build_size(f + 5, 30));
    TEST_CHECK(precord_check(out, precord_size(out)) == 0 && precord_count(out) == 30);
    for (int k = 0; k < PRECORD_NMETA; k++) TEST_CHECK(precord_meta(out, k) == meta[k]);
}

static void test_check_refuses_what_is_malformed(void) {
    unsigned char r[CAP], bad[CAP];
    size_t len = grown(r);
    for (size_t cut = 0; cut < len; cut++)
        TEST_CHECK(precord_check(r, cut) != 0 && precord_check_bounds(r, cut) != 0);
    TEST_CHECK(precord_check(r, len + 1) != 0);
    memcpy(bad, r, len);
    bad[0] = 'X'; /* magic */
    TEST_CHECK(precord_check(bad, len) != 0);
    memcpy(bad, r, len);
    bad[4] = PRECORD_VERSION + 1;
    TEST_CHECK(precord_check(bad, len) != 0);
    memcpy(bad, r, len);
    bad[PRECORD_HEAD + 4] = 0xff; /* the first name's length, past the heap */
    TEST_CHECK(precord_check(bad, len) != 0);
    memcpy(bad, r, len);
    memcpy(bad + PRECORD_HEAD, r + PRECORD_HEAD + PRECORD_ENTRY, PRECORD_ENTRY);
    memcpy(bad + PRECORD_HEAD + PRECORD_ENTRY, r + PRECORD_HEAD, PRECORD_ENTRY); /* order */
    TEST_CHECK(precord_check(bad, len) != 0);
    TEST_CHECK(precord_check_bounds(bad, len) == 0); /* safe to read, only out of order */
    memcpy(bad, r, len);
    bad[12]++; /* marks */
    TEST_CHECK(precord_check(bad, len) != 0);
}

int main(void) {
    TEST_RUN(test_inserts_keep_order_and_find);
    TEST_RUN(test_meta_round_trips);
    TEST_RUN(test_rebuild_keeps_the_fields);
    TEST_RUN(test_check_refuses_what_is_malformed);
    return test_summary();
}
