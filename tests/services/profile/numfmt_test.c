/* Tests for services/profile/numfmt: integers as integers, every other
 * double read back exactly by strtod, edge values as "%.17g" writes them. */
#include "services/profile/numfmt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static const char *fmt(double v) {
    static char buf[NUMFMT_MAX];
    size_t n = numfmt_double(buf, v);
    TEST_CHECK(n == strlen(buf) && n < NUMFMT_MAX);
    return buf;
}

static void test_integers_and_short_values(void) {
    TEST_CHECK(strcmp(fmt(0), "0") == 0);
    TEST_CHECK(strcmp(fmt(5), "5") == 0);
    TEST_CHECK(strcmp(fmt(-1733000000000.0), "-1733000000000") == 0);
    TEST_CHECK(strcmp(fmt(0.25), "2.5e-1") == 0);
    TEST_CHECK(strcmp(fmt(1.5), "1.5") == 0);
    TEST_CHECK(strcmp(fmt(12345.5), "1.23455e4") == 0);
    TEST_CHECK(strcmp(fmt(INFINITY), "inf") == 0);
    TEST_CHECK(strcmp(fmt(NAN), "nan") == 0 || strcmp(fmt(NAN), "-nan") == 0);
}

/* Random bit patterns, random magnitudes and decayed-looking weights. */
static void test_every_double_reads_back(void) {
    uint64_t s = 88172645463325252ULL;
    long bad = 0;
    for (long i = 0; i < 300000; i++) {
        double v;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        if (i % 3 == 0) {
            memcpy(&v, &s, sizeof(v));
            if (!isfinite(v)) continue;
        } else if (i % 3 == 1) {
            v = (double)(s >> 11) / 9007199254740992.0 * pow(10, (int)(s % 40) - 20);
        } else {
            v = exp2((double)(s % 1000000) / 1e4) * ((s & 1) ? 1 : -1);
        }
        bad += strtod(fmt(v), NULL) != v;
    }
    TEST_CHECK(bad == 0);
    TEST_CHECK(strtod(fmt(nextafter(1.0, 2.0)), NULL) == nextafter(1.0, 2.0));
    TEST_CHECK(strtod(fmt(0.1), NULL) == 0.1);
    TEST_CHECK(strtod(fmt(9007199254740993.0 * 3), NULL) == 9007199254740993.0 * 3);
    TEST_CHECK(strtod(fmt(1e-300), NULL) == 1e-300);
}

int main(void) {
    TEST_RUN(test_integers_and_short_values);
    TEST_RUN(test_every_double_reads_back);
    return test_summary();
}
