/* scorer: a line parser over the built-in settings. */
#include "ranker/scorer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

#define SCORER_MAX_LINE 256
#define SCORER_MAX_WEIGHT 100.0

static int scorer_source(const char *name) {
    for (int s = 0; s < RANK_SRC_COUNT; s++)
        if (strcmp(rank_source_name(s), name) == 0) return s;
    return -1;
}

static int scorer_float(const char *s, double lo, double hi, float *out) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = (float)v;
    return 0;
}

static int scorer_int(const char *s, long lo, long hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Opens the settings of surface name in sc. */
static rank_settings *scorer_begin(scorer *sc, const char *name) {
    const rank_settings *base = rank_surface(name);
    rank_settings *s;
    size_t i;
    for (i = 0; i < sc->n; i++)
        if (strcmp(sc->names[i], name) == 0) return &sc->surfaces[i];
    if (sc->n == SCORER_MAX_SURFACES || strlen(name) >= SCORER_MAX_NAME) return NULL;
    s = &sc->surfaces[sc->n];
    *s = base ? *base : *rank_surface("");
    snprintf(sc->names[sc->n], SCORER_MAX_NAME, "%s", name);
    s->name = sc->names[sc->n++];
    return s;
}

/* Applies one directive (words w, n of them) to cur. */
static int scorer_directive(scorer *sc, rank_settings **cur, char **w, int n) {
    int src;
    if (n == 2 && strcmp(w[0], "surface") == 0) return (*cur = scorer_begin(sc, w[1])) ? 0 : -1;
    if (!*cur) return -1;
    if (n == 3 && strcmp(w[0], "weight") == 0 && (src = scorer_source(w[1])) >= 0)
        return scorer_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &(*cur)->weight[src]);
    if (n == 3 && strcmp(w[0], "budget") == 0 && (src = scorer_source(w[1])) >= 0)
        return scorer_int(w[2], 0, 2000, &(*cur)->budget[src]);
    if (n == 3 && strcmp(w[0], "affinity") == 0 && strcmp(w[1], "category") == 0)
        return scorer_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &(*cur)->w_category);
    if (n == 3 && strcmp(w[0], "affinity") == 0 && strcmp(w[1], "brand") == 0)
        return scorer_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &(*cur)->w_brand);
    if (n == 2 && strcmp(w[0], "mmr") == 0) return scorer_float(w[1], 0, 1, &(*cur)->mmr_lambda);
    if (n == 3 && strcmp(w[0], "cap") == 0) {
        int *cap = strcmp(w[1], "creator") == 0    ? &(*cur)->cap_creator
                   : strcmp(w[1], "brand") == 0    ? &(*cur)->cap_brand
                   : strcmp(w[1], "category") == 0 ? &(*cur)->cap_category
                                                   : NULL;
        return cap ? scorer_int(w[2], 0, RANK_MAX_LIMIT, cap) : -1;
    }
    return -1;
}

/* Splits line into at most 4 words (comments dropped); returns the count,
 * 5 when there are more. */
static int scorer_words(char *line, char **w) {
    int n = 0;
    char *hash = strchr(line, '#'), *save = NULL, *tok;
    if (hash) *hash = 0;
    for (tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 4) return 5;
        w[n++] = tok;
    }
    return n;
}

int scorer_load(const char *path, scorer **out, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    char line[SCORER_MAX_LINE], *w[4];
    rank_settings *cur = NULL;
    scorer *sc = NULL;
    int lineno = 0, header = 0, ended = 0, rc;

    *out = NULL;
    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    if (!(sc = calloc(1, sizeof(*sc)))) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    while (fgets(line, sizeof(line), f)) {
        int n;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        if ((n = scorer_words(line, w)) == 0) continue;
        if (ended) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: text after 'end'", path,
                             lineno);
            goto fail;
        }
        if (!header) {
            int version;
            if (n != 2 || strcmp(w[0], "aisle-scorer") || scorer_int(w[1], 1, 1000, &version)) {
                rc = status_fail(AISLE_EFORMAT, err, errlen,
                                 "%s:%d: not an aisle-scorer file (want 'aisle-scorer %d')",
                                 path, lineno, SCORER_VERSION);
                goto fail;
            }
            if (version != SCORER_VERSION) {
                rc = status_fail(AISLE_EFORMAT, err, errlen,
                                 "%s:%d: version %d; this server reads version %d", path,
                                 lineno, version, SCORER_VERSION);
                goto fail;
            }
            header = 1;
        } else if (n == 1 && strcmp(w[0], "end") == 0) {
            ended = 1;
        } else if (n > 4 || scorer_directive(sc, &cur, w, n) != 0) {
            rc = status_fail(AISLE_EFORMAT, err, errlen, "%s:%d: bad directive '%s'", path,
                             lineno, w[0]);
            goto fail;
        }
    }
    if (!ended) {
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s: no 'end' line (cut short?)", path);
        goto fail;
    }
    fclose(f);
    *out = sc;
    return AISLE_OK;
fail:
    fclose(f);
    free(sc);
    return rc;
}

const rank_settings *scorer_surface(const scorer *sc, const char *name) {
    for (size_t i = 0; sc && i < sc->n; i++)
        if (strcmp(sc->names[i], name ? name : "") == 0) return &sc->surfaces[i];
    return rank_surface(name);
}
