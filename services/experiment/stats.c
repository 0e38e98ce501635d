/* stats: normal and chi-square tails, and the mSPRT p-value (see stats.h). */
#include "services/experiment/stats.h"

#include <assert.h>
#include <math.h>

double stats_norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

double stats_norm_p2(double z) { return erfc(fabs(z) / sqrt(2.0)); }

/* The regularized lower incomplete gamma P(a, x) by its series (x < a + 1). */
static double stats_gamma_series(double a, double x) {
    double sum = 1.0 / a, term = sum;
    for (int n = 1; n < 10000 && fabs(term) > fabs(sum) * 1e-15; n++) {
        term *= x / (a + n);
        sum += term;
    }
    return sum * exp(-x + a * log(x) - lgamma(a));
}

/* The regularized upper incomplete gamma Q(a, x) by Lentz's continued
 * fraction (x >= a + 1). */
static double stats_gamma_cf(double a, double x) {
    const double tiny = 1e-300;
    double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < tiny) d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double step = d * c;
        h *= step;
        if (fabs(step - 1.0) < 1e-15) break;
    }
    return exp(-x + a * log(x) - lgamma(a)) * h;
}

double stats_chi2_sf(double x, double df) {
    assert(df > 0);
    if (x <= 0) return 1.0;
    double a = df / 2, y = x / 2;
    return y < a + 1 ? 1.0 - stats_gamma_series(a, y) : stats_gamma_cf(a, y);
}

double stats_msprt_p(double delta, double var, double tau2) {
    assert(var > 0 && tau2 > 0);
    /* The likelihood ratio of the mixture against "no difference". */
    double log_lr = 0.5 * log(var / (var + tau2)) + tau2 * delta * delta / (2 * var * (var + tau2));
    return log_lr <= 0 ? 1.0 : exp(-log_lr);
}
