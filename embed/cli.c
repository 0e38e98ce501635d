/* The `aisle embed train|eval` commands (see cli.h): argument parsing,
 * wiring of data -> train -> snapshot and snapshot -> eval, and the timing
 * and memory summary. All real work lives in the other modules. */
#include "embed/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "embed/data.h"
#include "embed/err.h"
#include "embed/eval.h"
#include "embed/snapshot.h"
#include "embed/train.h"

#define CLI_META_LEN 8192

static long peak_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return (end == s || *end != '\0') ? -1 : 0;
}

static int parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The format named by --format, or guessed from the file name. */
static int pick_format(const char *name, const char *path, embed_format *fmt) {
    if (name) return embed_format_parse(name, fmt);
    size_t n = strlen(path);
    *fmt = (n > 4 && strcmp(path + n - 4, ".csv") == 0) ? EMBED_FMT_CSV : EMBED_FMT_LIGHTGCN;
    return 0;
}

/* Loads a file and optionally carves the holdout split. With frac > 0,
 * *main gets the train part and *valid the held-out part; otherwise *main
 * gets the file and *valid stays empty. */
static int load_split(const char *path, embed_format fmt, double frac, uint64_t seed,
                      embed_idmap *users, embed_idmap *items, embed_data *main_part,
                      embed_data *valid, char *err) {
    embed_data all;
    memset(valid, 0, sizeof(*valid));
    if (embed_data_load(path, fmt, users, items, &all, err) != 0) return -1;
    if (frac <= 0) {
        *main_part = all;
        return 0;
    }
    int rc = embed_data_holdout(&all, frac, seed, main_part, valid);
    if (rc != 0) embed_err_set(err, "%s: holdout split failed (out of memory)", path);
    embed_data_free(&all);
    return rc;
}

static void train_usage(void) {
    fprintf(stderr,
            "usage: aisle embed train --input FILE [--format lightgcn|tsv|csv] [--catalog FILE]\n"
            "         --out DIR [--holdout FRAC --seed S] [--dim K] [--alpha A]\n"
            "         [--neighbors M] [--sharpen G] [--beta B] [--norm-user X] [--norm-item X]\n"
            "         [--lp-left X] [--lp-right X] [--lin-user X] [--lin-item X]\n"
            "         [--svd-iters N] [--quiet]\n");
}

enum {
    OPT_FORMAT = 256, OPT_CATALOG, OPT_HOLDOUT, OPT_SEED, OPT_DIM, OPT_ALPHA, OPT_NEIGHBORS,
    OPT_SHARPEN, OPT_BETA, OPT_NORM_USER, OPT_NORM_ITEM, OPT_LP_LEFT, OPT_LP_RIGHT,
    OPT_LIN_USER, OPT_LIN_ITEM, OPT_SVD_ITERS, OPT_QUIET, OPT_K,
};

int embed_cli_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},         {"out", required_argument, 0, 'o'},
        {"format", required_argument, 0, OPT_FORMAT}, {"catalog", required_argument, 0, OPT_CATALOG},
        {"holdout", required_argument, 0, OPT_HOLDOUT}, {"seed", required_argument, 0, OPT_SEED},
        {"dim", required_argument, 0, OPT_DIM},       {"alpha", required_argument, 0, OPT_ALPHA},
        {"neighbors", required_argument, 0, OPT_NEIGHBORS},
        {"sharpen", required_argument, 0, OPT_SHARPEN}, {"beta", required_argument, 0, OPT_BETA},
        {"norm-user", required_argument, 0, OPT_NORM_USER},
        {"norm-item", required_argument, 0, OPT_NORM_ITEM},
        {"lp-left", required_argument, 0, OPT_LP_LEFT}, {"lp-right", required_argument, 0, OPT_LP_RIGHT},
        {"lin-user", required_argument, 0, OPT_LIN_USER},
        {"lin-item", required_argument, 0, OPT_LIN_ITEM},
        {"svd-iters", required_argument, 0, OPT_SVD_ITERS}, {"quiet", no_argument, 0, OPT_QUIET},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    const char *input = NULL, *out = NULL, *fmtname = NULL, *catalog = NULL;
    double frac = 0;
    uint32_t seed = 1;
    int quiet = 0, c, rc = 1;
    embed_train_params p;
    embed_train_defaults(&p);
    optind = 0; /* full getopt reset: the CLI may run more than once */
    opterr = 1;
    while ((c = getopt_long(argc, argv, "i:o:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i': input = optarg; break;
        case 'o': out = optarg; break;
        case OPT_FORMAT: fmtname = optarg; break;
        case OPT_CATALOG: catalog = optarg; break;
        case OPT_HOLDOUT: bad = parse_double(optarg, &frac) || frac <= 0 || frac >= 1; break;
        case OPT_SEED: bad = parse_u32(optarg, &seed); break;
        case OPT_DIM: bad = parse_u32(optarg, &p.dim) || p.dim > 4096; break;
        case OPT_NEIGHBORS: bad = parse_u32(optarg, &p.neighbors) || p.neighbors > 100000; break;
        case OPT_SVD_ITERS: bad = parse_u32(optarg, &p.svd_iters) || p.svd_iters > 50; break;
        case OPT_ALPHA: bad = parse_double(optarg, &p.alpha); break;
        case OPT_SHARPEN: bad = parse_double(optarg, &p.sharpen); break;
        case OPT_BETA: bad = parse_double(optarg, &p.beta); break;
        case OPT_NORM_USER: bad = parse_double(optarg, &p.norm_user); break;
        case OPT_NORM_ITEM: bad = parse_double(optarg, &p.norm_item); break;
        case OPT_LP_LEFT: bad = parse_double(optarg, &p.lp_left); break;
        case OPT_LP_RIGHT: bad = parse_double(optarg, &p.lp_right); break;
        case OPT_LIN_USER: bad = parse_double(optarg, &p.lin_user); break;
        case OPT_LIN_ITEM: bad = parse_double(optarg, &p.lin_item); break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': train_usage(); return 0;
        default: train_usage(); return 2;
        }
        if (bad) {
            fprintf(stderr, "embed train: bad value: %s\n", optarg);
            return 2;
        }
    }
    embed_format fmt;
    if (!input || !out || optind != argc || pick_format(fmtname, input, &fmt) != 0) {
        train_usage();
        return 2;
    }

    char err[EMBED_ERR_LEN], snapdir[PATH_MAX];
    char *meta = malloc(CLI_META_LEN);
    embed_idmap users, items, creators;
    embed_data train = {0}, valid = {0};
    embed_model model = {0};
    uint32_t *item_creator = NULL;
    embed_idmap_init(&users);
    embed_idmap_init(&items);
    embed_idmap_init(&creators);
    double t0 = embed_now();
    if (!meta) goto done;
    if (load_split(input, fmt, frac, seed, &users, &items, &train, &valid, err) != 0) {
        fprintf(stderr, "embed train: %s\n", err);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "read %s: %u users, %u items, %llu interactions (%.1f s)\n", input,
                train.n_users, train.n_items, (unsigned long long)(train.off[train.n_users] + (valid.off ? valid.off[valid.n_users] : 0)),
                embed_now() - t0);
    if (catalog && embed_catalog_load(catalog, &items, &creators, &item_creator, err) != 0) {
        fprintf(stderr, "embed train: %s\n", err);
        goto done;
    }
    double t1 = embed_now();
    if (embed_train(&train, &p, &model, quiet) != 0) {
        fprintf(stderr, "embed train: training failed (out of memory or a LAPACK error)\n");
        goto done;
    }
    double train_s = embed_now() - t1;
    int len = snprintf(meta, CLI_META_LEN,
                       "format=%d\nmethod=gfcf-sharpened\ninput=%s\nusers=%u\nitems=%u\n"
                       "interactions=%llu\ndim=%u\nneighbor_entries=%llu\ncreators=%u\n"
                       "param.dim=%u\nparam.alpha=%g\nparam.sharpen=%g\nparam.neighbors=%u\n"
                       "param.beta=%g\nparam.norm_user=%g\nparam.norm_item=%g\n"
                       "param.lp_left=%g\nparam.lp_right=%g\nparam.lin_user=%g\n"
                       "param.lin_item=%g\nparam.svd_iters=%u\nparam.seed=%llu\n"
                       "train_seconds=%.1f\n",
                       EMBED_SNAPSHOT_FORMAT, input, train.n_users, train.n_items,
                       (unsigned long long)train.off[train.n_users], model.dim,
                       (unsigned long long)model.nb_off[model.n_items], creators.count, p.dim,
                       p.alpha, p.sharpen, p.neighbors, p.beta, p.norm_user, p.norm_item,
                       p.lp_left, p.lp_right, p.lin_user, p.lin_item, p.svd_iters,
                       (unsigned long long)p.seed, train_s);
    if (frac > 0) {
        int ks[] = {10, 20, 50};
        embed_eval_result res;
        embed_progress prog = {.quiet = quiet};
        if (embed_eval_run(&model, &train, &valid, ks, 3, &res, &prog) != 0) {
            fprintf(stderr, "embed train: validation failed (out of memory)\n");
            goto done;
        }
        if (!quiet) {
            printf("validation (holdout %g, seed %u):\n", frac, seed);
            embed_eval_print(&res, stdout);
        }
        len += snprintf(meta + len, CLI_META_LEN - (size_t)len, "holdout=%g\nholdout_seed=%u\n", frac, seed);
        for (int q = 0; q < res.nk; q++)
            len += snprintf(meta + len, CLI_META_LEN - (size_t)len,
                            "valid.recall@%d=%.4f\nvalid.ndcg@%d=%.4f\n", res.k[q], res.recall[q],
                            res.k[q], res.ndcg[q]);
    }
    snprintf(meta + len, CLI_META_LEN - (size_t)len, "peak_rss_kb=%ld\n", peak_rss_kb());
    embed_snapshot_parts parts = {&model, &items, item_creator, &creators, meta};
    if (embed_snapshot_write(out, &parts, snapdir, sizeof(snapdir), err) != 0) {
        fprintf(stderr, "embed train: %s\n", err);
        goto done;
    }
    printf("snapshot %s\n", snapdir);
    printf("train time %.1f s (total %.1f s), peak RSS %.1f MiB\n", train_s, embed_now() - t0,
           (double)peak_rss_kb() / 1024.0);
    rc = 0;
done:
    free(meta);
    free(item_creator);
    embed_model_free(&model);
    embed_data_free(&train);
    embed_data_free(&valid);
    embed_idmap_free(&users);
    embed_idmap_free(&items);
    embed_idmap_free(&creators);
    return rc;
}

static void eval_usage(void) {
    fprintf(stderr, "usage: aisle embed eval --train FILE (--test FILE | --holdout FRAC --seed S)\n"
                    "         --model DIR [--format lightgcn|tsv|csv] [--k 10,20,50] [--quiet]\n");
}

int embed_cli_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"train", required_argument, 0, 't'},         {"test", required_argument, 0, 'T'},
        {"model", required_argument, 0, 'm'},         {"format", required_argument, 0, OPT_FORMAT},
        {"holdout", required_argument, 0, OPT_HOLDOUT}, {"seed", required_argument, 0, OPT_SEED},
        {"k", required_argument, 0, OPT_K},           {"quiet", no_argument, 0, OPT_QUIET},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    const char *trainp = NULL, *testp = NULL, *modelp = NULL, *fmtname = NULL, *kspec = "10,20,50";
    double frac = 0;
    uint32_t seed = 1;
    int quiet = 0, c, rc = 1, ks[EMBED_EVAL_MAXK], nk;
    optind = 0; /* full getopt reset: the CLI may run more than once */
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 't': trainp = optarg; break;
        case 'T': testp = optarg; break;
        case 'm': modelp = optarg; break;
        case OPT_FORMAT: fmtname = optarg; break;
        case OPT_HOLDOUT: bad = parse_double(optarg, &frac) || frac <= 0 || frac >= 1; break;
        case OPT_SEED: bad = parse_u32(optarg, &seed); break;
        case OPT_K: kspec = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': eval_usage(); return 0;
        default: eval_usage(); return 2;
        }
        if (bad) {
            fprintf(stderr, "embed eval: bad value: %s\n", optarg);
            return 2;
        }
    }
    embed_format fmt;
    nk = embed_eval_parse_ks(kspec, ks);
    if (!trainp || !modelp || (!testp) == (frac <= 0) || optind != argc || nk < 0 ||
        pick_format(fmtname, trainp, &fmt) != 0) {
        eval_usage();
        return 2;
    }

    char err[EMBED_ERR_LEN];
    embed_snapshot snap;
    embed_idmap users;
    embed_data train = {0}, test = {0};
    embed_idmap_init(&users);
    /* A snapshot directory has a MANIFEST; anything else is a root. */
    char manifest[PATH_MAX];
    struct stat st;
    int n = snprintf(manifest, sizeof(manifest), "%s/MANIFEST", modelp);
    int lrc = n > 0 && n < (int)sizeof(manifest) && stat(manifest, &st) == 0 ? embed_snapshot_load(modelp, &snap, err)
                                       : embed_snapshot_load_newest(modelp, &snap, quiet, err);
    if (lrc != 0) {
        fprintf(stderr, "embed eval: %s\n", err);
        embed_idmap_free(&users);
        return 1;
    }
    if (!quiet) fprintf(stderr, "model %s: %u items, dim %u\n", snap.dir, snap.model.n_items, snap.model.dim);
    /* Files are read through the snapshot's item table so rows agree with
     * the model; items it does not know get rows past its end. */
    if (load_split(trainp, fmt, frac, seed, &users, &snap.items, &train, &test, err) != 0) {
        fprintf(stderr, "embed eval: %s\n", err);
        goto done;
    }
    if (testp) {
        embed_format tfmt;
        if (pick_format(fmtname, testp, &tfmt) != 0 ||
            embed_data_load(testp, tfmt, &users, &snap.items, &test, err) != 0) {
            fprintf(stderr, "embed eval: %s\n", err);
            goto done;
        }
    }
    embed_eval_result res;
    embed_progress prog = {.quiet = quiet};
    if (embed_eval_run(&snap.model, &train, &test, ks, nk, &res, &prog) != 0) {
        fprintf(stderr, "embed eval: out of memory\n");
        goto done;
    }
    embed_eval_print(&res, stdout);
    rc = 0;
done:
    embed_data_free(&train);
    embed_data_free(&test);
    embed_idmap_free(&users);
    embed_snapshot_free(&snap);
    return rc;
}

/* Writes d in the LightGCN format ("user item item ..."), one line per user
 * with items, through the id tables. Returns 0, or -1 with err set. */
static int write_lightgcn(const char *path, const embed_data *d, const embed_idmap *users,
                          const embed_idmap *items, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) {
        embed_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (uint32_t u = 0; u < d->n_users; u++) {
        if (d->off[u] == d->off[u + 1]) continue;
        fputs(users->names[u], f);
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++) fprintf(f, " %s", items->names[d->item[e]]);
        fputc('\n', f);
    }
    if (ferror(f) | fclose(f)) {
        embed_err_set(err, "%s: write failed", path);
        return -1;
    }
    return 0;
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
    char err[EMBED_ERR_LEN];
    int c, rc = 1;
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
        pick_format(fmtname, input, &fmt) != 0) {
        split_usage();
        return 2;
    }
    embed_idmap_init(&users);
    embed_idmap_init(&items);
    if (load_split(input, fmt, frac, seed, &users, &items, &train, &test, err) != 0 ||
        write_lightgcn(train_out, &train, &users, &items, err) != 0 ||
        write_lightgcn(test_out, &test, &users, &items, err) != 0)
        fprintf(stderr, "embed split: %s\n", err);
    else
        rc = 0;
    embed_data_free(&train);
    embed_data_free(&test);
    embed_idmap_free(&users);
    embed_idmap_free(&items);
    return rc;
}

int embed_cli_main(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "split") == 0) return embed_cli_split(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "train") == 0) return embed_cli_train(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "eval") == 0) return embed_cli_eval(argc, argv);
    fprintf(stderr, "usage: aisle embed train|eval|split [options]   (--help for each)\n");
    return 2;
}
