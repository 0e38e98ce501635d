/* filter: response functions of the training-free graph filters (see
 * filter.h). The ChebyCF fit reproduces the published code's choices,
 * rounding included, so that "ChebyCF with its published settings" means
 * the same filter here. */
#include "embed/filter.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static const double filter_pi = 3.14159265358979323846;

static double round3(double v) { return round(v * 1000.0) / 1000.0; }

/* The plateau target at Chebyshev extremum k of order K: 1 at x = -1 (the
 * lowest graph frequency), 0 at x = 1, flat at both ends for phi > 1. */
static double cheby_plateau(uint32_t order, uint32_t k, double phi) {
    double x = round3(cos((double)(order - k) / order * filter_pi));
    double v = x < 0 ? 0.5 + 0.5 * pow(-x, phi) : 0.5 - 0.5 * pow(x, phi);
    return round3(v);
}

void embed_cheby_fit(embed_cheby *c, uint32_t order, double phi) {
    assert(order >= 1 && order <= EMBED_CHEBY_MAX_ORDER && phi > 0);
    memset(c, 0, sizeof(*c));
    c->order = order;
    uint32_t n = order + 1;
    for (uint32_t k = 1; k <= n; k++) {
        double node = cos(((double)n + 0.5 - k) / n * filter_pi);
        double target = cheby_plateau(order, k - 1, phi);
        double tm[EMBED_CHEBY_MAX_ORDER + 1];
        tm[0] = 1;
        tm[1] = node;
        for (uint32_t m = 2; m <= order; m++) tm[m] = 2 * node * tm[m - 1] - tm[m - 2];
        for (uint32_t m = 0; m <= order; m++) c->coef[m] += target * tm[m] * 2.0 / n;
    }
    c->coef[0] /= 2;
}

double embed_cheby_eval(const embed_cheby *c, double t) {
    double x = 1 - 2 * t, t0 = 1, t1 = x, h = c->coef[0] + c->coef[1] * x;
    for (uint32_t m = 2; m <= c->order; m++) {
        double tm = 2 * x * t1 - t0;
        h += c->coef[m] * tm;
        t0 = t1;
        t1 = tm;
    }
    return h;
}

/* T_m(1) = 1 and T_m'(1) = m^2, and dx/dt = -2. */
double embed_cheby_h0(const embed_cheby *c) {
    double h = 0;
    for (uint32_t m = 0; m <= c->order; m++) h += c->coef[m];
    return h;
}

double embed_cheby_h1(const embed_cheby *c) {
    double d = 0;
    for (uint32_t m = 1; m <= c->order; m++) d += c->coef[m] * (double)m * m;
    return -2 * d;
}

void embed_bspm_coef(double T, double coef[5]) {
    coef[0] = 1;
    coef[1] = -T;
    coef[2] = T * T / 2;
    coef[3] = -T * T * T / 6;
    coef[4] = T * T * T * T / 24;
}

double embed_bspm_sharpen(double T, double t) {
    double c[5];
    embed_bspm_coef(T, c);
    return c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * c[4])));
}
