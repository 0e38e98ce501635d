/* The response functions: ChebyCF's fit reproduces the published plateau
 * (checked against values computed from its reference code), and BSPM's
 * sharpening step is the Taylor polynomial it should be. */
#include <math.h>

#include "embed/filter.h"
#include "tests/test.h"

#define NEAR(a, b, eps) (fabs((a) - (b)) < (eps))

static void test_cheby_plateau(void) {
    embed_cheby c;
    embed_cheby_fit(&c, 8, 1.5);
    /* Values of the published fit for K = 8, phi = 1.5. */
    TEST_CHECK(NEAR(embed_cheby_eval(&c, 0.0), -0.0050, 1e-4));
    TEST_CHECK(NEAR(embed_cheby_eval(&c, 0.1), 0.0964, 1e-4));
    TEST_CHECK(NEAR(embed_cheby_eval(&c, 0.5), 0.5000, 1e-4));
    TEST_CHECK(NEAR(embed_cheby_eval(&c, 1.0), 1.0050, 1e-4));
    TEST_CHECK(NEAR(embed_cheby_h0(&c), embed_cheby_eval(&c, 0.0), 1e-12));
    TEST_CHECK(NEAR(embed_cheby_h1(&c), 0.62006, 1e-4));
    /* The derivative agrees with a finite difference. */
    double fd = (embed_cheby_eval(&c, 1e-6) - embed_cheby_eval(&c, 0)) / 1e-6;
    TEST_CHECK(NEAR(fd, embed_cheby_h1(&c), 1e-4));
}

static void test_bspm_step(void) {
    double c[5];
    embed_bspm_coef(2.5, c);
    TEST_CHECK(c[0] == 1 && c[1] == -2.5 && NEAR(c[4], 2.5 * 2.5 * 2.5 * 2.5 / 24, 1e-12));
    /* One RK4 step of x' = -x is exp(-h) to fourth order. */
    TEST_CHECK(NEAR(embed_bspm_sharpen(0.1, 1.0), exp(-0.1), 1e-6));
    TEST_CHECK(embed_bspm_sharpen(2.5, 0.0) == 1.0);
}

int main(void) {
    TEST_RUN(test_cheby_plateau);
    TEST_RUN(test_bspm_step);
    return test_summary();
}
