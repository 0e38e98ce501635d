/* admin: the Admin service's handlers over the store and the watcher (see
 * admin.h). */
#include "services/experiment/admin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/experiment/store.h"

struct exp_admin {
    pthread_mutex_t lock; /* guards store */
    exp_store *store;
    exp_watch *watch;
};

/* A handler: decodes its request from req and leaves the stored or
 * current set in *s, or fills *out itself (GetAssignment). */
typedef int (*exp_admin_fn)(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                            ProtobufCBinaryData *out, char *err, size_t errlen);

static int exp_admin_bad(char *err, size_t errlen, const char *what) {
    return status_fail(AISLE_EINVAL, err, errlen, "%s does not parse", what);
}

static int exp_admin_set(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                         ProtobufCBinaryData *out, char *err, size_t errlen) {
    (void)out;
    Aisle__V1__SetExperimentRequest *r = aisle__v1__set_experiment_request__unpack(NULL, len, req);
    if (!r) return exp_admin_bad(err, errlen, "SetExperimentRequest");
    int rc = r->experiment ? exp_store_put_experiment(a->store, r->experiment, s, err, errlen)
                           : status_fail(AISLE_EINVAL, err, errlen, "no experiment given");
    aisle__v1__set_experiment_request__free_unpacked(r, NULL);
    return rc;
}

static int exp_admin_list(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                          ProtobufCBinaryData *out, char *err, size_t errlen) {
    (void)out;
    Aisle__V1__ListExperimentsRequest *r =
        aisle__v1__list_experiments_request__unpack(NULL, len, req);
    if (!r) return exp_admin_bad(err, errlen, "ListExperimentsRequest");
    aisle__v1__list_experiments_request__free_unpacked(r, NULL);
    return exp_store_load(a->store, s, NULL, err, errlen);
}

static int exp_admin_delete(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                            ProtobufCBinaryData *out, char *err, size_t errlen) {
    (void)out;
    Aisle__V1__DeleteExperimentRequest *r =
        aisle__v1__delete_experiment_request__unpack(NULL, len, req);
    if (!r) return exp_admin_bad(err, errlen, "DeleteExperimentRequest");
    int rc = exp_store_delete_experiment(a->store, r->name, s, err, errlen);
    aisle__v1__delete_experiment_request__free_unpacked(r, NULL);
    return rc;
}

static int exp_admin_toggle(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                            ProtobufCBinaryData *out, char *err, size_t errlen) {
    (void)out;
    Aisle__V1__SetToggleRequest *r = aisle__v1__set_toggle_request__unpack(NULL, len, req);
    if (!r) return exp_admin_bad(err, errlen, "SetToggleRequest");
    int rc = exp_store_put_toggle(a->store, r->param, r->clear ? NULL : r->value, s, err, errlen);
    aisle__v1__set_toggle_request__free_unpacked(r, NULL);
    return rc;
}

/* The Assignment of user under set (strings borrowed from set). */
static int exp_admin_pack_assignment(const exp_set *set, const char *user,
                                     ProtobufCBinaryData *out) {
    exp_assignment a;
    exp_assign(set, user, &a);
    Aisle__V1__Assignment m;
    Aisle__V1__VariantAssignment va[EXP_MAX_LAYERS], *vp[EXP_MAX_LAYERS];
    aisle__v1__assignment__init(&m);
    m.user_id = (char *)user;
    m.experiments_version = exp_set_version(set);
    m.holdout = a.holdout;
    for (size_t i = 0; i < a.n; i++) {
        aisle__v1__variant_assignment__init(&va[i]);
        va[i].layer = (char *)a.picks[i].layer;
        va[i].experiment = (char *)a.picks[i].experiment;
        va[i].variant = (char *)a.picks[i].variant;
        vp[i] = &va[i];
    }
    m.variants = vp;
    m.n_variants = a.n;
    size_t n = exp_assignment_params(&a, NULL, 0);
    const param_value **v = calloc(n ? n : 1, sizeof(*v));
    Aisle__V1__ParamOverride *po = calloc(n ? n : 1, sizeof(*po));
    Aisle__V1__ParamOverride **pp = calloc(n ? n : 1, sizeof(*pp));
    int rc = v && po && pp ? AISLE_OK : AISLE_ENOMEM;
    if (rc == AISLE_OK) exp_assignment_params(&a, v, n);
    for (size_t k = 0; rc == AISLE_OK && k < n; k++) {
        aisle__v1__param_override__init(&po[k]);
        po[k].param = v[k]->name;
        po[k].value = v[k]->text;
        pp[k] = &po[k];
    }
    m.n_params = rc == AISLE_OK ? n : 0;
    m.params = pp;
    out->len = rc == AISLE_OK ? aisle__v1__assignment__get_packed_size(&m) : 0;
    out->data = rc == AISLE_OK ? malloc(out->len ? out->len : 1) : NULL;
    if (rc == AISLE_OK && !out->data) rc = AISLE_ENOMEM;
    if (rc == AISLE_OK) aisle__v1__assignment__pack(&m, out->data);
    free(v);
    free(po);
    free(pp);
    return rc;
}

static int exp_admin_assign(exp_admin *a, const uint8_t *req, size_t len, exp_set **s,
                            ProtobufCBinaryData *out, char *err, size_t errlen) {
    (void)s;
    Aisle__V1__GetAssignmentRequest *r = aisle__v1__get_assignment_request__unpack(NULL, len, req);
    if (!r) return exp_admin_bad(err, errlen, "GetAssignmentRequest");
    exp_set *set = NULL;
    int rc = !r->user_id[0] ? status_fail(AISLE_EINVAL, err, errlen, "user_id is empty")
             : a->watch     ? (set = exp_watch_acquire(a->watch), AISLE_OK)
                            : exp_store_load(a->store, &set, NULL, err, errlen);
    if (rc == AISLE_OK && exp_admin_pack_assignment(set, r->user_id, out) != AISLE_OK)
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    exp_set_release(set);
    aisle__v1__get_assignment_request__free_unpacked(r, NULL);
    return rc;
}

static const struct {
    const char *name;
    exp_admin_fn fn;
} exp_admin_methods[] = {
    {"SetExperiment", exp_admin_set},       {"ListExperiments", exp_admin_list},
    {"DeleteExperiment", exp_admin_delete}, {"SetToggle", exp_admin_toggle},
    {"GetAssignment", exp_admin_assign},
};
#define EXP_ADMIN_METHODS (sizeof(exp_admin_methods) / sizeof(exp_admin_methods[0]))

static int exp_admin_find(const char *method) {
    for (size_t i = 0; i < EXP_ADMIN_METHODS; i++)
        if (strcmp(exp_admin_methods[i].name, method) == 0) return (int)i;
    return -1;
}

int exp_admin_has(const char *method) { return exp_admin_find(method) >= 0; }

int exp_admin_call(exp_admin *a, const char *method, const uint8_t *req, size_t len,
                   uint8_t **resp, size_t *resp_len, char *err, size_t errlen) {
    int i = exp_admin_find(method);
    if (i < 0) return status_fail(AISLE_ENOTFOUND, err, errlen, "no Admin method '%s'", method);
    exp_set *s = NULL;
    ProtobufCBinaryData out = {0, NULL};
    pthread_mutex_lock(&a->lock);
    int rc = exp_admin_methods[i].fn(a, req, len, &s, &out, err, errlen);
    pthread_mutex_unlock(&a->lock);
    if (rc == AISLE_OK && s) {
        out.data = exp_set_encode(s, &out.len);
        if (!out.data) rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    exp_set_release(s);
    if (rc != AISLE_OK) return rc;
    *resp = out.data;
    *resp_len = out.len;
    return AISLE_OK;
}

int exp_admin_new(const char *redis_addr, exp_watch *w, exp_admin **out, char *err,
                  size_t errlen) {
    exp_admin *a = calloc(1, sizeof(*a));
    if (!a) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    int rc = exp_store_open(redis_addr, &a->store, err, errlen);
    if (rc != AISLE_OK) {
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->watch = w;
    *out = a;
    return AISLE_OK;
}

void exp_admin_free(exp_admin *a) {
    if (!a) return;
    exp_store_close(a->store);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
