/* scorer: directives (dirfile.h) over the built-in settings. */
#include "ranker/scorer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/dirfile.h"
#include "services/base/status.h"

#define SCORER_MAX_WEIGHT 100.0

static int scorer_source(const char *name) {
    for (int s = 0; s < RANK_SRC_COUNT; s++)
        if (strcmp(rank_source_name(s), name) == 0) return s;
    return -1;
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

/* What the directives are read into. */
typedef struct scorer_read {
    scorer *sc;
    rank_settings *cur; /* the surface being set; NULL before the first */
} scorer_read;

/* Applies one directive (words w, n of them; see dirfile_fn). */
static int scorer_directive(void *arg, char **w, int n, char *why, size_t whylen) {
    scorer_read *rd = arg;
    rank_settings *cur = rd->cur;
    int src;
    (void)why;
    (void)whylen;
    if (n == 2 && strcmp(w[0], "surface") == 0)
        return (rd->cur = scorer_begin(rd->sc, w[1])) ? 0 : -1;
    if (!cur) return -1;
    if (n == 3 && strcmp(w[0], "weight") == 0 && (src = scorer_source(w[1])) >= 0)
        return dirfile_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &cur->weight[src]);
    if (n == 3 && strcmp(w[0], "budget") == 0 && (src = scorer_source(w[1])) >= 0)
        return dirfile_int(w[2], 0, 2000, &cur->budget[src]);
    if (n == 3 && strcmp(w[0], "affinity") == 0 && strcmp(w[1], "category") == 0)
        return dirfile_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &cur->w_category);
    if (n == 3 && strcmp(w[0], "affinity") == 0 && strcmp(w[1], "brand") == 0)
        return dirfile_float(w[2], -SCORER_MAX_WEIGHT, SCORER_MAX_WEIGHT, &cur->w_brand);
    if (n == 2 && strcmp(w[0], "mmr") == 0) return dirfile_float(w[1], 0, 1, &cur->mmr_lambda);
    if (n == 2 && strcmp(w[0], "seed_nprobe") == 0)
        return dirfile_int(w[1], 0, SCORER_MAX_NPROBE, &cur->seed_nprobe);
    if (n == 3 && strcmp(w[0], "cap") == 0) {
        int *cap = strcmp(w[1], "creator") == 0    ? &cur->cap_creator
                   : strcmp(w[1], "brand") == 0    ? &cur->cap_brand
                   : strcmp(w[1], "category") == 0 ? &cur->cap_category
                                                   : NULL;
        return cap ? dirfile_int(w[2], 0, RANK_MAX_LIMIT, cap) : -1;
    }
    return -1;
}

int scorer_load(const char *path, scorer **out, char *err, size_t errlen) {
    scorer_read rd = {calloc(1, sizeof(scorer)), NULL};
    int rc;
    *out = NULL;
    if (!rd.sc) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = dirfile_read(path, "aisle-scorer", SCORER_VERSION, scorer_directive, &rd, err,
                           errlen)) != AISLE_OK) {
        free(rd.sc);
        return rc;
    }
    *out = rd.sc;
    return AISLE_OK;
}

const rank_settings *scorer_surface(const scorer *sc, const char *name) {
    for (size_t i = 0; sc && i < sc->n; i++)
        if (strcmp(sc->names[i], name ? name : "") == 0) return &sc->surfaces[i];
    return rank_surface(name);
}
