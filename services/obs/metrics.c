/* metrics: families in a list, series in a growable array per family, all
 * under one mutex. Updates are a lookup and an add; label tuples are few
 * (methods x codes, outcomes), so a linear search beats hashing them. */
#include "services/obs/metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type;

typedef struct metrics_series {
    char *values[METRICS_MAX_LABELS]; /* owned */
    double value;                     /* counter or gauge; histogram sum */
    unsigned long long *buckets;      /* histogram: n_bounds + 1 counts, not cumulative */
    unsigned long long count;         /* histogram observations */
} metrics_series;

struct metrics_family {
    metrics_family *next;
    char *name, *help;
    metrics_type type;
    char *labels[METRICS_MAX_LABELS];
    size_t n_labels;
    double *bounds;
    size_t n_bounds;
    metrics_series *series;
    size_t n_series, cap_series;
};

typedef struct metrics_collector_entry {
    metrics_collector fn;
    void *arg;
} metrics_collector_entry;

enum { METRICS_MAX_COLLECTORS = 16 };

/* lock guards the families and their series; collect_lock the collector
 * list and serializes renders, so a collector is never running while it is
 * removed. Collectors take lock (through metrics_set) while collect_lock is
 * held; nothing takes them the other way round. */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t metrics_collect_lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_family *metrics_families;
static unsigned long long metrics_n_dropped; /* measurements with no room for their series */
static metrics_collector_entry metrics_collectors[METRICS_MAX_COLLECTORS];
static size_t metrics_n_collectors;

const double metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_n_latency_bounds =
    sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]);

static const char *const metrics_type_names[] = {"counter", "gauge", "histogram"};

/* Used by assertions only: inline, so builds without them do not warn. */
static inline int metrics_valid_name(const char *s) {
    if (!*s || (*s >= '0' && *s <= '9')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static void metrics_family_free(metrics_family *f) {
    free(f->name);
    free(f->help);
    for (size_t i = 0; i < f->n_labels; i++) free(f->labels[i]);
    free(f->bounds);
    free(f);
}

/* Splits "a,b" into f->labels. Returns AISLE_OK or AISLE_ENOMEM. */
static int metrics_split_labels(metrics_family *f, const char *labels) {
    const char *p = labels;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        assert(f->n_labels < METRICS_MAX_LABELS);
        if (!(f->labels[f->n_labels] = strndup(p, n))) return AISLE_ENOMEM;
        assert(metrics_valid_name(f->labels[f->n_labels]));
        f->n_labels++;
        p += n + (p[n] == ',');
    }
    return AISLE_OK;
}

static metrics_family *metrics_family_new(const char *name, const char *help, metrics_type t,
                                          const char *labels, const double *bounds,
                                          size_t n) {
    metrics_family *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->type = t;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help || metrics_split_labels(f, labels) != AISLE_OK) goto fail;
    if (n) {
        if (!(f->bounds = malloc(n * sizeof(double)))) goto fail;
        memcpy(f->bounds, bounds, n * sizeof(double));
        f->n_bounds = n;
    }
    return f;
fail:
    metrics_family_free(f);
    return NULL;
}

/* Whether an existing family was declared the same way. */
static inline int metrics_same_labels(const metrics_family *f, const char *labels) {
    const char *p = labels ? labels : "";
    for (size_t i = 0; i < f->n_labels; i++) {
        size_t n = strlen(f->labels[i]);
        if (strncmp(p, f->labels[i], n) || (p[n] != ',' && p[n] != '\0')) return 0;
        p += n + (p[n] == ',');
    }
    return *p == '\0';
}

static metrics_family *metrics_get(const char *name, const char *help, metrics_type t,
                                   const char *labels, const double *bounds, size_t n) {
    metrics_family *f;
    assert(metrics_valid_name(name));
    pthread_mutex_lock(&metrics_lock);
    for (f = metrics_families; f; f = f->next)
        if (strcmp(f->name, name) == 0) break;
    if (f) {
        assert(f->type == t && metrics_same_labels(f, labels));
    } else if ((f = metrics_family_new(name, help, t, labels, bounds, n))) {
        /* Appended, so the exposition lists families in creation order. */
        metrics_family **tail = &metrics_families;
        while (*tail) tail = &(*tail)->next;
        *tail = f;
    }
    pthread_mutex_unlock(&metrics_lock);
    return f;
}

metrics_family *metrics_counter(const char *name, const char *help, const char *labels) {
    return metrics_get(name, help, METRICS_COUNTER, labels, NULL, 0);
}

metrics_family *metrics_gauge(const char *name, const char *help, const char *labels) {
    return metrics_get(name, help, METRICS_GAUGE, labels, NULL, 0);
}

metrics_family *metrics_histogram(const char *name, const char *help, const char *labels,
                                  const double *bounds, size_t n) {
    for (size_t i = 1; i < n; i++) assert(bounds[i] > bounds[i - 1]);
    return metrics_get(name, help, METRICS_HISTOGRAM, labels, bounds, n);
}

static metrics_series *metrics_series_new(metrics_family *f, const char *const *values) {
    metrics_series *s;
    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? 2 * f->cap_series : 8;
        metrics_series *p = realloc(f->series, cap * sizeof(*p));
        if (!p) return NULL;
        f->series = p;
        f->cap_series = cap;
    }
    s = &f->series[f->n_series];
    memset(s, 0, sizeof(*s));
    if (f->type == METRICS_HISTOGRAM &&
        !(s->buckets = calloc(f->n_bounds + 1, sizeof(*s->buckets))))
        return NULL;
    for (size_t i = 0; i < f->n_labels; i++)
        if (!(s->values[i] = strdup(values[i] ? values[i] : ""))) goto fail;
    f->n_series++;
    return s;
fail:
    for (size_t i = 0; i < f->n_labels; i++) free(s->values[i]);
    free(s->buckets);
    return NULL;
}

/* The series for values, created when new; NULL when full or out of
 * memory (the measurement is dropped and counted). Called under the lock. */
static metrics_series *metrics_find(metrics_family *f, const char *const *values) {
    for (size_t k = 0; k < f->n_series; k++) {
        size_t i = 0;
        while (i < f->n_labels && strcmp(f->series[k].values[i], values[i] ? values[i] : "") == 0)
            i++;
        if (i == f->n_labels) return &f->series[k];
    }
    if (f->n_series < METRICS_MAX_SERIES) {
        metrics_series *s = metrics_series_new(f, values);
        if (s) return s;
    }
    metrics_n_dropped++;
    return NULL;
}

static void metrics_update(metrics_family *f, const char *const *values, double v, int op) {
    metrics_series *s;
    if (!f) return; /* its creation ran out of memory */
    assert(f->n_labels == 0 || values);
    pthread_mutex_lock(&metrics_lock);
    if ((s = metrics_find(f, values))) {
        if (op == 0) {
            s->value += v;
        } else if (op == 1) {
            s->value = v;
        } else {
            size_t b = 0;
            while (b < f->n_bounds && v > f->bounds[b]) b++;
            s->buckets[b]++;
            s->count++;
            s->value += v;
        }
    }
    pthread_mutex_unlock(&metrics_lock);
}

void metrics_add(metrics_family *f, const char *const *values, double v) {
    assert(!f || (f->type != METRICS_HISTOGRAM && v >= 0));
    metrics_update(f, values, v, 0);
}

void metrics_set(metrics_family *f, const char *const *values, double v) {
    assert(!f || f->type != METRICS_HISTOGRAM);
    metrics_update(f, values, v, 1);
}

void metrics_observe(metrics_family *f, const char *const *values, double v) {
    assert(!f || f->type == METRICS_HISTOGRAM);
    metrics_update(f, values, v, 2);
}

void metrics_clear(metrics_family *f) {
    if (!f) return;
    pthread_mutex_lock(&metrics_lock);
    for (size_t k = 0; k < f->n_series; k++) {
        for (size_t i = 0; i < f->n_labels; i++) free(f->series[k].values[i]);
        free(f->series[k].buckets);
    }
    f->n_series = 0;
    pthread_mutex_unlock(&metrics_lock);
}

int metrics_collector_add(metrics_collector fn, void *arg) {
    int rc = AISLE_EFULL;
    pthread_mutex_lock(&metrics_collect_lock);
    if (metrics_n_collectors < METRICS_MAX_COLLECTORS) {
        metrics_collectors[metrics_n_collectors++] = (metrics_collector_entry){fn, arg};
        rc = AISLE_OK;
    }
    pthread_mutex_unlock(&metrics_collect_lock);
    return rc;
}

void metrics_collector_remove(metrics_collector fn, void *arg) {
    pthread_mutex_lock(&metrics_collect_lock);
    for (size_t i = 0; i < metrics_n_collectors; i++)
        if (metrics_collectors[i].fn == fn && metrics_collectors[i].arg == arg) {
            memmove(&metrics_collectors[i], &metrics_collectors[i + 1],
                    (metrics_n_collectors - i - 1) * sizeof(metrics_collectors[0]));
            metrics_n_collectors--;
            break;
        }
    pthread_mutex_unlock(&metrics_collect_lock);
}

/* A sample value as the format wants it: Go-style +Inf, -Inf, NaN. */
static void metrics_put_value(buf *out, double v) {
    if (isnan(v))
        buf_puts(out, "NaN");
    else if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else
        buf_printf(out, "%.15g", v);
}

/* Label values escape backslash, double quote and newline; help text
 * escapes backslash and newline. */
static void metrics_put_escaped(buf *out, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(out, "\\\\");
        else if (*s == '\n')
            buf_puts(out, "\\n");
        else if (quote && *s == '"')
            buf_puts(out, "\\\"");
        else
            buf_putc(out, *s);
    }
}

/* name{l1="v1",...[,le="bound"]} with the value, one line. */
static void metrics_put_sample(buf *out, const metrics_family *f, const metrics_series *s,
                               const char *suffix, const char *le, double v) {
    buf_puts(out, f->name);
    buf_puts(out, suffix);
    if (f->n_labels || le) {
        buf_putc(out, '{');
        for (size_t i = 0; i < f->n_labels; i++) {
            buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
            metrics_put_escaped(out, s->values[i], 1);
            buf_putc(out, '"');
        }
        if (le) buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
        buf_putc(out, '}');
    }
    buf_putc(out, ' ');
    metrics_put_value(out, v);
    buf_putc(out, '\n');
}

static void metrics_put_histogram(buf *out, const metrics_family *f, const metrics_series *s) {
    unsigned long long cum = 0;
    char le[32];
    for (size_t b = 0; b <= f->n_bounds; b++) {
        cum += s->buckets[b];
        if (b < f->n_bounds)
            snprintf(le, sizeof(le), "%.15g", f->bounds[b]);
        else
            strcpy(le, "+Inf");
        metrics_put_sample(out, f, s, "_bucket", le, (double)cum);
    }
    metrics_put_sample(out, f, s, "_sum", NULL, s->value);
    metrics_put_sample(out, f, s, "_count", NULL, (double)s->count);
}

static void metrics_put_family(buf *out, const metrics_family *f) {
    buf_printf(out, "# HELP %s ", f->name);
    metrics_put_escaped(out, f->help, 0);
    buf_printf(out, "\n# TYPE %s %s\n", f->name, metrics_type_names[f->type]);
    for (size_t k = 0; k < f->n_series; k++) {
        if (f->type == METRICS_HISTOGRAM)
            metrics_put_histogram(out, f, &f->series[k]);
        else
            metrics_put_sample(out, f, &f->series[k], "", NULL, f->series[k].value);
    }
}

int metrics_render(buf *out) {
    pthread_mutex_lock(&metrics_collect_lock);
    for (size_t i = 0; i < metrics_n_collectors; i++)
        metrics_collectors[i].fn(metrics_collectors[i].arg);
    pthread_mutex_lock(&metrics_lock);
    for (const metrics_family *f = metrics_families; f; f = f->next) metrics_put_family(out, f);
    /* The registry's own health, kept outside the families so that
     * counting a drop never needs a series of its own. */
    buf_puts(out, "# HELP aisle_metrics_series_dropped_total Measurements dropped because "
                  "their family had too many label sets\n"
                  "# TYPE aisle_metrics_series_dropped_total counter\n");
    buf_printf(out, "aisle_metrics_series_dropped_total %llu\n", metrics_n_dropped);
    pthread_mutex_unlock(&metrics_lock);
    pthread_mutex_unlock(&metrics_collect_lock);
    return buf_status(out);
}
