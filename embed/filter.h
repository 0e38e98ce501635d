/* filter: the spectral response functions of the training-free methods.
 *
 * Each method scores a user by a filter of the normalised item graph
 * L = R~^T R~ (R~ = D_U^-a R D_I^-b). On an eigenvector of L with
 * eigenvalue lambda (t = lambda / lambda_max in [0, 1]) a filter is a
 * number h(t); embed/train.c splits h into the parts the server computes:
 * h(t) ~ h0 + h1 * t (self loop, dropped; and the sparse neighbour term)
 * plus the rest on the top eigenvectors (the low-rank term). This file
 * computes those numbers and nothing else, so they can be checked alone. */
#ifndef AISLE_EMBED_FILTER_H
#define AISLE_EMBED_FILTER_H

#include <stdint.h>

#define EMBED_CHEBY_MAX_ORDER 32

/* ChebyCF (Kim et al., SIGIR 2025): a plateau response (1 at t = 1, 0 at
 * t = 0, flatness phi) interpolated by a Chebyshev polynomial of order K
 * in x = 1 - 2t, exactly as the published code computes it. */
typedef struct embed_cheby {
    uint32_t order;
    double coef[EMBED_CHEBY_MAX_ORDER + 1]; /* in the Chebyshev basis T_m(x) */
} embed_cheby;

/* Fills c for order (1..EMBED_CHEBY_MAX_ORDER) and flatness phi > 0. */
void embed_cheby_fit(embed_cheby *c, uint32_t order, double phi);
/* h(t) of the fitted polynomial. */
double embed_cheby_eval(const embed_cheby *c, double t);
/* h(0) and dh/dt at t = 0: the self-loop and neighbour-term coefficients. */
double embed_cheby_h0(const embed_cheby *c);
double embed_cheby_h1(const embed_cheby *c);

/* BSPM (Choi et al., SIGIR 2023) sharpening: one RK4 step of length T of
 * dx/dt = -x L is x(T) = x(0) p(L) with p the 4th-order Taylor polynomial
 * of exp(-T t). Returns p(t); coef gets its 5 monomial coefficients. */
double embed_bspm_sharpen(double T, double t);
void embed_bspm_coef(double T, double coef[5]);

#endif
