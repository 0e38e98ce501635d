/* expset: validation, compilation and assignment of experiment definitions
 * (see expset.h). */
#include "services/experiment/expset.h"

#include <assert.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/base/strmap.h"

struct exp_variant {
    const char *name;
    uint32_t lo, hi; /* its share of the experiment's split buckets */
    param_value *over;
    size_t n_over;
};

typedef struct exp_exp {
    const Aisle__V1__Experiment *def;
    size_t layer;
    exp_variant *v;
    size_t nv;
    strmap allow; /* user id -> variant index */
} exp_exp;

typedef struct exp_layer {
    const char *name;
    char *salt; /* "layer:NAME" */
} exp_layer;

struct exp_set {
    atomic_int refs;
    Aisle__V1__ExperimentSet *def; /* owned, unpacked: every string below points into it */
    exp_exp *exps;
    size_t n_exps;
    exp_layer layers[EXP_MAX_LAYERS];
    size_t n_layers;
    param_value *toggles;
    size_t n_toggles;
};

/* The fixed SipHash key: assignments depend on it, so it never changes. */
static const uint8_t exp_key[16] = "aisle-exp-v1-key";

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                               \
    do {                                                                                       \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                              \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                 \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                 \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                              \
    } while (0)

static uint64_t exp_le64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

/* SipHash over a message given in pieces, so a salt and a user id are
 * hashed as one message without being copied together. */
typedef struct exp_sip {
    uint64_t v0, v1, v2, v3;
    uint8_t tail[8];
    size_t len; /* bytes so far */
} exp_sip;

static void exp_sip_block(exp_sip *s, uint64_t m) {
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2, v3 = s->v3;
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
    s->v0 = v0, s->v1 = v1, s->v2 = v2, s->v3 = v3;
}

static void exp_sip_init(exp_sip *s, const uint8_t k[16]) {
    uint64_t k0 = exp_le64(k), k1 = exp_le64(k + 8);
    *s = (exp_sip){0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
                   0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1, {0}, 0};
}

static void exp_sip_update(exp_sip *s, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        s->tail[s->len++ & 7] = p[i];
        if ((s->len & 7) == 0) exp_sip_block(s, exp_le64(s->tail));
    }
}

static uint64_t exp_sip_final(exp_sip *s) {
    uint64_t b = (uint64_t)s->len << 56;
    for (size_t i = 0; i < (s->len & 7); i++) b |= (uint64_t)s->tail[i] << (8 * i);
    exp_sip_block(s, b);
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ 0xff, v3 = s->v3;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t exp_siphash(const uint8_t k[16], const void *data, size_t len) {
    exp_sip s;
    exp_sip_init(&s, k);
    exp_sip_update(&s, data, len);
    return exp_sip_final(&s);
}

uint32_t exp_bucket(const char *salt, const char *user_id) {
    /* salt NUL user: the NUL keeps ("ab","c") and ("a","bc") apart. */
    exp_sip s;
    exp_sip_init(&s, exp_key);
    exp_sip_update(&s, salt, strlen(salt) + 1);
    exp_sip_update(&s, user_id, strlen(user_id));
    return (uint32_t)(exp_sip_final(&s) % EXP_BUCKETS);
}

static void exp_variants_free(exp_exp *e) {
    for (size_t i = 0; i < e->nv; i++) {
        for (size_t j = 0; j < e->v[i].n_over; j++) param_value_free(&e->v[i].over[j]);
        free(e->v[i].over);
    }
    free(e->v);
    strmap_free(&e->allow);
}

static void exp_set_free(exp_set *s) {
    for (size_t i = 0; i < s->n_exps; i++) exp_variants_free(&s->exps[i]);
    free(s->exps);
    for (size_t i = 0; i < s->n_layers; i++) free(s->layers[i].salt);
    for (size_t i = 0; i < s->n_toggles; i++) param_value_free(&s->toggles[i]);
    free(s->toggles);
    if (s->def) aisle__v1__experiment_set__free_unpacked(s->def, NULL);
    free(s);
}

exp_set *exp_set_ref(exp_set *s) {
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void exp_set_release(exp_set *s) {
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) exp_set_free(s);
}

uint64_t exp_set_version(const exp_set *s) { return s->def->version; }
const Aisle__V1__ExperimentSet *exp_set_def(const exp_set *s) { return s->def; }

uint8_t *exp_set_encode(const exp_set *s, size_t *len) {
    *len = aisle__v1__experiment_set__get_packed_size(s->def);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out) aisle__v1__experiment_set__pack(s->def, out);
    return out;
}

static int exp_ident(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s)) return 0;
    return 1;
}

static const char *exp_layer_name(const Aisle__V1__Experiment *e) {
    return e->layer[0] ? e->layer : "default";
}

/* The index of layer name in s, added when new. */
static int exp_layer_index(exp_set *s, const char *name, size_t *out, char *err, size_t errlen) {
    for (size_t i = 0; i < s->n_layers; i++)
        if (strcmp(s->layers[i].name, name) == 0) return *out = i, AISLE_OK;
    if (s->n_layers == EXP_MAX_LAYERS)
        return status_fail(AISLE_EINVAL, err, errlen, "more than %d layers", EXP_MAX_LAYERS);
    size_t n = strlen(name) + 7;
    char *salt = malloc(n);
    if (!salt) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    snprintf(salt, n, "layer:%s", name);
    s->layers[s->n_layers] = (exp_layer){name, salt};
    *out = s->n_layers++;
    return AISLE_OK;
}

/* Parses overrides into *vals, refusing a parameter given twice. */
static int exp_overrides(const char *what, Aisle__V1__ParamOverride **ov, size_t n,
                         param_value **vals, char *err, size_t errlen) {
    char why[256];
    *vals = calloc(n ? n : 1, sizeof(**vals));
    if (!*vals) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(ov[i]->param, ov[j]->param) == 0)
                return status_fail(AISLE_EINVAL, err, errlen, "%s: parameter '%s' given twice",
                                   what, ov[i]->param);
        int rc = param_parse(ov[i]->param, ov[i]->value, &(*vals)[i], why, sizeof(why));
        if (rc != AISLE_OK) return status_fail(rc, err, errlen, "%s: %s", what, why);
    }
    return AISLE_OK;
}

static int exp_compile_variants(exp_exp *x, char *err, size_t errlen) {
    const Aisle__V1__Experiment *e = x->def;
    if (e->n_variants == 0)
        return status_fail(AISLE_EINVAL, err, errlen, "experiment '%s' has no variants", e->name);
    x->v = calloc(e->n_variants, sizeof(*x->v));
    if (!x->v) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    x->nv = e->n_variants;
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < e->n_variants; i++)
        total += e->variants[i]->weight ? e->variants[i]->weight : 1;
    for (size_t i = 0; i < e->n_variants; i++) {
        const Aisle__V1__Variant *v = e->variants[i];
        if (!exp_ident(v->name))
            return status_fail(AISLE_EINVAL, err, errlen,
                               "experiment '%s': variant name '%s' is not [A-Za-z0-9_.-]+",
                               e->name, v->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(v->name, e->variants[j]->name) == 0)
                return status_fail(AISLE_EINVAL, err, errlen,
                                   "experiment '%s': variant '%s' given twice", e->name, v->name);
        char what[300];
        snprintf(what, sizeof(what), "experiment '%s' variant '%s'", e->name, v->name);
        x->v[i].name = v->name;
        x->v[i].lo = (uint32_t)(seen * EXP_BUCKETS / total);
        seen += v->weight ? v->weight : 1;
        x->v[i].hi = (uint32_t)(seen * EXP_BUCKETS / total);
        x->v[i].n_over = v->n_overrides;
        int rc = exp_overrides(what, v->overrides, v->n_overrides, &x->v[i].over, err, errlen);
        if (rc != AISLE_OK) return rc;
    }
    return AISLE_OK;
}

static int exp_compile_allowlist(exp_exp *x, char *err, size_t errlen) {
    const Aisle__V1__Experiment *e = x->def;
    for (size_t i = 0; i < e->n_allowlist; i++) {
        const Aisle__V1__AllowEntry *a = e->allowlist[i];
        size_t vi = 0;
        while (vi < x->nv && strcmp(x->v[vi].name, a->variant)) vi++;
        if (vi == x->nv)
            return status_fail(AISLE_EINVAL, err, errlen,
                               "experiment '%s': allowlist puts '%s' in unknown variant '%s'",
                               e->name, a->user_id, a->variant);
        if (!a->user_id[0])
            return status_fail(AISLE_EINVAL, err, errlen,
                               "experiment '%s': allowlist entry without a user id", e->name);
        if (strmap_put(&x->allow, a->user_id, strlen(a->user_id), vi) != AISLE_OK)
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    return AISLE_OK;
}

static int exp_compile_one(exp_set *s, size_t i, char *err, size_t errlen) {
    exp_exp *x = &s->exps[i];
    const Aisle__V1__Experiment *e = x->def;
    if (!exp_ident(e->name))
        return status_fail(AISLE_EINVAL, err, errlen,
                           "experiment name '%s' is not [A-Za-z0-9_.-]+ (1-128 bytes)", e->name);
    for (size_t j = 0; j < i; j++)
        if (strcmp(e->name, s->exps[j].def->name) == 0)
            return status_fail(AISLE_EINVAL, err, errlen, "experiment '%s' given twice", e->name);
    if (!exp_ident(exp_layer_name(e)))
        return status_fail(AISLE_EINVAL, err, errlen, "experiment '%s': bad layer name '%s'",
                           e->name, e->layer);
    if (!e->salt[0])
        return status_fail(AISLE_EINVAL, err, errlen, "experiment '%s' has no salt", e->name);
    if (e->share_bp == 0 || e->share_bp > EXP_BUCKETS ||
        e->offset_bp + (uint64_t)e->share_bp > EXP_BUCKETS)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "experiment '%s': share %.2f %% at offset %.2f %% does not fit in "
                           "(0, 100 %%]", e->name, e->share_bp / 100.0, e->offset_bp / 100.0);
    int rc = exp_layer_index(s, exp_layer_name(e), &x->layer, err, errlen);
    if (rc == AISLE_OK) rc = exp_compile_variants(x, err, errlen);
    if (rc == AISLE_OK) rc = exp_compile_allowlist(x, err, errlen);
    return rc;
}

/* Within a layer: shares add up to at most 100 %, ranges do not overlap and
 * nobody is allowlisted twice. Across layers: a parameter belongs to one
 * layer, or the layers would not be orthogonal. */
static int exp_check_layers(const exp_set *s, char *err, size_t errlen) {
    for (size_t l = 0; l < s->n_layers; l++) {
        uint32_t sum = 0;
        for (size_t i = 0; i < s->n_exps; i++)
            if (s->exps[i].layer == l) sum += s->exps[i].def->share_bp;
        if (sum > EXP_BUCKETS)
            return status_fail(AISLE_EINVAL, err, errlen,
                               "layer '%s': shares add up to %.2f %%, over 100 %%",
                               s->layers[l].name, sum / 100.0);
    }
    for (size_t i = 0; i < s->n_exps; i++) {
        const exp_exp *a = &s->exps[i];
        for (size_t j = i + 1; j < s->n_exps; j++) {
            const exp_exp *b = &s->exps[j];
            if (a->layer == b->layer && a->def->offset_bp < b->def->offset_bp + b->def->share_bp &&
                b->def->offset_bp < a->def->offset_bp + a->def->share_bp)
                return status_fail(AISLE_EINVAL, err, errlen,
                                   "layer '%s': experiments '%s' and '%s' overlap",
                                   s->layers[a->layer].name, a->def->name, b->def->name);
            for (size_t k = 0; a->layer == b->layer && k < a->def->n_allowlist; k++) {
                const char *u = a->def->allowlist[k]->user_id;
                size_t dummy;
                if (strmap_get(&b->allow, u, strlen(u), &dummy) == AISLE_OK)
                    return status_fail(AISLE_EINVAL, err, errlen,
                                       "layer '%s': user '%s' is allowlisted in both '%s' and '%s'",
                                       s->layers[a->layer].name, u, a->def->name, b->def->name);
            }
            for (size_t va = 0; a->layer != b->layer && va < a->nv; va++)
                for (size_t oa = 0; oa < a->v[va].n_over; oa++)
                    for (size_t vb = 0; vb < b->nv; vb++)
                        for (size_t ob = 0; ob < b->v[vb].n_over; ob++)
                            if (strcmp(a->v[va].over[oa].name, b->v[vb].over[ob].name) == 0)
                                return status_fail(
                                    AISLE_EINVAL, err, errlen,
                                    "parameter '%s' is overridden in layers '%s' and '%s' "
                                    "(a parameter belongs to one layer)",
                                    b->v[vb].over[ob].name,
                                    s->layers[a->layer].name, s->layers[b->layer].name);
        }
    }
    return AISLE_OK;
}

static int exp_compile(exp_set *s, char *err, size_t errlen) {
    const Aisle__V1__ExperimentSet *d = s->def;
    if (d->n_experiments > EXP_MAX_EXPERIMENTS)
        return status_fail(AISLE_EINVAL, err, errlen, "more than %d experiments",
                           EXP_MAX_EXPERIMENTS);
    if (d->holdout && (d->holdout->share_bp > EXP_BUCKETS ||
                       (d->holdout->share_bp && !d->holdout->salt[0])))
        return status_fail(AISLE_EINVAL, err, errlen,
                           "holdout: share %.2f %% needs a salt and at most 100 %%",
                           d->holdout->share_bp / 100.0);
    s->n_toggles = d->n_toggles;
    int rc = exp_overrides("toggles", d->toggles, d->n_toggles, &s->toggles, err, errlen);
    if (rc != AISLE_OK) return rc;
    s->exps = calloc(d->n_experiments ? d->n_experiments : 1, sizeof(*s->exps));
    if (!s->exps) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < d->n_experiments; i++) {
        s->exps[i].def = d->experiments[i];
        s->n_exps = i + 1;
        rc = exp_compile_one(s, i, err, errlen);
        if (rc != AISLE_OK) return rc;
    }
    return exp_check_layers(s, err, errlen);
}

int exp_set_decode(const uint8_t *data, size_t len, exp_set **out, char *err, size_t errlen) {
    *out = NULL;
    exp_set *s = calloc(1, sizeof(*s));
    if (!s) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    atomic_init(&s->refs, 1);
    s->def = aisle__v1__experiment_set__unpack(NULL, len, data);
    int rc = s->def ? exp_compile(s, err, errlen)
                    : status_fail(AISLE_EFORMAT, err, errlen, "experiment set does not parse");
    if (rc != AISLE_OK) goto fail;
    *out = s;
    return AISLE_OK;
fail:
    exp_set_free(s);
    return rc;
}

int exp_set_build(const Aisle__V1__ExperimentSet *def, exp_set **out, char *err, size_t errlen) {
    size_t len = aisle__v1__experiment_set__get_packed_size(def);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    aisle__v1__experiment_set__pack(def, buf);
    int rc = exp_set_decode(buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int exp_set_empty(exp_set **out) { return exp_set_decode(NULL, 0, out, NULL, 0); }

/* A shallow copy of s's definition with version + 1, for an edit to change
 * and exp_set_build to copy deeply. Its arrays are the caller's to free. */
static Aisle__V1__ExperimentSet exp_next(const exp_set *s) {
    Aisle__V1__ExperimentSet d = *s->def;
    d.version = s->def->version + 1;
    return d;
}

/* The end of the last experiment of layer (other than skip) overlapping
 * [off, off + share), or off when that range is free. */
static uint32_t exp_range_taken(const Aisle__V1__ExperimentSet *d, const char *layer,
                                uint32_t off, uint32_t share, const char *skip) {
    uint32_t end = off;
    for (size_t i = 0; i < d->n_experiments; i++) {
        const Aisle__V1__Experiment *e = d->experiments[i];
        if (strcmp(e->name, skip) == 0 || strcmp(exp_layer_name(e), layer)) continue;
        if (e->offset_bp < off + share && off < e->offset_bp + e->share_bp &&
            e->offset_bp + e->share_bp > end)
            end = e->offset_bp + e->share_bp;
    }
    return end;
}

/* Where the experiment called name, of share buckets in layer, goes: at
 * want when that range is free (want < 0: anywhere), else the first free
 * range; want (or 0) when nothing fits, for validation to refuse. */
static uint32_t exp_place(const Aisle__V1__ExperimentSet *d, const char *layer, uint32_t share,
                          const char *name, long want) {
    if (want >= 0 && exp_range_taken(d, layer, (uint32_t)want, share, name) == (uint32_t)want)
        return (uint32_t)want;
    for (uint32_t off = 0; off + share <= EXP_BUCKETS;) {
        uint32_t end = exp_range_taken(d, layer, off, share, name);
        if (end == off) return off;
        off = end;
    }
    return want >= 0 ? (uint32_t)want : 0;
}

int exp_set_put_experiment(const exp_set *s, const Aisle__V1__Experiment *e, exp_set **out,
                           char *err, size_t errlen) {
    Aisle__V1__ExperimentSet d = exp_next(s);
    Aisle__V1__Experiment copy = *e;
    const Aisle__V1__Experiment *old = NULL;
    size_t n = s->def->n_experiments, at = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->def->experiments[i]->name, e->name) == 0) old = s->def->experiments[at = i];
    if (!copy.salt[0]) copy.salt = copy.name;
    const char *layer = exp_layer_name(&copy);
    long want = old && strcmp(exp_layer_name(old), layer) == 0 ? (long)old->offset_bp : -1;
    copy.offset_bp = exp_place(s->def, layer, copy.share_bp, copy.name, want);
    Aisle__V1__Experiment **list = calloc(n + 1, sizeof(*list));
    if (!list) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (n) memcpy(list, s->def->experiments, n * sizeof(*list));
    list[at] = &copy;
    d.experiments = list;
    d.n_experiments = n + (at == n);
    int rc = exp_set_build(&d, out, err, errlen);
    free(list);
    return rc;
}

int exp_set_delete_experiment(const exp_set *s, const char *name, exp_set **out, char *err,
                              size_t errlen) {
    Aisle__V1__ExperimentSet d = exp_next(s);
    size_t n = s->def->n_experiments, k = 0;
    Aisle__V1__Experiment **list = calloc(n ? n : 1, sizeof(*list));
    if (!list) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->def->experiments[i]->name, name)) list[k++] = s->def->experiments[i];
    d.experiments = list;
    d.n_experiments = k;
    int rc = k == n ? status_fail(AISLE_ENOTFOUND, err, errlen, "no experiment '%s'", name)
                    : exp_set_build(&d, out, err, errlen);
    free(list);
    return rc;
}

int exp_set_put_toggle(const exp_set *s, const char *param, const char *value, exp_set **out,
                       char *err, size_t errlen) {
    Aisle__V1__ExperimentSet d = exp_next(s);
    size_t n = s->def->n_toggles, k = 0;
    Aisle__V1__ParamOverride **list = calloc(n + 1, sizeof(*list)), mine;
    if (!list) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->def->toggles[i]->param, param)) list[k++] = s->def->toggles[i];
    aisle__v1__param_override__init(&mine);
    mine.param = (char *)param;
    mine.value = (char *)value;
    if (value) list[k++] = &mine;
    d.toggles = list;
    d.n_toggles = k;
    int rc = exp_set_build(&d, out, err, errlen);
    free(list);
    return rc;
}

int exp_set_put_holdout(const exp_set *s, const char *salt, uint32_t share_bp, exp_set **out,
                        char *err, size_t errlen) {
    Aisle__V1__ExperimentSet d = exp_next(s);
    Aisle__V1__Holdout h;
    aisle__v1__holdout__init(&h);
    h.salt = (char *)salt;
    h.share_bp = share_bp;
    d.holdout = &h;
    return exp_set_build(&d, out, err, errlen);
}

const param_value *exp_variant_overrides(const exp_variant *v, size_t *n) {
    *n = v->n_over;
    return v->over;
}

const param_value *exp_set_toggles(const exp_set *s, size_t *n) {
    *n = s->n_toggles;
    return s->toggles;
}

void exp_assign(const exp_set *s, const char *user_id, exp_assignment *out) {
    memset(out, 0, sizeof(*out));
    out->set = s;
    const Aisle__V1__Holdout *h = s->def->holdout;
    out->holdout = h && h->share_bp && exp_bucket(h->salt, user_id) < h->share_bp;
    size_t ulen = strlen(user_id);
    for (size_t l = 0; l < s->n_layers; l++) {
        uint32_t b = exp_bucket(s->layers[l].salt, user_id);
        const exp_exp *hit = NULL;
        size_t vi = 0;
        int forced = 0;
        for (size_t i = 0; i < s->n_exps && !forced; i++) {
            const exp_exp *x = &s->exps[i];
            if (x->layer != l) continue;
            if (strmap_get(&x->allow, user_id, ulen, &vi) == AISLE_OK) {
                hit = x, forced = 1;
            } else if (!out->holdout && !hit && b >= x->def->offset_bp &&
                       b < x->def->offset_bp + x->def->share_bp) {
                hit = x;
            }
        }
        if (!hit) continue;
        if (!forced) {
            uint32_t vb = exp_bucket(hit->def->salt, user_id);
            for (vi = 0; vi + 1 < hit->nv && vb >= hit->v[vi].hi; vi++) {}
        }
        assert(vi < hit->nv && out->n < EXP_MAX_LAYERS);
        out->picks[out->n++] = (exp_pick){s->layers[l].name, hit->def->name, hit->v[vi].name,
                                          &hit->v[vi], forced};
    }
}

static const param_value *exp_find(const param_value *v, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

const param_value *exp_assignment_param(const exp_assignment *a, const char *name) {
    for (size_t i = 0; i < a->n; i++) {
        const param_value *v = exp_find(a->picks[i].v->over, a->picks[i].v->n_over, name);
        if (v) return v;
    }
    return exp_find(a->set->toggles, a->set->n_toggles, name);
}

size_t exp_assignment_params(const exp_assignment *a, const param_value **out, size_t max) {
    size_t count = 0;
    for (size_t i = 0; i <= a->n; i++) {
        size_t n;
        const param_value *v = i < a->n ? exp_variant_overrides(a->picks[i].v, &n)
                                        : exp_set_toggles(a->set, &n);
        for (size_t k = 0; k < n; k++) {
            if (exp_assignment_param(a, v[k].name) != &v[k]) continue; /* overridden */
            if (count < max) out[count] = &v[k];
            count++;
        }
    }
    return count;
}

double exp_assignment_num(const exp_assignment *a, const char *name, double dflt) {
    const param_value *v = exp_assignment_param(a, name);
    return v && v->def->type != PARAM_PATH ? v->num : dflt;
}

const char *exp_assignment_text(const exp_assignment *a, const char *name, const char *dflt) {
    const param_value *v = exp_assignment_param(a, name);
    return v ? v->text : dflt;
}
