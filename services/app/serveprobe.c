/* serveprobe: a snapshot's probe count from its validation carve, measured
 * through the catalog and ranker that serve it (see serveprobe.h). */
#include "services/app/serveprobe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/rank.h"
#include "retrieval/catalog.h"
#include "services/base/clock.h"
#include "services/base/status.h"

/* The tolerance of the choice: a probe count within this share of every
 * list's Recall@20. Served Recall@20 must stay within 1 % of offline; the
 * index takes a fifth of that, the rest is left to the replay and ties.
 * At 0.1 % Gowalla's dim-512 snapshot needed 64 of 256 lists (-0.09 %)
 * where 2 cost -0.14 % at a third of the ranker's CPU a call. */
#define SERVEPROBE_TOLERANCE 0.002
/* The page a probe call asks for, of which Recall@20 reads the first 20:
 * the quality bench's online pass and its load generator ask for 50, and
 * a deeper page searches deeper (rank_depth), which makes a small probe
 * count cost less Recall@20 than on a page of 20. */
#define SERVEPROBE_LIMIT 50
#define SERVEPROBE_K 20
/* The count that probes every list: more than any catalog's lists (ivf
 * clamps the count to its lists). */
#define SERVEPROBE_ALL 65536

/* The sample: rows of the carve's users with a profile and an answer,
 * every stride-th of them. */
typedef struct probe_users {
    uint32_t *row; /* owned */
    uint32_t n;
    rank_entry *items; /* scratch for the longest profile, owned */
} probe_users;

static int probe_users_pick(const embed_serve_carve *cv, probe_users *u) {
    const embed_data *tr = cv->train, *va = cv->valid;
    uint32_t n = tr->n_users < va->n_users ? tr->n_users : va->n_users, eligible = 0;
    uint64_t longest = 0;
    for (uint32_t r = 0; r < n; r++)
        eligible += tr->off[r + 1] > tr->off[r] && va->off[r + 1] > va->off[r];
    /* At least 1: a carve with no eligible user picks none. */
    uint32_t stride = (eligible + SERVEPROBE_USERS - 1) / SERVEPROBE_USERS + !eligible, seen = 0;
    u->n = 0;
    u->row = malloc(((size_t)eligible + 1) * sizeof(uint32_t));
    if (!u->row) return AISLE_ENOMEM;
    for (uint32_t r = 0; r < n; r++) {
        if (tr->off[r + 1] == tr->off[r] || va->off[r + 1] == va->off[r]) continue;
        if (seen++ % stride) continue;
        u->row[u->n++] = r;
        if (tr->off[r + 1] - tr->off[r] > longest) longest = tr->off[r + 1] - tr->off[r];
    }
    u->items = malloc(((size_t)longest + 1) * sizeof(rank_entry));
    return u->items ? AISLE_OK : AISLE_ENOMEM;
}

/* A catalog of the carve's model as the server builds it, probing nprobe
 * lists; the caller frees *out. */
static int probe_catalog(const embed_serve_carve *cv, int nprobe, catalog **out, char *err,
                         size_t errlen) {
    const embed_model *m = cv->model;
    catalog_config cfg;
    catalog_config_default(&cfg);
    cfg.dim = (int)m->dim;
    cfg.ivf_threshold = cv->ivf_threshold;
    cfg.nprobe = nprobe;
    catalog_snapshot view = {.version = "serving-probe", .n_items = m->n_items, .dim = m->dim,
                             .item_ids = cv->item_ids, .P = m->P, .Q = m->Q,
                             .nb_off = m->nb_off, .nb_item = m->nb_item,
                             .nb_weight = m->nb_weight, .bias = m->bias};
    int rc = catalog_new(&cfg, out, err, errlen);
    if (rc == AISLE_OK && (rc = catalog_load_snapshot(*out, &view, err, errlen)) != AISLE_OK) {
        catalog_free(*out);
        *out = NULL;
    }
    return rc;
}

/* One user's share of Recall@20: the held-out items among the page's
 * first 20 over all of them (embed/eval.c's protocol). */
static double probe_user_recall(const embed_serve_carve *cv, uint32_t row, const rank_result *res) {
    const embed_data *va = cv->valid;
    uint32_t hits = 0;
    for (size_t h = 0; h < res->n && h < SERVEPROBE_K; h++)
        for (uint64_t k = va->off[row]; k < va->off[row + 1]; k++)
            hits += strcmp(res->hits[h].item.item_id, cv->item_ids[va->item[k]]) == 0;
    return (double)hits / (double)(va->off[row + 1] - va->off[row]);
}

/* Mean Recall@20 of the sample's pages on c into *recall. */
static int probe_recall(const embed_serve_carve *cv, catalog *c, const probe_users *u,
                        double *recall, char *err, size_t errlen) {
    const embed_data *tr = cv->train;
    double sum = 0;
    for (uint32_t s = 0; s < u->n; s++) {
        uint32_t row = u->row[s];
        size_t n = 0;
        for (uint64_t k = tr->off[row]; k < tr->off[row + 1]; k++)
            u->items[n++] = (rank_entry){cv->item_ids[tr->item[k]], tr->weight[k]};
        /* Every profile item also counts as seen, as in a replay. */
        rank_profile p = {.items = u->items, .n_items = n, .seen = u->items, .n_seen = n};
        rank_request rq = {.profile = &p, .limit = SERVEPROBE_LIMIT, .settings = rank_surface("")};
        rank_result res;
        int rc = rank_recommend(c, &rq, &res, err, errlen);
        if (rc == AISLE_OK) sum += probe_user_recall(cv, row, &res);
        rank_result_free(&res);
        if (rc != AISLE_OK) return rc;
    }
    *recall = u->n ? sum / u->n : 0;
    return AISLE_OK;
}

/* Recall@20 of c with nprobe of its lists probed. */
static int probe_one(const embed_serve_carve *cv, catalog *c, const probe_users *u, int nprobe,
                     double *recall, char *err, size_t errlen) {
    int64_t t0 = clock_mono_us();
    int lists = catalog_ivf_lists(c), rc;
    catalog_set_nprobe(c, nprobe);
    rc = probe_recall(cv, c, u, recall, err, errlen);
    if (rc == AISLE_OK && !cv->quiet)
        fprintf(stderr, "serving probe: nprobe %d of %d lists, recall@20 %.4f (%.1f s)\n",
                nprobe < lists ? nprobe : lists, lists, *recall,
                (double)(clock_mono_us() - t0) / 1e6);
    return rc;
}

int serveprobe_choose(const embed_serve_carve *cv, embed_serve_choice *out, char *err,
                      size_t errlen) {
    probe_users u = {0};
    catalog *c = NULL;
    int lists = 0, nprobe = 1;
    double all = 0, got = 0;
    memset(out, 0, sizeof(*out));
    int rc = probe_users_pick(cv, &u);
    if (rc != AISLE_OK) {
        status_fail(rc, err, errlen, "out of memory");
        goto fail;
    }
    /* No validation user to rank: nothing to choose from. */
    if (!u.n) goto fail;
    /* One index for every count, built as the server builds it. */
    if ((rc = probe_catalog(cv, SERVEPROBE_ALL, &c, err, errlen)) != AISLE_OK ||
        !(lists = catalog_ivf_lists(c)) ||
        (rc = probe_one(cv, c, &u, SERVEPROBE_ALL, &all, err, errlen)) != AISLE_OK)
        goto fail;
    /* Doubling from one list, the first count within the tolerance; every
     * list is, so the walk ends there at the latest. */
    for (; nprobe < lists; nprobe *= 2) {
        if ((rc = probe_one(cv, c, &u, nprobe, &got, err, errlen)) != AISLE_OK) goto fail;
        if (got >= all * (1.0 - SERVEPROBE_TOLERANCE)) break;
    }
    if (nprobe >= lists) {
        nprobe = lists;
        got = all;
    }
    *out = (embed_serve_choice){.lists = (uint32_t)lists, .nprobe = (uint32_t)nprobe,
                                .users = u.n, .recall = got, .recall_all = all};
fail:
    catalog_free(c);
    free(u.row);
    free(u.items);
    return rc;
}
