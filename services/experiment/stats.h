/* stats: the distributions experiment analysis needs (normal, chi-square)
 * and the mixture sequential probability ratio test (mSPRT).
 *
 * The mSPRT (Johari, Pekelis, Walsh, "Always valid inference", 2017) turns
 * a difference estimate with known variance into a p-value that stays valid
 * however often it is looked at: declaring a winner the first time it falls
 * below alpha keeps the false positive rate at most alpha, so a report read
 * every day does not inflate it the way a fixed-horizon z-test does. */
#ifndef AISLE_EXP_STATS_H
#define AISLE_EXP_STATS_H

#define STATS_Z95 1.959963984540054 /* the two-sided 95 % normal quantile */

/* P(Z <= z) for a standard normal Z. */
double stats_norm_cdf(double z);
/* Two-sided p-value of a z statistic. */
double stats_norm_p2(double z);
/* P(X >= x) for a chi-square X with df degrees of freedom. */
double stats_chi2_sf(double x, double df);
/* The mSPRT always-valid p-value for an observed difference delta with
 * sampling variance var (> 0), under a normal mixing prior N(0, tau2) on
 * the true difference. Returns a value in (0, 1]. */
double stats_msprt_p(double delta, double var, double tau2);

#endif
