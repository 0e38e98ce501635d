/* admin: the JSON endpoints on serve's HTTP address that `aisle ctl` and the
 * console read: what the process holds (its index, its catalog) rather than
 * what the Recommender service answers.
 *
 *   GET /api/index                    the index and the catalog feed, one object
 *   GET /api/catalog/item?id=ID       one item's facts (404 when unknown)
 *   GET /api/catalog/search?q=TEXT    up to 20 items whose title, id, brand or
 *                                     category contains TEXT, case-insensitively
 *
 * They live on the HTTP server instead of the gRPC API so that the API's
 * contract (proto/aisle/v1/aisle.proto) stays the app's, not the operator's. */
#ifndef AISLE_ADMIN_H
#define AISLE_ADMIN_H

#include "services/app/runtime.h"
#include "services/obs/http.h"

/* Adds the routes for rt (borrowed; must outlive the server) to cfg.
 * Returns AISLE_OK, or AISLE_EFULL when cfg has no room. */
int admin_routes(obs_http_config *cfg, runtime *rt);

#endif
