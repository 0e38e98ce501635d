/* console: the admin console at /console on serve's HTTP address: one
 * static page (console.html, compiled into the binary) and the JSON it
 * calls besides services/app/admin.h's:
 *
 *   GET /console                       the page
 *   GET /api/user?user=U               {"profile": Profile, "recommendations":
 *                                       RecommendResponse}, as pbjson writes them
 *   GET /api/shop?user=U&q=Q&mode=M    the Shop answer as it is written: one
 *                                       ShopChunk JSON object per line, then
 *                                       {"error":...} if the call failed
 *
 * The answers come from the server's own Recommender service over gRPC
 * (services/app/rpc.h), so the console sees exactly what an app sees and
 * its calls show in the metrics like any other. */
#ifndef AISLE_CONSOLE_H
#define AISLE_CONSOLE_H

#include "services/app/rpc.h"
#include "services/obs/http.h"

/* Adds the routes to cfg; rc (borrowed, must outlive the server) reaches
 * the server's gRPC address. Returns AISLE_OK or AISLE_EFULL. */
int console_routes(obs_http_config *cfg, rpc_client *rc);

#endif
