/* runtime: catalog + snapshot + feed + shop + server, in order. */
#include "services/app/runtime.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/base/log.h"
#include "services/base/status.h"
#include "services/recommend/recommend.h"
#include "services/serve/auth.h"
#include "services/serve/snapview.h"
#include "services/serve/variants.h"

struct runtime {
    catalog *cat;
    feed *fd;
    shop *sh;
    server *srv;
    tls *tls;              /* NULL for plaintext */
    auth *auth;            /* NULL without a tokens file */
    exp_watch *exp;        /* the experiment set every call is assigned under */
    exposure_log *exposures;
    exp_admin *admin;
    ltr_shelf *models;     /* the learned rankers, the default's and the variants' */
    recommender_config rc; /* the handlers' argument: lives as long as srv */
    /* A directory only this user may enter, holding the gRPC socket the
     * console calls through (so it needs no TLS client of its own); and
     * that socket's target, "unix:DIR/grpc.sock". Empty until made. */
    char local_dir[PATH_MAX];
    char local_target[PATH_MAX + 32];
};

void runtime_config_default(runtime_config *cfg) {
    *cfg = (runtime_config){.server = {.listen = "127.0.0.1:50051", .threads = 4}};
    profile_config_default(&cfg->server.profile);
    catalog_config_default(&cfg->catalog);
    feed_config_default(&cfg->feed);
    shop_config_default(&cfg->shop);
}

/* The catalog, with the newest valid snapshot of cfg->feed.snapshot_dir
 * loaded when there is one (it sets the dimension). */
static int runtime_catalog_new(const runtime_config *cfg, catalog **out, char *err,
                               size_t errlen) {
    catalog_config cc = cfg->catalog;
    snapview sv;
    int have = 0, nprobe = 0, rc;
    char why[512];

    if (cfg->feed.snapshot_dir) {
        if (snapview_open_newest(cfg->feed.snapshot_dir, &sv, why, sizeof(why)) != AISLE_OK) {
            log_warn("serve", "no snapshot loaded (%s); serving catalog embeddings until "
                     "an index reload", why);
        } else if (cfg->dim_set && sv.view.dim != (uint32_t)cc.dim) {
            rc = status_fail(AISLE_EINVAL, err, errlen, "--dim %d but snapshot %s has %u dimensions",
                             cc.dim, sv.view.version, sv.view.dim);
            snapview_close(&sv);
            return rc;
        } else {
            have = 1;
            cc.dim = (int)sv.view.dim;
        }
    }
    if ((rc = catalog_new(&cc, out, err, errlen)) == AISLE_OK && have &&
        (rc = catalog_load_snapshot(*out, &sv.view, err, errlen)) != AISLE_OK) {
        catalog_free(*out);
        *out = NULL;
    }
    if (have && rc == AISLE_OK) {
        nprobe = snapview_apply_nprobe(&sv, *out, cfg->catalog.nprobe);
        log_info("serve", "serving snapshot %s (%u items, %u dimensions, nprobe %d%s)",
                 sv.view.version, sv.view.n_items, sv.view.dim, nprobe,
                 nprobe ? "" : ": the catalog's default");
    }
    if (have) snapview_close(&sv);
    return rc;
}

/* Transport security and access control, as configured. */
static int runtime_security(const runtime_config *cfg, runtime *rt, char *err, size_t errlen) {
    int rc;
    if (!cfg->tls.cert != !cfg->tls.key)
        return status_fail(AISLE_EINVAL, err, errlen, "--tls-cert and --tls-key go together");
    if (cfg->tls.client_ca && !cfg->tls.cert)
        return status_fail(AISLE_EINVAL, err, errlen, "--tls-client-ca needs --tls-cert and --tls-key");
    if (!cfg->tls.cert && !cfg->insecure)
        return status_fail(AISLE_EINVAL, err, errlen,
                           "no TLS certificate: give --tls-cert and --tls-key, or --insecure "
                           "to serve plaintext");
    if (cfg->tls.cert && (rc = tls_open(&cfg->tls, &rt->tls, err, errlen)) != AISLE_OK) return rc;
    if (!cfg->tls.cert)
        log_warn("serve", "serving gRPC WITHOUT TLS (--insecure): anyone on the network can read "
                 "and change what passes");
    if (cfg->tokens_file) {
        if ((rc = auth_load(cfg->tokens_file, &rt->auth, err, errlen)) != AISLE_OK) return rc;
        log_info("serve", "access control: %zu tokens from %s", auth_count(rt->auth),
                 cfg->tokens_file);
    } else {
        log_warn("serve", "no --tokens-file: every caller may call every method");
    }
    return AISLE_OK;
}

/* A/B experiments: the watcher on the store, the exposure log on Kafka and
 * the Admin service. Redis down at start is not fatal: the watcher starts
 * with no experiments and keeps trying. */
static int runtime_experiments(const runtime_config *cfg, runtime *rt, char *err, size_t errlen) {
    int rc;
    if ((rc = exp_watch_start(cfg->server.redis, 0, 0, &rt->exp, err, errlen)) != AISLE_OK ||
        (rc = exposure_log_start(cfg->feed.brokers, NULL, cfg->exposure_queue, &rt->exposures, err, errlen)) !=
            AISLE_OK ||
        (rc = exp_admin_new(cfg->server.redis, rt->exp, &rt->admin, err, errlen)) != AISLE_OK)
        return rc;
    if (ltr_shelf_new(RANK_N_FEATURES, 0, &rt->models) != AISLE_OK)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

/* Makes rt's private socket directory (mkdtemp gives it mode 0700) under
 * $TMPDIR or /tmp. */
static int runtime_local_socket(runtime *rt, char *err, size_t errlen) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if (snprintf(rt->local_dir, sizeof(rt->local_dir), "%s/aisle-serve-XXXXXX", tmp) >=
            (int)sizeof(rt->local_dir) - 12 || /* room for "/grpc.sock" */
        !mkdtemp(rt->local_dir)) {
        rt->local_dir[0] = '\0';
        return status_fail(AISLE_EIO, err, errlen,
                           "cannot make a private socket directory under %s", tmp);
    }
    snprintf(rt->local_target, sizeof(rt->local_target), "unix:%s/grpc.sock", rt->local_dir);
    return AISLE_OK;
}

int runtime_start(const runtime_config *cfg, runtime **out, char *err, size_t errlen) {
    runtime *rt = calloc(1, sizeof(*rt));
    server_config sc = cfg->server;
    shop_config shc = cfg->shop;
    feed_config fc;
    int rc;

    *out = NULL;
    if (!rt) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = runtime_security(cfg, rt, err, errlen)) != AISLE_OK) goto fail;
    /* A settings file that does not check out stops the start, with its
     * line; once serving, a bad edit is refused and the one in use stays. */
    if ((rc = recommend_settings_files(cfg->scorer_file, cfg->rules_file, err, errlen)) !=
        AISLE_OK)
        goto fail;
    sc.tls = rt->tls;
    sc.auth = rt->auth;
    if ((rc = runtime_local_socket(rt, err, errlen)) != AISLE_OK) goto fail;
    sc.local_socket = rt->local_target + 5; /* past "unix:" */
    if ((rc = runtime_catalog_new(cfg, &rt->cat, err, errlen)) != AISLE_OK) goto fail;
    fc = cfg->feed;
    fc.nprobe = cfg->catalog.nprobe; /* a reload keeps an operator's --nprobe */
    if ((rc = feed_start(&fc, rt->cat, &rt->fd, err, errlen)) != AISLE_OK) goto fail;
    shc.redis = sc.redis;
    shc.profile = sc.profile;
    if ((rc = shop_new(&shc, &rt->sh, err, errlen)) != AISLE_OK) goto fail;
    if ((rc = runtime_experiments(cfg, rt, err, errlen)) != AISLE_OK) goto fail;
    rt->rc = (recommender_config){feed_ready, rt->fd,     rt->sh,        rt->exp,
                                  rt->exposures, rt->models, cfg->model_file};
    recommender_methods(&sc, &rt->rc);
    variants_admin_methods(&sc, rt->admin);
    if ((rc = server_start(&sc, rt->cat, &rt->srv, err, errlen)) != AISLE_OK) goto fail;
    *out = rt;
    return AISLE_OK;
fail:
    runtime_stop(rt, 0);
    return rc;
}

catalog *runtime_catalog(runtime *rt) { return rt->cat; }
shop *runtime_shop(runtime *rt) { return rt->sh; }
int runtime_port(const runtime *rt) { return server_port(rt->srv); }
const char *runtime_local_target(const runtime *rt) { return rt->local_target; }
const auth *runtime_auth(const runtime *rt) { return rt->auth; }
int runtime_ready(runtime *rt) { return feed_ready(rt->fd); }
void runtime_feed_stats(runtime *rt, feed_stats *out) { feed_get_stats(rt->fd, out); }
void runtime_exposure_stats(runtime *rt, exposure_log_stats *out) {
    exposure_log_get_stats(rt->exposures, out);
}

void runtime_reload_tls(runtime *rt) {
    if (rt->tls) tls_reload(rt->tls);
}

void runtime_stop(runtime *rt, int grace_ms) {
    if (!rt) return;
    if (rt->srv) server_stop(rt->srv, grace_ms);
    if (rt->local_dir[0]) {
        unlink(rt->local_target + 5);
        rmdir(rt->local_dir);
    }
    if (rt->exposures) exposure_log_stop(rt->exposures, 2000);
    if (rt->admin) exp_admin_free(rt->admin);
    if (rt->exp) exp_watch_stop(rt->exp);
    ltr_shelf_free(rt->models);
    shop_free(rt->sh);
    if (rt->fd) feed_stop(rt->fd);
    catalog_free(rt->cat);
    tls_free(rt->tls);
    auth_free(rt->auth);
    free(rt);
}
