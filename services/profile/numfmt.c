/* numfmt: fast exact decimal text for doubles (see numfmt.h). */
#include "services/profile/numfmt.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define NUMFMT_DIGITS 17 /* enough for any double to read back exactly */

/* The decimal digits of u into out, returning how many. */
static size_t numfmt_uint(char *out, uint64_t u) {
    char tmp[24];
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) out[len++] = tmp[--n];
    return len;
}

/* 10^k as a long double for 0 <= k < 1024, from powers by squaring: at
 * most ten products, each off by half a unit in 64 bits. */
static long double numfmt_pow10(int k) {
    static const long double small[16] = {1e0L, 1e1L, 1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                          1e8L, 1e9L, 1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L};
    static const long double big[6] = {1e16L, 1e32L, 1e64L, 1e128L, 1e256L, 1e512L};
    long double p = small[k & 15];
    assert(k >= 0 && k < 1024);
    k >>= 4;
    for (int i = 0; k; i++, k >>= 1)
        if (k & 1) p *= big[i];
    return p;
}

size_t numfmt_double(char *out, double v) {
    char digits[24];
    size_t len = 0, nd;
    int e2, e10;
    uint64_t m;
    long double scaled;
    if (v == 0) {
        out[0] = '0';
        out[1] = 0;
        return 1;
    }
    if (!isfinite(v) || fabs(v) < 1e-290 || fabs(v) > 1e290)
        return (size_t)snprintf(out, NUMFMT_MAX, "%.17g", v);
    if (v < 0) out[len++] = '-';
    v = fabs(v);
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
        len += numfmt_uint(out + len, (uint64_t)v);
        out[len] = 0;
        return len;
    }
    /* m = v · 10^(16−e10), rounded: the 17 leading digits. The long double
     * product errs by far less than the half unit in the 17th digit that
     * reading back tolerates. e10 is first estimated from the binary
     * exponent (log10 2 = 0.30103), then corrected. */
    frexp(v, &e2);
    e10 = (int)floor((e2 - 1) * 0.30102999566398120);
    e10 = NUMFMT_DIGITS - 1 - e10;
    scaled = e10 >= 0 ? (long double)v * numfmt_pow10(e10) : (long double)v / numfmt_pow10(-e10);
    e10 = NUMFMT_DIGITS - 1 - e10;
    while (scaled >= 1e17L) {
        e10++;
        scaled /= 10;
    }
    while (scaled < 1e16L) {
        e10--;
        scaled *= 10;
    }
    m = (uint64_t)(scaled + 0.5L);
    if (m >= 100000000000000000ULL) {
        m /= 10;
        e10++;
    }
    nd = numfmt_uint(digits, m);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    out[len++] = digits[0];
    if (nd > 1) {
        out[len++] = '.';
        for (size_t i = 1; i < nd; i++) out[len++] = digits[i];
    }
    if (e10) {
        out[len++] = 'e';
        if (e10 < 0) out[len++] = '-';
        len += numfmt_uint(out + len, (uint64_t)(e10 < 0 ? -e10 : e10));
    }
    out[len] = 0;
    return len;
}
