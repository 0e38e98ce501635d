/* spec: parsing an experiment's key=value words (see spec.h). */
#include "services/experiment/spec.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

long exp_spec_share(const char *s) {
    long whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    for (; isdigit((unsigned char)*s) && digits < 4; s++, digits++) whole = whole * 10 + (*s - '0');
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s) && fdigits < 2; s++, fdigits++)
            frac = frac * 10 + (*s - '0');
    if (fdigits == 1) frac *= 10;
    if (*s == '%') s++;
    long bp = whole * 100 + frac;
    return digits && !*s && bp > 0 && bp <= 10000 ? bp : -1;
}

/* Appends a new element of size sz to the array *arr of *n pointers. */
static void *exp_spec_push(void ***arr, size_t *n, size_t sz) {
    void **grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (!grown) return NULL;
    *arr = grown;
    void *el = calloc(1, sz);
    if (el) grown[(*n)++] = el;
    return el;
}

/* Applies one word to e (cur: the open variant, or NULL). */
static int exp_spec_word(Aisle__V1__Experiment *e, Aisle__V1__Variant **cur, const char *w,
                         char *err, size_t errlen) {
    const char *eq = strchr(w, '=');
    if (!eq || eq == w) return status_fail(AISLE_EINVAL, err, errlen, "'%s' is not key=value", w);
    size_t klen = (size_t)(eq - w);
    const char *val = eq + 1;
    char *copy = strdup(val);
    if (!copy) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
#define KEY(k) (klen == strlen(k) && strncmp(w, k, klen) == 0)
    char **field = KEY("name") ? &e->name : KEY("layer") ? &e->layer : KEY("salt") ? &e->salt
                 : KEY("description") ? &e->description : NULL;
    if (field) {
        if (*field != protobuf_c_empty_string) free(*field);
        *field = copy;
        return AISLE_OK;
    }
    int rc = AISLE_OK;
    if (KEY("share")) {
        long bp = exp_spec_share(val);
        rc = bp < 0 ? status_fail(AISLE_EINVAL, err, errlen,
                                  "share '%s' is not a percentage in (0, 100] like 12.5%%", val)
                    : AISLE_OK;
        e->share_bp = bp < 0 ? 0 : (uint32_t)bp;
    } else if (KEY("variant")) {
        *cur = exp_spec_push((void ***)&e->variants, &e->n_variants, sizeof(**cur));
        if (*cur) aisle__v1__variant__init(*cur), (*cur)->name = copy, copy = NULL;
        else rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    } else if (KEY("allow")) {
        char *colon = strchr(copy, ':');
        Aisle__V1__AllowEntry *a = colon ? exp_spec_push((void ***)&e->allowlist, &e->n_allowlist,
                                                         sizeof(*a)) : NULL;
        if (a) {
            aisle__v1__allow_entry__init(a);
            *colon = 0;
            a->user_id = copy;
            a->variant = strdup(colon + 1);
            copy = NULL;
            if (!a->variant) rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        } else {
            rc = status_fail(AISLE_EINVAL, err, errlen, "'%s' is not allow=USER:VARIANT", w);
        }
    } else if (!*cur) {
        rc = status_fail(AISLE_EINVAL, err, errlen, "'%s' before any variant=NAME", w);
    } else if (KEY("weight")) {
        char *end;
        long x = strtol(val, &end, 10);
        rc = *val && !*end && x > 0 && x <= 10000
                 ? AISLE_OK
                 : status_fail(AISLE_EINVAL, err, errlen, "weight '%s' is not in 1..10000", val);
        (*cur)->weight = (uint32_t)x;
    } else if (memchr(w, '.', klen)) {
        Aisle__V1__ParamOverride *o = exp_spec_push((void ***)&(*cur)->overrides,
                                                    &(*cur)->n_overrides, sizeof(*o));
        if (o) {
            aisle__v1__param_override__init(o);
            o->value = copy;
            o->param = strndup(w, klen);
            copy = NULL;
        }
        if (!o || !o->param) rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    } else {
        rc = status_fail(AISLE_EINVAL, err, errlen, "unknown key in '%s'", w);
    }
#undef KEY
    free(copy);
    return rc;
}

int exp_spec_parse(const char *const *words, size_t n, Aisle__V1__Experiment **out, char *err,
                   size_t errlen) {
    Aisle__V1__Experiment *e = calloc(1, sizeof(*e));
    if (!e) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    aisle__v1__experiment__init(e);
    Aisle__V1__Variant *cur = NULL;
    int rc = AISLE_OK;
    for (size_t i = 0; i < n && rc == AISLE_OK; i++)
        rc = exp_spec_word(e, &cur, words[i], err, errlen);
    if (rc == AISLE_OK && !e->name[0]) rc = status_fail(AISLE_EINVAL, err, errlen, "no name=");
    if (rc == AISLE_OK && !e->share_bp) rc = status_fail(AISLE_EINVAL, err, errlen, "no share=");
    if (rc != AISLE_OK) goto fail;
    *out = e;
    return AISLE_OK;
fail:
    aisle__v1__experiment__free_unpacked(e, NULL);
    return rc;
}

int exp_spec_parse_line(const char *line, Aisle__V1__Experiment **out, char *err, size_t errlen) {
    char *copy = strdup(line);
    size_t n = 0, cap = strlen(line) / 2 + 1;
    const char **words = calloc(cap, sizeof(*words));
    int rc = AISLE_ENOMEM;
    if (copy && words) {
        for (char *save, *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
            words[n++] = w;
        rc = exp_spec_parse(words, n, out, err, errlen);
    } else {
        status_fmt(err, errlen, "out of memory");
    }
    free(words);
    free(copy);
    return rc;
}
