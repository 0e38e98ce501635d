/* variants: A/B experiments on the serving path.
 *
 * Each Recommend, SimilarItems and Shop call takes the replica's current
 * experiment set (services/experiment/watch.h), assigns the user, turns the
 * variant's parameters into the pipeline's overrides, names the
 * assignments in the response, and leaves the served page on the exposure
 * log (asynchronous and bounded: a full queue drops and counts, a call never
 * waits). The Admin service's methods are routed here to the store. */
#ifndef AISLE_VARIANTS_H
#define AISLE_VARIANTS_H

#include <stdint.h>

#include "aisle/v1/aisle.pb-c.h"
#include "ranker/ltr/shelf.h"
#include "services/experiment/admin.h"
#include "services/experiment/expset.h"
#include "services/experiment/exposure.h"
#include "services/recommend/recommend.h"
#include "services/serve/server.h"

/* One call's view of the experiments. */
typedef struct variants_call {
    exp_set *set;         /* a reference, released by variants_end; NULL: none */
    exp_assignment a;
    recommend_overrides ov;
    Aisle__V1__VariantAssignment msgs[EXP_MAX_LAYERS];
    Aisle__V1__VariantAssignment *ptrs[EXP_MAX_LAYERS];
} variants_call;

/* Assigns user_id under w's current set (w NULL: no experiments) and
 * fills v->ov from the parameters the assignment sets. The learned ranker
 * is the model at the variant's ranker.model_file, else at model_file (the
 * replica's default; NULL: none), taken from models (NULL: never a model);
 * "none" names no model: the hand weights. */
void variants_begin(exp_watch *w, ltr_shelf *models, const char *model_file,
                    const char *user_id, variants_call *v);
void variants_end(variants_call *v);
/* The Shop mode the variant sets (an AISLE__V1__SHOP_MODE__*), else
 * requested; and whether it turns the language model off (1), on (0) or
 * leaves it as serve has it (0). */
int variants_shop_mode(const variants_call *v, int requested);
int variants_shop_model_off(const variants_call *v);

/* v's assignments as messages, *n of them (valid until variants_end). */
Aisle__V1__VariantAssignment **variants_assignments(variants_call *v, size_t *n);
/* Points out's assignments at v's (valid until variants_end). */
void variants_respond(variants_call *v, Aisle__V1__RecommendResponse *out);

/* One served answer's products, as the exposure log takes them (all
 * borrowed). */
typedef struct variants_page {
    const char *request_id, *user_id;
    const char *surface; /* "recommend", "similar_items" or "shop" */
    const char *mode;    /* Shop's "fast" or "contemplating"; "" otherwise */
    const rank_hit *const *hits; /* in the order served */
    size_t n;
    int64_t now_ms;
} variants_page;

/* Logs page under v's assignments; log NULL, or the toggle exposures.log
 * off: nothing. */
void variants_log_page(exposure_log *log, const variants_call *v, const variants_page *page);

/* Appends the aisle.v1.Admin methods (admin role) on a to cfg; a borrowed. */
void variants_admin_methods(server_config *cfg, exp_admin *a);

#endif
