/* rules: pin and boost directives by surface (see rules.h). */
#include "ranker/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/dirfile.h"
#include "retrieval/catalog.h"
#include "services/base/status.h"

#define RULES_MAX_BOOST 100.0

/* What the directives are read into. */
typedef struct rules_read {
    rules *r;
    rules_surface *cur; /* NULL before the first surface line */
} rules_read;

/* The rule of item on s, appended (no pin, boost 1) when new; NULL when
 * the surface is full or memory runs out (why says which). */
static rank_rule *rules_item(rules_surface *s, const char *item, char *why, size_t whylen) {
    rank_rule *rr;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->rules[i].item_id, item) == 0) return &s->rules[i];
    if (strlen(item) > CATALOG_MAX_FIELD) {
        snprintf(why, whylen, "an item id has at most %d bytes", CATALOG_MAX_FIELD);
        return NULL;
    }
    if (s->n == RULES_MAX_PER_SURFACE) {
        snprintf(why, whylen, "at most %d items a surface", RULES_MAX_PER_SURFACE);
        return NULL;
    }
    rr = &s->rules[s->n];
    *rr = (rank_rule){.item_id = strdup(item), .boost = 1};
    if (!rr->item_id) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    s->n++;
    return rr;
}

static int rules_surface_begin(rules_read *rd, const char *name, char *why, size_t whylen) {
    rules *r = rd->r;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->surfaces[i].name, name) == 0) {
            rd->cur = &r->surfaces[i];
            return 0;
        }
    if (strlen(name) >= sizeof(r->surfaces[0].name) || r->n == RULES_MAX_SURFACES) {
        snprintf(why, whylen, "at most %d surfaces of at most %zu bytes", RULES_MAX_SURFACES,
                 sizeof(r->surfaces[0].name) - 1);
        return -1;
    }
    rd->cur = &r->surfaces[r->n++];
    snprintf(rd->cur->name, sizeof(rd->cur->name), "%s", name);
    return 0;
}

/* A pin at position, unless one is there already or the item has one. */
static int rules_pin(rules_surface *s, const char *item, const char *pos, char *why,
                     size_t whylen) {
    rank_rule *rr;
    int p;
    if (dirfile_int(pos, 1, RANK_MAX_LIMIT, &p) != 0) {
        snprintf(why, whylen, "position '%s' is not a whole number in 1..%d", pos,
                 RANK_MAX_LIMIT);
        return -1;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->rules[i].pin == p && strcmp(s->rules[i].item_id, item)) {
            snprintf(why, whylen, "position %d is %s's already", p, s->rules[i].item_id);
            return -1;
        }
    if (!(rr = rules_item(s, item, why, whylen))) return -1;
    if (rr->pin) {
        snprintf(why, whylen, "%s is pinned already", item);
        return -1;
    }
    rr->pin = p;
    return 0;
}

static int rules_boost(rules_surface *s, const char *item, const char *factor, char *why,
                       size_t whylen) {
    rank_rule *rr;
    float f;
    if (dirfile_float(factor, 0, RULES_MAX_BOOST, &f) != 0 || !(f > 0)) {
        snprintf(why, whylen, "factor '%s' is not a number in (0, %g]", factor,
                 RULES_MAX_BOOST);
        return -1;
    }
    if (!(rr = rules_item(s, item, why, whylen))) return -1;
    rr->boost = f;
    return 0;
}

/* One directive (see dirfile_fn). */
static int rules_directive(void *arg, char **w, int n, char *why, size_t whylen) {
    rules_read *rd = arg;
    if (n == 2 && strcmp(w[0], "surface") == 0) return rules_surface_begin(rd, w[1], why, whylen);
    if (!rd->cur) {
        snprintf(why, whylen, "a 'surface NAME' line must come first");
        return -1;
    }
    if (n == 3 && strcmp(w[0], "pin") == 0) return rules_pin(rd->cur, w[1], w[2], why, whylen);
    if (n == 3 && strcmp(w[0], "boost") == 0)
        return rules_boost(rd->cur, w[1], w[2], why, whylen);
    return -1;
}

int rules_load(const char *path, rules **out, char *err, size_t errlen) {
    rules_read rd = {calloc(1, sizeof(rules)), NULL};
    int rc;
    *out = NULL;
    if (!rd.r) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = dirfile_read(path, "aisle-rules", RULES_VERSION, rules_directive, &rd, err,
                           errlen)) != AISLE_OK) {
        rules_free(rd.r);
        return rc;
    }
    *out = rd.r;
    return AISLE_OK;
}

void rules_free(rules *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->surfaces[i].n; k++) free(r->surfaces[i].rules[k].item_id);
    free(r);
}

const rank_rule *rules_for(const rules *r, const char *name, size_t *n) {
    *n = 0;
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->surfaces[i].name, name ? name : "") == 0) {
            *n = r->surfaces[i].n;
            return r->surfaces[i].rules;
        }
    return NULL;
}
