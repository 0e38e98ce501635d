/* recommender: Aisle's gRPC methods, as handlers for the transport.
 *
 * aisle.v1.Recommender/{Recommend, SimilarItems, GetProfile, DeleteProfile,
 * Shop} and
 * grpc.health.v1.Health/Check: each decodes its request, calls the use case
 * below it (services/recommend, services/shop, the profile store) and
 * encodes the answer; failures travel as AISLE_* codes. */
#ifndef AISLE_RECOMMENDER_H
#define AISLE_RECOMMENDER_H

#include "ranker/ltr/shelf.h"
#include "services/experiment/exposure.h"
#include "services/experiment/watch.h"
#include "services/serve/server.h"
#include "services/shop/shop.h"

typedef struct recommender_config {
    /* Health reports SERVING once ready(ready_arg) is non-zero (the catalog
     * has caught up); NULL means always ready. */
    int (*ready)(void *arg);
    void *ready_arg;
    shop *shop; /* Recommender/Shop; NULL leaves it unimplemented */
    exp_watch *experiments;  /* assignments for every call; NULL: none */
    exposure_log *exposures; /* where served pages are logged; NULL: nowhere */
    ltr_shelf *models;       /* learned rankers by path; NULL: hand weights only */
    const char *model_file;  /* the model scored with unless a variant names one; NULL: none */
} recommender_config;

/* Appends the methods to cfg->methods. rc is borrowed and must outlive the
 * server. */
void recommender_methods(server_config *cfg, const recommender_config *rc);

#endif
