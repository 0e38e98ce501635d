/* variants: assignment → overrides, responses and exposure records. */
#include "services/serve/variants.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/serve/auth.h"

/* Assigns user_id under v->set and takes the pipeline's parameters. */
static void variants_overrides(variants_call *v, const char *user_id) {
    char name[64];
    exp_assign(v->set, user_id ? user_id : "", &v->a);
    v->ov.mmr_lambda = (float)exp_assignment_num(&v->a, "rank.mmr_lambda", -1);
    v->ov.cap_creator = (int)exp_assignment_num(&v->a, "rank.creator_cap", -1);
    v->ov.cap_category = (int)exp_assignment_num(&v->a, "rank.category_cap", -1);
    v->ov.scorer_file = exp_assignment_text(&v->a, "ranker.weights_file", NULL);
    for (int i = 0; i < RANK_SRC_COUNT; i++) {
        snprintf(name, sizeof(name), "sources.%s.budget", rank_source_name(i));
        v->ov.budget[i] = (int)exp_assignment_num(&v->a, name, -1);
    }
}

/* The model the call scores with: the variant's file, else the default. */
static void variants_model(ltr_shelf *models, const char *model_file, variants_call *v) {
    const char *path = v->set ? exp_assignment_text(&v->a, "ranker.model_file", model_file)
                              : model_file;
    if (models && path && *path && strcmp(path, "none") != 0)
        v->ov.model = ltr_shelf_get(models, path, clock_mono_ms());
}

void variants_begin(exp_watch *w, ltr_shelf *models, const char *model_file,
                    const char *user_id, variants_call *v) {
    memset(v, 0, sizeof(*v));
    recommend_overrides_none(&v->ov);
    if (w && (v->set = exp_watch_acquire(w))) variants_overrides(v, user_id);
    variants_model(models, model_file, v);
}

int variants_shop_mode(const variants_call *v, int requested) {
    /* shop.mode's choices, in order: fast|contemplating. */
    double m = v->set ? exp_assignment_num(&v->a, "shop.mode", -1) : -1;
    if (m < 0) return requested;
    return m == 1 ? AISLE__V1__SHOP_MODE__SHOP_MODE_CONTEMPLATING
                  : AISLE__V1__SHOP_MODE__SHOP_MODE_FAST;
}

int variants_shop_model_off(const variants_call *v) {
    return v->set && exp_assignment_num(&v->a, "shop.model", 1) == 0; /* off|on */
}

void variants_end(variants_call *v) {
    if (v->set) exp_set_release(v->set);
    ltr_model_release(v->ov.model);
    v->set = NULL;
    v->ov.model = NULL;
}

Aisle__V1__VariantAssignment **variants_assignments(variants_call *v, size_t *n) {
    for (size_t i = 0; v->set && i < v->a.n; i++) {
        aisle__v1__variant_assignment__init(&v->msgs[i]);
        /* protobuf-c's fields are not const; packing only reads them. */
        v->msgs[i].layer = (char *)v->a.picks[i].layer;
        v->msgs[i].experiment = (char *)v->a.picks[i].experiment;
        v->msgs[i].variant = (char *)v->a.picks[i].variant;
        v->ptrs[i] = &v->msgs[i];
    }
    *n = v->set ? v->a.n : 0;
    return v->ptrs;
}

void variants_respond(variants_call *v, Aisle__V1__RecommendResponse *out) {
    out->assignments = variants_assignments(v, &out->n_assignments);
}

void variants_log_page(exposure_log *log, const variants_call *v, const variants_page *page) {
    Aisle__V1__Exposure e = AISLE__V1__EXPOSURE__INIT;
    Aisle__V1__VariantAssignment storage[EXP_MAX_LAYERS], *vptrs[EXP_MAX_LAYERS];
    Aisle__V1__ExposureItem *items, **ptrs;
    if (!log || page->n == 0 || (v->set && exp_assignment_num(&v->a, "exposures.log", 1) == 0))
        return;
    items = calloc(page->n, sizeof(*items));
    ptrs = calloc(page->n, sizeof(*ptrs));
    if (!items || !ptrs) goto out; /* a page not logged, as a full queue would drop it */
    /* protobuf-c's fields are not const; packing only reads them. */
    e.request_id = (char *)page->request_id;
    e.user_id = (char *)page->user_id;
    e.surface = (char *)page->surface;
    e.mode = (char *)page->mode;
    e.ts_ms = page->now_ms;
    if (v->set) exposure_set_variants(&e, &v->a, storage, vptrs);
    for (size_t i = 0; i < page->n; i++) {
        const rank_hit *h = page->hits[i];
        aisle__v1__exposure_item__init(&items[i]);
        items[i].item_id = h->item.item_id;
        items[i].position = (uint32_t)i;
        items[i].source = (char *)(h->n_sources ? h->source_names[0] : "");
        items[i].score = h->score;
        /* What the ranker scored, for training (rank.h's RANK_F_*). */
        items[i].features = (float *)h->features;
        items[i].n_features = RANK_N_FEATURES;
        ptrs[i] = &items[i];
    }
    e.items = ptrs;
    e.n_items = page->n;
    exposure_log_submit(log, &e);
out:
    free(items);
    free(ptrs);
}

/* One Admin method: the store and the method's name. */
typedef struct variants_admin {
    exp_admin *a;
    const char *method;
} variants_admin;

static void variants_admin_call(const server_call_ctx *ctx, const uint8_t *req, size_t len,
                                server_reply *rep) {
    const variants_admin *va = ctx->arg;
    uint8_t *body = NULL;
    size_t n = 0;
    char err[512];
    int rc = exp_admin_call(va->a, va->method, req, len, &body, &n, err, sizeof(err));
    if (rc != AISLE_OK) {
        server_reply_fail(rep, rc, "%s", err);
        return;
    }
    server_reply_bytes(rep, body, n);
    log_info("serve", "admin %s request_id=%s", va->method, ctx->request_id);
}

void variants_admin_methods(server_config *cfg, exp_admin *a) {
    static const char *const names[] = {"SetExperiment", "ListExperiments", "DeleteExperiment",
                                        "SetToggle", "GetAssignment"};
    static variants_admin args[sizeof(names) / sizeof(names[0])];
    static char paths[sizeof(names) / sizeof(names[0])][64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert(exp_admin_has(names[i]) && cfg->n_methods < SERVER_MAX_METHODS);
        args[i] = (variants_admin){a, names[i]};
        snprintf(paths[i], sizeof(paths[i]), "/aisle.v1.Admin/%s", names[i]);
        cfg->methods[cfg->n_methods++] =
            (server_method){paths[i], variants_admin_call, NULL, &args[i], AUTH_ROLE_ADMIN, 0};
    }
}
