/* param: the parameter registry and the parsing of override values
 * (see param.h). */
#include "services/experiment/param.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

/* One line per parameter, each applied by serve (services/serve/variants.c):
 * a parameter listed here and not applied would let an experiment report
 * a difference that was never served. */
static const param_def registry[] = {
    {"rank.mmr_lambda", PARAM_FLOAT, 0, 1, NULL, "MMR relevance/diversity trade-off"},
    {"rank.creator_cap", PARAM_INT, 0, 100, NULL, "items per creator on a page"},
    {"rank.category_cap", PARAM_INT, 0, 100, NULL, "items per category on a page"},
    {"sources.*.budget", PARAM_INT, 0, 10000, NULL, "candidates taken from a source"},
    {"ranker.weights_file", PARAM_PATH, 0, 0, NULL,
     "scorer file (ranker/scorer.h: surfaces' weights, budgets, MMR, caps) to rank with"},
    {"ranker.model_file", PARAM_PATH, 0, 0, NULL, "learned ranker model to score with"},
    {"shop.mode", PARAM_ENUM, 0, 0, "fast|contemplating", "Shop answer mode"},
    {"shop.model", PARAM_ENUM, 0, 0, "off|on", "language model writes Shop answers"},
    /* A toggle (a kill switch, and the exposure bench's on/off): set in a
     * variant, that variant's pages would be missing from its report. */
    {"exposures.log", PARAM_ENUM, 0, 0, "off|on", "served pages go to aisle.exposures"},
};

const param_def *param_registry(size_t *n) {
    *n = sizeof(registry) / sizeof(registry[0]);
    return registry;
}

/* Does name match pattern, where a '*' segment matches [a-z0-9_]+? */
static int param_match(const char *pattern, const char *name) {
    const char *star = strchr(pattern, '*');
    if (!star) return strcmp(pattern, name) == 0;
    size_t pre = (size_t)(star - pattern), post = strlen(star + 1), len = strlen(name);
    if (len <= pre + post || strncmp(pattern, name, pre) || strcmp(star + 1, name + len - post))
        return 0;
    for (const char *p = name + pre; p < name + len - post; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) return 0;
    return 1;
}

const param_def *param_find(const char *name) {
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (param_match(registry[i].name, name)) return &registry[i];
    return NULL;
}

/* The index of value among d's '|'-separated choices, or -1. */
static int param_choice(const param_def *d, const char *value) {
    size_t vlen = strlen(value);
    int i = 0;
    for (const char *p = d->choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vlen && strncmp(p, value, n) == 0) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

static int param_number(const param_def *d, const char *value, double *out, char *err,
                        size_t errlen) {
    char *end;
    errno = 0;
    double x = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(x) || (d->type == PARAM_INT && x != floor(x)) ||
        x < d->min || x > d->max)
        return status_fail(AISLE_EINVAL, err, errlen, "%s: '%s' is not %s in [%g, %g]", d->name,
                           value, d->type == PARAM_INT ? "an integer" : "a number", d->min,
                           d->max);
    *out = x;
    return AISLE_OK;
}

static int param_path(const param_def *d, const char *value, char *err, size_t errlen) {
    size_t n = strlen(value);
    int ok = n > 0 && n <= 1024;
    for (const char *p = value; ok && *p; p++) ok = !iscntrl((unsigned char)*p);
    if (!ok)
        return status_fail(AISLE_EINVAL, err, errlen, "%s: '%s' is not a valid path", d->name,
                           value);
    return AISLE_OK;
}

int param_parse(const char *name, const char *value, param_value *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof(*out));
    const param_def *d = param_find(name);
    if (!d) return status_fail(AISLE_EINVAL, err, errlen, "unknown parameter '%s'", name);
    int rc = AISLE_OK;
    double num = 0;
    if (d->type == PARAM_FLOAT || d->type == PARAM_INT) {
        rc = param_number(d, value, &num, err, errlen);
    } else if (d->type == PARAM_ENUM) {
        int i = param_choice(d, value);
        if (i < 0)
            rc = status_fail(AISLE_EINVAL, err, errlen, "%s: '%s' is not one of %s", d->name,
                             value, d->choices);
        num = i;
    } else {
        rc = param_path(d, value, err, errlen);
    }
    if (rc != AISLE_OK) return rc;
    out->name = strdup(name);
    out->text = strdup(value);
    if (!out->name || !out->text) {
        param_value_free(out);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    out->def = d;
    out->num = num;
    return AISLE_OK;
}

void param_value_free(param_value *v) {
    free(v->name);
    free(v->text);
    memset(v, 0, sizeof(*v));
}
