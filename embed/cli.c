/* cli: the `aisle embed train|eval|split|blend` commands (see cli.h): argument
 * parsing, the wiring of data -> (tune) -> train -> snapshot and snapshot
 * -> eval, and the timing and memory summary. All real work lives in the
 * other modules. */
#include "embed/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "embed/blend.h"
#include "embed/compress.h"
#include "embed/data.h"
#include "embed/eval.h"
#include "embed/snapshot.h"
#include "embed/train.h"
#include "embed/tune.h"
#include "services/base/buf.h"
#include "services/base/status.h"

#define CLI_ERR_LEN 512

static long peak_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return (end == s || *end != '\0') ? AISLE_EINVAL : AISLE_OK;
}

static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || v > UINT32_MAX) return AISLE_EINVAL;
    *out = (uint32_t)v;
    return AISLE_OK;
}

/* The format named by --format, or guessed from the file name. */
static int pick_format(const char *name, const char *path, embed_format *fmt) {
    if (name) return embed_format_parse(name, fmt);
    size_t n = strlen(path);
    *fmt = (n > 4 && strcmp(path + n - 4, ".csv") == 0) ? EMBED_FMT_CSV : EMBED_FMT_LIGHTGCN;
    return AISLE_OK;
}

/* Loads a file and optionally carves the holdout split. With frac > 0,
 * *main_part gets the train part and *valid the held-out part; otherwise
 * *main_part gets the file and *valid stays empty. */
static int load_split(const char *path, embed_format fmt, double frac, uint64_t seed,
                      embed_idmap *users, embed_idmap *items, embed_data *main_part,
                      embed_data *valid, char *err, size_t errlen) {
    embed_data all;
    memset(valid, 0, sizeof(*valid));
    int rc = embed_data_load(path, fmt, users, items, &all, err, errlen);
    if (rc != AISLE_OK) return rc;
    if (frac <= 0) {
        *main_part = all;
        return AISLE_OK;
    }
    rc = embed_data_holdout(&all, frac, seed, main_part, valid);
    if (rc != AISLE_OK) status_fmt(err, errlen, "%s: holdout split failed (out of memory)", path);
    embed_data_free(&all);
    return rc;
}

/* ---- train ------------------------------------------------------------- */

enum {
    OPT_FORMAT = 256, OPT_CATALOG, OPT_HOLDOUT, OPT_SEED, OPT_DIM, OPT_ALPHA, OPT_NEIGHBORS,
    OPT_SHARPEN, OPT_BETA, OPT_NORM_USER, OPT_NORM_ITEM, OPT_LP_LEFT, OPT_LP_RIGHT,
    OPT_LIN_USER, OPT_LIN_ITEM, OPT_SVD_ITERS, OPT_QUIET, OPT_K, OPT_METHOD, OPT_DEGNORM,
    OPT_ORDER, OPT_FLAT, OPT_SHARPEN_TIME, OPT_TUNE, OPT_TUNE_BUDGET, OPT_SERVE_DIM,
    OPT_SERVE_NEIGHBORS, OPT_CURVE, OPT_TUNE_SAMPLE, OPT_BLEND, OPT_BLEND_WEIGHT, OPT_TUNE_WORK,
    OPT_SERVE_IVF,
    OPT_POP,
};

static const struct option train_opts[] = {
    {"input", required_argument, 0, 'i'},
    {"out", required_argument, 0, 'o'},
    {"format", required_argument, 0, OPT_FORMAT},
    {"catalog", required_argument, 0, OPT_CATALOG},
    {"holdout", required_argument, 0, OPT_HOLDOUT},
    {"seed", required_argument, 0, OPT_SEED},
    {"method", required_argument, 0, OPT_METHOD},
    {"tune", no_argument, 0, OPT_TUNE},
    {"tune-budget", required_argument, 0, OPT_TUNE_BUDGET},
    {"tune-sample", required_argument, 0, OPT_TUNE_SAMPLE},
    {"tune-work", required_argument, 0, OPT_TUNE_WORK},
    {"curve", required_argument, 0, OPT_CURVE},
    {"serve-dim", required_argument, 0, OPT_SERVE_DIM},
    {"serve-ivf-threshold", required_argument, 0, OPT_SERVE_IVF},
    {"dim", required_argument, 0, OPT_DIM},
    {"alpha", required_argument, 0, OPT_ALPHA},
    {"neighbors", required_argument, 0, OPT_NEIGHBORS},
    {"sharpen", required_argument, 0, OPT_SHARPEN},
    {"beta", required_argument, 0, OPT_BETA},
    {"pop", required_argument, 0, OPT_POP},
    {"norm-user", required_argument, 0, OPT_NORM_USER},
    {"norm-item", required_argument, 0, OPT_NORM_ITEM},
    {"lp-left", required_argument, 0, OPT_LP_LEFT},
    {"lp-right", required_argument, 0, OPT_LP_RIGHT},
    {"lin-user", required_argument, 0, OPT_LIN_USER},
    {"lin-item", required_argument, 0, OPT_LIN_ITEM},
    {"degnorm", required_argument, 0, OPT_DEGNORM},
    {"order", required_argument, 0, OPT_ORDER},
    {"flat", required_argument, 0, OPT_FLAT},
    {"sharpen-time", required_argument, 0, OPT_SHARPEN_TIME},
    {"svd-iters", required_argument, 0, OPT_SVD_ITERS},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

/* The search's defaults: enough users per point that its figures move by
 * less than the differences the search acts on, and enough work for one
 * line-search pass over sharpened's axes on Gowalla (16 points of 3,318
 * sampled users x 40,981 items); smaller catalogues get both passes. */
#define TRAIN_TUNE_SAMPLE 3000u
#define TRAIN_TUNE_WORK 2.3e9
/* The server's default --ivf-threshold (retrieval/catalog.c). */
#define TRAIN_SERVE_IVF 20000u

static void train_usage(void) {
    fprintf(stderr,
            "usage: aisle embed train --input FILE [--format lightgcn|tsv|csv] [--catalog FILE]\n"
            "         --out DIR [--method cheby|sharpened|bspm]\n"
            "         [--tune [--tune-work PAIRS] [--tune-sample USERS] [--tune-budget SEC]]\n"
            "         [--holdout FRAC --seed S] [--dim K] [--alpha A] [--neighbors M]\n"
            "         [--sharpen G] [--curve C] [--degnorm B] [--order K] [--flat PHI] [--sharpen-time T]\n"
            "         [--beta B] [--norm-user X] [--norm-item X] [--lp-left X] [--lp-right X]\n"
            "         [--lin-user X] [--lin-item X] [--pop W] [--svd-iters N] [--serve-dim D]\n"
            "         [--serve-ivf-threshold N] [--quiet]\n"
            "--tune carves a validation split (20 %%, --seed) from the input and searches the\n"
            "method's parameters, scoring each point on --tune-sample validation users\n"
            "(default %u, 0 = all) against every item, until the points together have\n"
            "scored --tune-work (user, item) pairs (default %g, 0 = no limit; at most two\n"
            "passes); --tune-budget SEC (default none) also stops it by the clock. It then\n"
            "trains the final model on all of the input; --holdout instead trains on a\n"
            "carve and reports it (with --tune: the search sees only the carve's train part,\n"
            "which it carves again, so the report scores the whole procedure on unseen data).\n"
            "The rank is searched downwards from the trained one: without --dim, --tune of\n"
            "sharpened starts at %u where the data's smaller side has %u rows or more.\n"
            "--serve-dim D publishes the best rank-D form of the vectors (a faster index).\n"
            "With a validation carve (--holdout or --tune's), the aisle binary also records\n"
            "the serving probe count: the fewest IVF lists whose validation Recall@20 through\n"
            "the server's search and ranker is within 0.2 %% of every list's, for the index a\n"
            "server with --ivf-threshold N (default %u, serve's) builds.\n",
            TRAIN_TUNE_SAMPLE, TRAIN_TUNE_WORK, EMBED_TUNE_WIDE_RANK, EMBED_TUNE_WIDE_SIDE,
            TRAIN_SERVE_IVF);
}

/* What `embed train` was asked to do. */
typedef struct {
    const char *input, *out, *fmtname, *catalog;
    embed_format fmt;
    double frac;
    uint32_t seed;
    int quiet, tune;
    int dim_set; /* --dim was given: --tune keeps that rank (embed_tune_rank) */
    double tune_budget;
    uint32_t tune_sample;
    double tune_work;
    uint32_t serve_dim; /* compress the published vectors to this rank (0: no) */
    uint32_t serve_ivf; /* the server's --ivf-threshold the probe assumes */
    embed_serve_probe probe; /* NULL: no serving setting is chosen */
    embed_train_params p;
} train_args;

/* One parameter flag into a; AISLE_EINVAL for a bad value. */
static int train_param(train_args *a, int c, const char *v) {
    embed_train_params *p = &a->p;
    switch (c) {
    case OPT_DIM:
        a->dim_set = 1;
        return parse_u32(v, &p->dim) || p->dim > 4096 ? AISLE_EINVAL : AISLE_OK;
    case OPT_NEIGHBORS:
        return parse_u32(v, &p->neighbors) || p->neighbors > 100000 ? AISLE_EINVAL : AISLE_OK;
    case OPT_SVD_ITERS:
        return parse_u32(v, &p->svd_iters) || p->svd_iters > 50 ? AISLE_EINVAL : AISLE_OK;
    case OPT_ORDER:
        return parse_u32(v, &p->order) || p->order < 1 || p->order > 32 ? AISLE_EINVAL : AISLE_OK;
    case OPT_FLAT: return parse_double(v, &p->flat) || p->flat <= 0 ? AISLE_EINVAL : AISLE_OK;
    case OPT_ALPHA: return parse_double(v, &p->alpha);
    case OPT_SHARPEN: return parse_double(v, &p->sharpen);
    case OPT_CURVE: return parse_double(v, &p->curve);
    case OPT_BETA: return parse_double(v, &p->beta);
    case OPT_POP: return parse_double(v, &p->pop);
    case OPT_NORM_USER: return parse_double(v, &p->norm_user);
    case OPT_NORM_ITEM: return parse_double(v, &p->norm_item);
    case OPT_LP_LEFT: return parse_double(v, &p->lp_left);
    case OPT_LP_RIGHT: return parse_double(v, &p->lp_right);
    case OPT_LIN_USER: return parse_double(v, &p->lin_user);
    case OPT_LIN_ITEM: return parse_double(v, &p->lin_item);
    case OPT_DEGNORM: return parse_double(v, &p->degnorm);
    case OPT_SHARPEN_TIME: return parse_double(v, &p->sharpen_time);
    }
    return AISLE_EINVAL;
}

/* One non-parameter flag into a. */
static int train_flag(train_args *a, int c, const char *v) {
    switch (c) {
    case 'i': a->input = v; return AISLE_OK;
    case 'o': a->out = v; return AISLE_OK;
    case OPT_FORMAT: a->fmtname = v; return AISLE_OK;
    case OPT_CATALOG: a->catalog = v; return AISLE_OK;
    case OPT_METHOD: return AISLE_OK; /* read in the first pass */
    case OPT_TUNE: a->tune = 1; return AISLE_OK;
    case OPT_QUIET: a->quiet = 1; return AISLE_OK;
    case OPT_HOLDOUT:
        return parse_double(v, &a->frac) || a->frac <= 0 || a->frac >= 1 ? AISLE_EINVAL : AISLE_OK;
    case OPT_SEED: return parse_u32(v, &a->seed);
    case OPT_TUNE_SAMPLE: return parse_u32(v, &a->tune_sample);
    case OPT_TUNE_WORK:
        return parse_double(v, &a->tune_work) || a->tune_work < 0 ? AISLE_EINVAL : AISLE_OK;
    case OPT_SERVE_DIM: return parse_u32(v, &a->serve_dim);
    case OPT_SERVE_IVF:
        return parse_u32(v, &a->serve_ivf) || (a->serve_ivf && a->serve_ivf < 1000) ? AISLE_EINVAL
                                                                                   : AISLE_OK;
    case OPT_TUNE_BUDGET:
        return parse_double(v, &a->tune_budget) || a->tune_budget < 0 ? AISLE_EINVAL : AISLE_OK;
    }
    return train_param(a, c, v);
}

/* Parses argv into a: 0 to go on, else the exit status (0 after --help). */
static int train_parse(int argc, char **argv, train_args *a, int *exit_status) {
    embed_method method = EMBED_METHOD_SHARPENED;
    int c;
    memset(a, 0, sizeof(*a));
    a->seed = 1;
    a->tune_sample = TRAIN_TUNE_SAMPLE;
    a->tune_work = TRAIN_TUNE_WORK;
    a->serve_ivf = TRAIN_SERVE_IVF;
    /* The method sets the defaults that the other flags then override, so
     * it is read first wherever it stands. */
    optind = 0; /* full getopt reset: the CLI may run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "i:o:h", train_opts, NULL)) != -1)
        if (c == OPT_METHOD && embed_method_parse(optarg, &method) != AISLE_OK) {
            fprintf(stderr, "embed train: unknown method: %s\n", optarg);
            return *exit_status = 2;
        }
    embed_train_defaults(&a->p, method);
    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "i:o:h", train_opts, NULL)) != -1) {
        if (c == 'h') {
            train_usage();
            *exit_status = 0;
            return 1;
        }
        if (c == '?' || train_flag(a, c, optarg) != AISLE_OK) {
            if (c != '?') fprintf(stderr, "embed train: bad value: %s\n", optarg);
            else train_usage();
            return *exit_status = 2;
        }
    }
    if (!a->input || !a->out || optind != argc || pick_format(a->fmtname, a->input, &a->fmt) != 0) {
        train_usage();
        return *exit_status = 2;
    }
    return 0;
}

/* The parameters, as meta.txt lines. */
static void meta_params(buf *b, const embed_train_params *p) {
    buf_printf(b, "method=%s\nparam.dim=%u\nparam.alpha=%g\nparam.sharpen=%g\nparam.curve=%g\n",
               embed_method_name(p->method), p->dim, p->alpha, p->sharpen, p->curve);
    buf_printf(b, "param.neighbors=%u\nparam.norm_user=%g\nparam.norm_item=%g\n", p->neighbors,
               p->norm_user, p->norm_item);
    buf_printf(b, "param.degnorm=%g\nparam.order=%u\nparam.flat=%g\nparam.sharpen_time=%g\n",
               p->degnorm, p->order, p->flat, p->sharpen_time);
    buf_printf(b, "param.beta=%g\nparam.lp_left=%g\nparam.lp_right=%g\nparam.lin_user=%g\n",
               p->beta, p->lp_left, p->lp_right, p->lin_user);
    buf_printf(b, "param.pop=%g\n", p->pop);
    buf_printf(b, "param.lin_item=%g\nparam.svd_iters=%u\nparam.seed=%llu\n", p->lin_item,
               p->svd_iters, (unsigned long long)p->seed);
}

static void meta_figures(buf *b, const char *prefix, const embed_eval_result *r) {
    for (int q = 0; q < r->nk; q++)
        buf_printf(b, "%s.recall@%d=%.4f\n%s.ndcg@%d=%.4f\n", prefix, r->k[q], r->recall[q], prefix,
                   r->k[q], r->ndcg[q]);
}

/* Everything train produced, for the snapshot and the summary. */
typedef struct {
    embed_idmap users, items, creators;
    embed_data train, valid;
    embed_model model;
    uint32_t *item_creator;
    embed_tune_result tuned; /* owns the carve's spectrum until training */
    embed_eval_result holdout;
    embed_serve_choice serve; /* the probe's; nprobe 0 when none was chosen */
    double t0, train_s;
} train_run;

static void train_run_free(train_run *r) {
    free(r->item_creator);
    embed_tune_result_free(&r->tuned);
    embed_model_free(&r->model);
    embed_data_free(&r->train);
    embed_data_free(&r->valid);
    embed_idmap_free(&r->users);
    embed_idmap_free(&r->items);
    embed_idmap_free(&r->creators);
}

static int train_load(const train_args *a, train_run *r, char *err, size_t errlen) {
    int rc = load_split(a->input, a->fmt, a->frac, a->seed, &r->users, &r->items, &r->train,
                        &r->valid, err, errlen);
    if (rc != AISLE_OK) return rc;
    if (!a->quiet)
        fprintf(stderr, "read %s: %u users, %u items, %llu interactions (%.1f s)\n", a->input,
                r->train.n_users, r->train.n_items,
                (unsigned long long)(r->train.off[r->train.n_users] +
                                     (r->valid.off ? r->valid.off[r->valid.n_users] : 0)),
                embed_now() - r->t0);
    if (a->catalog)
        rc = embed_catalog_load(a->catalog, &r->items, &r->creators, &r->item_creator, err, errlen);
    return rc;
}

static void print_tuned(const train_args *a, const train_run *r) {
    if (a->quiet) return;
    fprintf(stderr, "tune: %u points in %.1f s%s; recall@20 %.4f -> %.4f, ndcg@20 %.4f -> %.4f\n",
            r->tuned.evals, r->tuned.seconds, r->tuned.out_of_time ? " (stopped by the clock)" : "",
            r->tuned.start.recall[0], r->tuned.best.recall[0], r->tuned.start.ndcg[0],
            r->tuned.best.ndcg[0]);
    printf("validation of the tuned parameters (holdout 0.2, seed %u, %u users):\n", a->seed,
           r->tuned.best.n_users);
    embed_eval_print(&r->tuned.best, stdout);
}

/* Asks the probe for m's serving setting on the carve (train, valid). */
static int train_probe(const train_args *a, train_run *r, const embed_model *m,
                       const embed_data *train, const embed_data *valid) {
    char err[CLI_ERR_LEN];
    embed_serve_carve carve = {m, (const char *const *)r->items.names, train, valid,
                               a->serve_ivf, a->quiet};
    int rc = a->probe(&carve, &r->serve, err, sizeof(err));
    if (rc != AISLE_OK) fprintf(stderr, "embed train: serving probe: %s\n", err);
    else if (!a->quiet && r->serve.nprobe)
        fprintf(stderr, "serving probe: nprobe %u of %u lists, validation recall@20 %.4f "
                "(every list %.4f, %u users)\n", r->serve.nprobe, r->serve.lists,
                r->serve.recall, r->serve.recall_all, r->serve.users);
    return rc;
}

/* --tune's final model sees all the data, so its serving setting is chosen
 * on a model of the tuned parameters trained on the search's carve (the
 * same split, and the spectrum it was searched on), as served. */
static int train_probe_carve(const train_args *a, train_run *r) {
    embed_data train = {0}, valid = {0};
    embed_model m = {0};
    embed_train_params p = a->p;
    embed_svd_start warm = {r->tuned.spectrum, r->tuned.spectrum_k};
    int rc = embed_data_holdout(&r->train, 0.2, a->seed, &train, &valid);
    if (rc == AISLE_OK) rc = embed_train_warm(&train, &p, &warm, &m, a->quiet);
    if (rc == AISLE_OK && a->serve_dim > 0) rc = embed_model_compress(&m, a->serve_dim);
    if (rc == AISLE_OK) rc = train_probe(a, r, &m, &train, &valid);
    embed_model_free(&m);
    embed_data_free(&train);
    embed_data_free(&valid);
    return rc;
}

/* Tunes (when asked), trains and validates (with --holdout). */
static int train_fit(train_args *a, train_run *r) {
    if (a->tune) {
        embed_tune_opts o = {.work = a->tune_work, .budget_s = a->tune_budget, .holdout = 0.2,
                             .seed = a->seed, .sample = a->tune_sample, .quiet = a->quiet};
        if (!a->dim_set) a->p.dim = embed_tune_rank(&r->train, &a->p);
        int rc = embed_tune(&r->train, &a->p, &o, &r->tuned);
        if (rc != AISLE_OK) return rc;
        print_tuned(a, r);
        if (a->probe && (rc = train_probe_carve(a, r)) != AISLE_OK) return rc;
    }
    /* The final SVD starts from the carve's: most of the same data. */
    embed_svd_start warm = {r->tuned.spectrum, r->tuned.spectrum_k};
    double t1 = embed_now();
    int rc = embed_train_warm(&r->train, &a->p, &warm, &r->model, a->quiet);
    embed_tune_result_free(&r->tuned);
    if (rc != AISLE_OK) return rc;
    /* The validation below scores the compressed form: what is served. */
    if (a->serve_dim > 0 && (rc = embed_model_compress(&r->model, a->serve_dim)) != AISLE_OK)
        return rc;
    r->train_s = embed_now() - t1;
    if (a->frac <= 0) return AISLE_OK;
    static const int ks[] = {10, 20, 50};
    embed_progress prog = {.quiet = a->quiet};
    rc = embed_eval_run(&r->model, &r->train, &r->valid, ks, 3, 1, &r->holdout, &prog);
    if (rc == AISLE_OK && !a->quiet) {
        printf("validation (holdout %g, seed %u):\n", a->frac, a->seed);
        embed_eval_print(&r->holdout, stdout);
    }
    if (rc == AISLE_OK && a->probe) rc = train_probe(a, r, &r->model, &r->train, &r->valid);
    return rc;
}

static char *train_meta(const train_args *a, const train_run *r) {
    buf b = {0};
    const embed_model *m = &r->model;
    buf_printf(&b, "format=%d\ninput=%s\nusers=%u\nitems=%u\ninteractions=%llu\ndim=%u\n",
               EMBED_SNAPSHOT_FORMAT, a->input, r->train.n_users, r->train.n_items,
               (unsigned long long)r->train.off[r->train.n_users], m->dim);
    buf_printf(&b, "neighbor_entries=%llu\ncreators=%u\n",
               (unsigned long long)m->nb_off[m->n_items], r->creators.count);
    meta_params(&b, &a->p);
    buf_printf(&b, "serve_dim=%u\ntrain_seconds=%.1f\n", a->serve_dim, r->train_s);
    if (r->serve.nprobe)
        buf_printf(&b, "serve_lists=%u\nserve_nprobe=%u\nserve.ivf_threshold=%u\n"
                   "serve.valid_users=%u\nserve.valid.recall@20=%.6f\n"
                   "serve.valid.recall@20.all_lists=%.6f\n", r->serve.lists, r->serve.nprobe,
                   a->serve_ivf, r->serve.users, r->serve.recall, r->serve.recall_all);
    if (a->tune) {
        buf_printf(&b, "tune.budget_pairs=%g\ntune.budget_seconds=%g\ntune.seconds=%.1f\n",
                   a->tune_work, a->tune_budget, r->tuned.seconds);
        buf_printf(&b, "tune.points=%u\ntune.stopped_by_clock=%d\n", r->tuned.evals,
                   r->tuned.out_of_time);
        buf_printf(&b, "tune.holdout=0.2\ntune.holdout_seed=%u\ntune.valid_users=%u\n", a->seed,
                   r->tuned.best.n_users);
        meta_figures(&b, "tune.valid", &r->tuned.best);
    }
    if (a->frac > 0) {
        buf_printf(&b, "holdout=%g\nholdout_seed=%u\n", a->frac, a->seed);
        meta_figures(&b, "valid", &r->holdout);
    }
    buf_printf(&b, "peak_rss_kb=%ld\n", peak_rss_kb());
    return buf_take(&b);
}

static int train_publish(const train_args *a, train_run *r, char *err, size_t errlen) {
    char snapdir[PATH_MAX];
    char *meta = train_meta(a, r);
    if (!meta) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    embed_snapshot_parts parts = {&r->model, &r->items, r->item_creator, &r->creators, meta};
    int rc = embed_snapshot_write(a->out, &parts, snapdir, sizeof(snapdir), err, errlen);
    free(meta);
    if (rc != AISLE_OK) return rc;
    printf("snapshot %s\n", snapdir);
    printf("train time %.1f s (total %.1f s), peak RSS %.1f MiB\n", r->train_s,
           embed_now() - r->t0, (double)peak_rss_kb() / 1024.0);
    return AISLE_OK;
}

int embed_cli_train(int argc, char **argv) { return embed_cli_train_probed(argc, argv, NULL); }

int embed_cli_train_probed(int argc, char **argv, embed_serve_probe probe) {
    train_args a;
    train_run r;
    char err[CLI_ERR_LEN] = "";
    int status;
    if (train_parse(argc, argv, &a, &status) != 0) return status;
    a.probe = probe;
    memset(&r, 0, sizeof(r));
    embed_idmap_init(&r.users);
    embed_idmap_init(&r.items);
    embed_idmap_init(&r.creators);
    r.t0 = embed_now();
    int rc = train_load(&a, &r, err, sizeof(err));
    if (rc == AISLE_OK) {
        rc = train_fit(&a, &r);
        if (rc != AISLE_OK) status_fmt(err, sizeof(err), "training failed: %s", status_str(rc));
    }
    if (rc == AISLE_OK) rc = train_publish(&a, &r, err, sizeof(err));
    if (rc != AISLE_OK) fprintf(stderr, "embed train: %s\n", err);
    train_run_free(&r);
    return rc == AISLE_OK ? 0 : 1;
}

/* ---- eval -------------------------------------------------------------- */

static void eval_usage(void) {
    fprintf(stderr, "usage: aisle embed eval --train FILE (--test FILE | --holdout FRAC --seed S)\n"
                    "         --model DIR [--format lightgcn|tsv|csv] [--k 10,20,50]\n"
                    "         [--serve-dim K] [--serve-neighbors M] [--blend DIR [--blend-weight W]]\n"
                    "         [--quiet]\n"
                    "--serve-dim / --serve-neighbors score the best rank-K form of the\n"
                    "snapshot's vectors and its M heaviest neighbours per item: what a\n"
                    "lighter serving form (train --serve-dim) would score. --blend scores\n"
                    "the model plus W times another snapshot's over the same items.\n");
}

typedef struct {
    const char *trainp, *testp, *modelp, *fmtname, *blendp;
    embed_format fmt;
    double frac, blend_w;
    uint32_t seed, serve_dim, serve_nb;
    int quiet, ks[EMBED_EVAL_MAXK], nk;
} eval_args;

static int eval_parse(int argc, char **argv, eval_args *a, int *exit_status) {
    static const struct option opts[] = {
        {"train", required_argument, 0, 't'},           {"test", required_argument, 0, 'T'},
        {"model", required_argument, 0, 'm'},           {"format", required_argument, 0, OPT_FORMAT},
        {"holdout", required_argument, 0, OPT_HOLDOUT}, {"seed", required_argument, 0, OPT_SEED},
        {"k", required_argument, 0, OPT_K},             {"quiet", no_argument, 0, OPT_QUIET},
        {"serve-dim", required_argument, 0, OPT_SERVE_DIM},
        {"serve-neighbors", required_argument, 0, OPT_SERVE_NEIGHBORS},
        {"blend", required_argument, 0, OPT_BLEND},
        {"blend-weight", required_argument, 0, OPT_BLEND_WEIGHT},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0},
    };
    const char *kspec = "10,20,50";
    int c;
    memset(a, 0, sizeof(*a));
    a->seed = 1;
    a->serve_nb = UINT32_MAX;
    a->blend_w = 1.0;
    optind = 0; /* full getopt reset: the CLI may run more than once */
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 't': a->trainp = optarg; break;
        case 'T': a->testp = optarg; break;
        case 'm': a->modelp = optarg; break;
        case OPT_FORMAT: a->fmtname = optarg; break;
        case OPT_HOLDOUT: bad = parse_double(optarg, &a->frac) || a->frac <= 0 || a->frac >= 1; break;
        case OPT_SEED: bad = parse_u32(optarg, &a->seed); break;
        case OPT_K: kspec = optarg; break;
        case OPT_SERVE_DIM: bad = parse_u32(optarg, &a->serve_dim); break;
        case OPT_SERVE_NEIGHBORS: bad = parse_u32(optarg, &a->serve_nb); break;
        case OPT_BLEND: a->blendp = optarg; break;
        case OPT_BLEND_WEIGHT: bad = parse_double(optarg, &a->blend_w); break;
        case OPT_QUIET: a->quiet = 1; break;
        case 'h': eval_usage(); *exit_status = 0; return 1;
        default: eval_usage(); return *exit_status = 2;
        }
        if (bad) {
            fprintf(stderr, "embed eval: bad value: %s\n", optarg);
            return *exit_status = 2;
        }
    }
    if (!a->trainp || !a->modelp || (!a->testp) == (a->frac <= 0) || optind != argc ||
        embed_eval_parse_ks(kspec, a->ks, &a->nk) != AISLE_OK ||
        pick_format(a->fmtname, a->trainp, &a->fmt) != AISLE_OK) {
        eval_usage();
        return *exit_status = 2;
    }
    return 0;
}

/* A snapshot directory has a MANIFEST; anything else is a root. */
static int eval_load_one(const char *path, int quiet, embed_snapshot *snap, char *err,
                         size_t errlen) {
    char manifest[PATH_MAX];
    struct stat st;
    int n = snprintf(manifest, sizeof(manifest), "%s/MANIFEST", path);
    if (n > 0 && n < (int)sizeof(manifest) && stat(manifest, &st) == 0)
        return embed_snapshot_load(path, snap, err, errlen);
    return embed_snapshot_load_newest(path, snap, quiet, err, errlen);
}

/* Replaces snap's model by snap + w * the model of the snapshot at path,
 * which must cover the same items in the same rows; keep bounds the merged
 * neighbour lists. The other snapshot's meta is left in *other_meta
 * (caller frees) when asked for. */
static int blend_into(embed_snapshot *snap, const char *path, double w, uint32_t keep, int quiet,
                      char **other_meta, char *err, size_t errlen) {
    embed_snapshot other;
    embed_model sum;
    int rc = eval_load_one(path, quiet, &other, err, errlen);
    if (rc != AISLE_OK) return rc;
    int same = other.items.count == snap->items.count;
    for (uint32_t i = 0; same && i < snap->items.count; i++)
        same = strcmp(other.items.names[i], snap->items.names[i]) == 0;
    if (!same) rc = status_fail(AISLE_EINVAL, err, errlen, "%s: other items than %s", other.dir, snap->dir);
    else rc = embed_model_blend(&snap->model, &other.model, (float)w, keep, &sum);
    if (rc == AISLE_OK) {
        embed_model_free(&snap->model);
        snap->model = sum;
        if (other_meta) {
            *other_meta = other.meta;
            other.meta = NULL;
        }
    } else if (same) {
        status_fmt(err, errlen, "blend failed: %s", status_str(rc));
    }
    embed_snapshot_free(&other);
    return rc;
}

static int eval_load_model(const eval_args *a, embed_snapshot *snap, char *err, size_t errlen) {
    int rc = eval_load_one(a->modelp, a->quiet, snap, err, errlen);
    if (rc == AISLE_OK && a->blendp &&
        (rc = blend_into(snap, a->blendp, a->blend_w, UINT32_MAX, a->quiet, NULL, err, errlen)) !=
            AISLE_OK)
        embed_snapshot_free(snap);
    return rc;
}

/* Cuts the model to the best rank-`dim` form of its vectors and the `nb`
 * heaviest neighbours per item, in place (the lists are sorted by weight). */
static int eval_cut(embed_model *m, uint32_t dim, uint32_t nb) {
    if (dim > 0 && dim < m->dim) {
        int rc = embed_model_compress(m, dim);
        if (rc != AISLE_OK) return rc;
    }
    uint64_t w = 0;
    for (uint32_t i = 0; i < m->n_items; i++) {
        uint64_t a = m->nb_off[i], len = m->nb_off[i + 1] - a;
        if (len > nb) len = nb;
        memmove(m->nb_item + w, m->nb_item + a, len * sizeof(*m->nb_item));
        memmove(m->nb_weight + w, m->nb_weight + a, len * sizeof(*m->nb_weight));
        m->nb_off[i] = w;
        w += len;
    }
    m->nb_off[m->n_items] = w;
    return AISLE_OK;
}

/* Reads train (and test) through the snapshot's item table so rows agree
 * with the model; items it does not know get rows past its end. */
static int eval_data(const eval_args *a, embed_snapshot *snap, embed_idmap *users,
                     embed_data *train, embed_data *test, char *err, size_t errlen) {
    int rc = load_split(a->trainp, a->fmt, a->frac, a->seed, users, &snap->items, train, test, err,
                        errlen);
    if (rc != AISLE_OK || !a->testp) return rc;
    embed_format tfmt;
    if (pick_format(a->fmtname, a->testp, &tfmt) != AISLE_OK)
        return status_fail(AISLE_EINVAL, err, errlen, "%s: unknown format", a->testp);
    return embed_data_load(a->testp, tfmt, users, &snap->items, test, err, errlen);
}

int embed_cli_eval(int argc, char **argv) {
    eval_args a;
    embed_snapshot snap;
    embed_idmap users;
    embed_data train = {0}, test = {0};
    embed_eval_result res;
    char err[CLI_ERR_LEN] = "";
    int status;
    if (eval_parse(argc, argv, &a, &status) != 0) return status;
    int rc = eval_load_model(&a, &snap, err, sizeof(err));
    if (rc != AISLE_OK) {
        fprintf(stderr, "embed eval: %s\n", err);
        return 1;
    }
    embed_idmap_init(&users);
    rc = eval_cut(&snap.model, a.serve_dim, a.serve_nb);
    if (rc != AISLE_OK) status_fmt(err, sizeof(err), "compression failed: %s", status_str(rc));
    if (rc == AISLE_OK && !a.quiet)
        fprintf(stderr, "model %s: %u items, dim %u, %llu neighbour entries\n", snap.dir,
                snap.model.n_items, snap.model.dim,
                (unsigned long long)snap.model.nb_off[snap.model.n_items]);
    if (rc == AISLE_OK) rc = eval_data(&a, &snap, &users, &train, &test, err, sizeof(err));
    if (rc == AISLE_OK) {
        embed_progress prog = {.quiet = a.quiet};
        rc = embed_eval_run(&snap.model, &train, &test, a.ks, a.nk, 1, &res, &prog);
        if (rc != AISLE_OK) status_fmt(err, sizeof(err), "evaluation failed: %s", status_str(rc));
    }
    if (rc == AISLE_OK) embed_eval_print(&res, stdout);
    else fprintf(stderr, "embed eval: %s\n", err);
    embed_data_free(&train);
    embed_data_free(&test);
    embed_idmap_free(&users);
    embed_snapshot_free(&snap);
    return rc == AISLE_OK ? 0 : 1;
}

/* ---- split ------------------------------------------------------------- */

/* Writes d in the LightGCN format ("user item item ..."), one line per user
 * with items, through the id tables. */
static int write_lightgcn(const char *path, const embed_data *d, const embed_idmap *users,
                          const embed_idmap *items, char *err, size_t errlen) {
    FILE *f = fopen(path, "w");
    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    for (uint32_t u = 0; u < d->n_users; u++) {
        if (d->off[u] == d->off[u + 1]) continue;
        fputs(users->names[u], f);
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++) fprintf(f, " %s", items->names[d->item[e]]);
        fputc('\n', f);
    }
    if (ferror(f) | fclose(f)) return status_fail(AISLE_EIO, err, errlen, "%s: write failed", path);
    return AISLE_OK;
}

static void split_usage(void) {
    fprintf(stderr, "usage: aisle embed split --input FILE [--format lightgcn|tsv|csv]\n"
                    "         --holdout FRAC --seed S --train-out FILE --test-out FILE\n"
                    "Writes the same train/validation carve that train and eval make with\n"
                    "--holdout, as LightGCN-format files (for replaying the train part).\n");
}

int embed_cli_split(int argc, char **argv) {
    enum { OPT_TRAIN_OUT = 300, OPT_TEST_OUT };
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},           {"format", required_argument, 0, OPT_FORMAT},
        {"holdout", required_argument, 0, OPT_HOLDOUT}, {"seed", required_argument, 0, OPT_SEED},
        {"train-out", required_argument, 0, OPT_TRAIN_OUT},
        {"test-out", required_argument, 0, OPT_TEST_OUT},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0},
    };
    const char *input = NULL, *fmtname = NULL, *train_out = NULL, *test_out = NULL;
    double frac = 0;
    uint32_t seed = 1;
    embed_format fmt;
    embed_idmap users, items;
    embed_data train = {0}, test = {0};
    char err[CLI_ERR_LEN] = "";
    int c, rc;
    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i': input = optarg; break;
        case OPT_FORMAT: fmtname = optarg; break;
        case OPT_HOLDOUT: bad = parse_double(optarg, &frac) || frac <= 0 || frac >= 1; break;
        case OPT_SEED: bad = parse_u32(optarg, &seed); break;
        case OPT_TRAIN_OUT: train_out = optarg; break;
        case OPT_TEST_OUT: test_out = optarg; break;
        case 'h': split_usage(); return 0;
        default: split_usage(); return 2;
        }
        if (bad) {
            fprintf(stderr, "embed split: bad value: %s\n", optarg);
            return 2;
        }
    }
    if (!input || !train_out || !test_out || frac <= 0 || optind != argc ||
        pick_format(fmtname, input, &fmt) != AISLE_OK) {
        split_usage();
        return 2;
    }
    embed_idmap_init(&users);
    embed_idmap_init(&items);
    rc = load_split(input, fmt, frac, seed, &users, &items, &train, &test, err, sizeof(err));
    if (rc == AISLE_OK) rc = write_lightgcn(train_out, &train, &users, &items, err, sizeof(err));
    if (rc == AISLE_OK) rc = write_lightgcn(test_out, &test, &users, &items, err, sizeof(err));
    if (rc != AISLE_OK) fprintf(stderr, "embed split: %s\n", err);
    embed_data_free(&train);
    embed_data_free(&test);
    embed_idmap_free(&users);
    embed_idmap_free(&items);
    return rc == AISLE_OK ? 0 : 1;
}

/* ---- blend ------------------------------------------------------------- */

static void blend_usage(void) {
    fprintf(stderr, "usage: aisle embed blend --model DIR --with DIR [--weight W] [--neighbors M]\n"
                    "         [--serve-dim D] --out ROOT [--quiet]\n"
                    "Publishes one snapshot scoring as model + W x with (both trained on the same\n"
                    "items), its merged neighbour lists cut to M per item (default 1000) and,\n"
                    "with --serve-dim, its vectors compressed to rank D.\n");
}

/* meta of the blend: its own keys, then each part's lines prefixed. */
static char *blend_meta(const embed_snapshot *s, const char *a_meta, const char *b_meta,
                        double w, uint32_t serve_dim) {
    buf b = {0};
    buf_printf(&b, "format=%d\nmethod=blend\nblend.weight=%g\ndim=%u\nneighbor_entries=%llu\n"
               "serve_dim=%u\n", EMBED_SNAPSHOT_FORMAT, w, s->model.dim,
               (unsigned long long)s->model.nb_off[s->model.n_items], serve_dim);
    const char *parts[2] = {a_meta, b_meta}, *prefix[2] = {"a.", "b."};
    for (int k = 0; k < 2; k++)
        for (const char *p = parts[k]; p && *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            buf_printf(&b, "%s%.*s\n", prefix[k], (int)len, p);
            p += len + (e ? 1 : 0);
        }
    return buf_take(&b);
}

int embed_cli_blend(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},         {"with", required_argument, 0, 'w'},
        {"weight", required_argument, 0, 'W'},        {"neighbors", required_argument, 0, 'n'},
        {"serve-dim", required_argument, 0, 'd'},     {"out", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *a_path = NULL, *b_path = NULL, *out = NULL;
    double w = 1.0;
    uint32_t keep = 1000, serve_dim = 0;
    int quiet = 0, c, bad = 0;
    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a_path = optarg; break;
        case 'w': b_path = optarg; break;
        case 'W': bad |= parse_double(optarg, &w) != AISLE_OK; break;
        case 'n': bad |= parse_u32(optarg, &keep) != AISLE_OK; break;
        case 'd': bad |= parse_u32(optarg, &serve_dim) != AISLE_OK; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': blend_usage(); return 0;
        default: blend_usage(); return 2;
        }
    }
    if (bad || !a_path || !b_path || !out || optind != argc) {
        blend_usage();
        return 2;
    }
    embed_snapshot s;
    char err[CLI_ERR_LEN] = "", snapdir[PATH_MAX], *b_meta = NULL, *meta = NULL;
    int rc = eval_load_one(a_path, quiet, &s, err, sizeof(err));
    if (rc != AISLE_OK) {
        fprintf(stderr, "embed blend: %s\n", err);
        return 1;
    }
    rc = blend_into(&s, b_path, w, keep, quiet, &b_meta, err, sizeof(err));
    if (rc == AISLE_OK && serve_dim > 0 && (rc = embed_model_compress(&s.model, serve_dim)) != AISLE_OK)
        status_fmt(err, sizeof(err), "compression failed: %s", status_str(rc));
    if (rc == AISLE_OK && !(meta = blend_meta(&s, s.meta, b_meta, w, serve_dim)))
        rc = status_fail(AISLE_ENOMEM, err, sizeof(err), "out of memory");
    if (rc == AISLE_OK) {
        embed_snapshot_parts parts = {&s.model, &s.items, s.item_creator, &s.creators, meta};
        rc = embed_snapshot_write(out, &parts, snapdir, sizeof(snapdir), err, sizeof(err));
    }
    if (rc == AISLE_OK) printf("snapshot %s\n", snapdir);
    else fprintf(stderr, "embed blend: %s\n", err);
    free(meta);
    free(b_meta);
    embed_snapshot_free(&s);
    return rc == AISLE_OK ? 0 : 1;
}

int embed_cli_main(int argc, char **argv) { return embed_cli_main_probed(argc, argv, NULL); }

int embed_cli_main_probed(int argc, char **argv, embed_serve_probe probe) {
    if (argc >= 1 && strcmp(argv[0], "split") == 0) return embed_cli_split(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "train") == 0) return embed_cli_train_probed(argc, argv, probe);
    if (argc >= 1 && strcmp(argv[0], "eval") == 0) return embed_cli_eval(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "blend") == 0) return embed_cli_blend(argc, argv);
    fprintf(stderr, "usage: aisle embed train|eval|split|blend [options]   (--help for each)\n");
    return 2;
}
