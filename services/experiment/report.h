/* report: experiment results from exposures and signals.
 *
 * Exposures (served pages, with the user's variants) and signals (clicks,
 * add-to-carts, purchases) are added in any order; exp_report_compute then
 * attributes each signal to the latest exposure of the same user that
 * showed the same item and came at most window_ms before it (a signal
 * replayed with the same event id counts once). The unit of analysis is
 * the user, the unit of randomization: per experiment and variant, the
 * users exposed and the share of them who clicked (added to cart,
 * purchased) on an attributed item, with a Wilson 95 % interval; against
 * the control arm (the variant named "control", else the first by name)
 * the relative lift with a 95 % interval (delta method on the log ratio),
 * the fixed-horizon two-proportion z-test p-value, and the mSPRT
 * always-valid p-value (stats.h) that the verdict uses, so the report may
 * be read every day without inflating false positives beyond alpha. A
 * sample-ratio-mismatch check compares users per variant with the
 * expected split (equal unless exp_report_expect says otherwise) by
 * chi-square; p < 0.001 flags the experiment as untrustworthy.
 * Users seen in more than one variant of an experiment (a reshuffle) are
 * counted in the first and reported. */
#ifndef AISLE_EXP_REPORT_H
#define AISLE_EXP_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aisle/v1/events.pb-c.h"
#include "aisle/v1/experiments.pb-c.h"
#include "services/base/buf.h"

enum { REPORT_CLICK, REPORT_CART, REPORT_PURCHASE, REPORT_OUTCOMES };

typedef struct exp_report_config {
    int64_t window_ms;  /* attribution window; 0: 24 h */
    double alpha;       /* verdict level; 0: 0.05 */
    double mixing_lift; /* mSPRT prior scale as a relative lift; 0: 0.1 */
} exp_report_config;

typedef struct exp_report_arm {
    const char *variant; /* owned by the report */
    uint64_t users, pages;
    uint64_t events[REPORT_OUTCOMES];    /* attributed signals */
    uint64_t converted[REPORT_OUTCOMES]; /* users with at least one */
    double rate[REPORT_OUTCOMES], lo[REPORT_OUTCOMES], hi[REPORT_OUTCOMES];
    /* Against control (NaN for control itself, or when undefined). */
    double lift[REPORT_OUTCOMES], lift_lo[REPORT_OUTCOMES], lift_hi[REPORT_OUTCOMES];
    double p_fixed[REPORT_OUTCOMES], p_seq[REPORT_OUTCOMES];
    int significant[REPORT_OUTCOMES]; /* p_seq < alpha */
    double expected_share;
} exp_report_arm;

typedef struct exp_report_exp {
    const char *name;
    size_t n_arms;
    exp_report_arm *arms; /* control first */
    double srm_chi2, srm_p;
    int srm; /* srm_p < 0.001 */
    uint64_t mixed_users;
} exp_report_exp;

typedef struct exp_report exp_report;

int exp_report_new(const exp_report_config *cfg, exp_report **out);
void exp_report_free(exp_report *r);
/* Copies what it needs. AISLE_OK or AISLE_ENOMEM. */
int exp_report_add_exposure(exp_report *r, const Aisle__V1__Exposure *e);
/* Signals other than click, add-to-cart and purchase are ignored. */
int exp_report_add_signal(exp_report *r, const Aisle__V1__Signal *s);
/* The expected relative weight of variant in experiment (default 1). */
int exp_report_expect(exp_report *r, const char *experiment, const char *variant, double w);

/* Computes the results from the events up to until_ms (INT64_MAX: all), so
 * the same data can be read as of any day. *out (n experiments, by name)
 * is owned by r, valid until the next compute or free. */
int exp_report_compute(exp_report *r, int64_t until_ms, const exp_report_exp **out, size_t *n);
/* The strongest outcome attributed to each item of each exposure, by the
 * same rule as the results: (*grades)[j] for the j-th item added over all
 * exposures in the order they were added; -1 none, else REPORT_CLICK,
 * REPORT_CART or REPORT_PURCHASE. *grades is the caller's to free. The
 * training labels of `aisle rank train`. */
int exp_report_outcomes(exp_report *r, int64_t until_ms, int8_t **grades, size_t *n);
/* The last results as a text table / as an HTML page with SVG plots. */
void exp_report_text(const exp_report *r, buf *out);
void exp_report_html(const exp_report *r, buf *out);

/* Length-delimited protobuf files (a varint length before each message, as
 * protobuf's writeDelimitedTo): the file form of the topics. */
int exp_delim_write(FILE *f, const ProtobufCMessage *m);
/* The next message's bytes into b (reset first): 1, 0 at the end, or
 * AISLE_EFORMAT for a truncated file. */
int exp_delim_read(FILE *f, buf *b);

#endif
