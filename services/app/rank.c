/* rank: `aisle rank train|check` (see rank.h), over services/experiment/ltr_train.h and
 * ranker/ltr/model.h. */
#include "services/app/rank.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ranker/ltr/model.h"
#include "services/experiment/ltr_train.h"
#include "services/app/cli.h"
#include "services/app/report.h"
#include "services/base/log.h"
#include "services/base/status.h"

static const char rank_usage[] =
    "Usage: aisle rank train (--kafka-brokers LIST | --exposures FILE --signals FILE)\n"
    "                        --out MODEL [FLAGS]\n"
    "       aisle rank check MODEL\n"
    "\n"
    "train: LambdaMART (XGBoost rank:ndcg), one group per served page, on the features\n"
    "the ranker logged with each exposed item; labels from the outcome attributed to the\n"
    "item (0 none, 1 click, 2 add-to-cart, 3 purchase). The last day is held out and\n"
    "NDCG@10 of the model and of the logged (current) ranking on it are printed. The\n"
    "model is written as a checked file that 'serve' can hot-load.\n"
    "check: loads MODEL as serve would and says whether it is usable.\n"
    "\n"
    "  --kafka-brokers LIST  read aisle.exposures and aisle.signals to their end\n"
    "  --exposures FILE      length-delimited Exposure messages instead\n"
    "  --signals FILE        length-delimited Signal messages instead\n"
    "  --out MODEL           the model file to write\n"
    "  --rounds N            boosting rounds (default 200)\n"
    "  --max-depth D         tree depth (default 6)\n"
    "  --eta E               learning rate (default 0.1)\n"
    "  --window-h H          attribution window in hours (default 24)\n"
    "  --holdout-s S         hold out the last S seconds of pages instead of the last day\n"
    "                        (a simulation that runs for minutes)\n";

static int rank_add_exposure(void *d, const Aisle__V1__Exposure *e) {
    return ltr_data_add_exposure(d, e);
}

static int rank_add_signal(void *d, const Aisle__V1__Signal *s) {
    return ltr_data_add_signal(d, s);
}

static int rank_check(const char *path) {
    char err[512];
    ltr_model *m;
    if (ltr_model_load(path, &m, err, sizeof(err)) != AISLE_OK) {
        fprintf(stderr, "aisle rank check: %s\n", err);
        return 1;
    }
    printf("%s: a ranker model over %u features\n", path, ltr_model_features(m));
    ltr_model_release(m);
    return 0;
}

/* Parses train's flags into the arguments; CLI_EXIT_HELP, 0 or 2. */
static int rank_flags(int argc, char **argv, const char **in[3], const char **out,
                      ltr_train_config *cfg, double *hours) {
    static const struct option opts[] = {
        {"kafka-brokers", required_argument, 0, 'k'}, {"exposures", required_argument, 0, 'e'},
        {"signals", required_argument, 0, 's'},       {"out", required_argument, 0, 'o'},
        {"rounds", required_argument, 0, 'r'},        {"max-depth", required_argument, 0, 'd'},
        {"eta", required_argument, 0, 'n'},           {"window-h", required_argument, 0, 'w'},
        {"holdout-s", required_argument, 0, 'H'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    long long v;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': *in[0] = optarg; break;
        case 'e': *in[1] = optarg; break;
        case 's': *in[2] = optarg; break;
        case 'o': *out = optarg; break;
        case 'r':
            if (cli_int("rank train", "rounds", optarg, 1, 10000, &v)) return CLI_EXIT_USAGE;
            cfg->rounds = (int)v;
            break;
        case 'd':
            if (cli_int("rank train", "max-depth", optarg, 1, 20, &v)) return CLI_EXIT_USAGE;
            cfg->max_depth = (int)v;
            break;
        case 'n':
            if (cli_double("rank train", "eta", optarg, 1e-4, 1, &cfg->eta)) return CLI_EXIT_USAGE;
            break;
        case 'w':
            if (cli_double("rank train", "window-h", optarg, 0.001, 24 * 365, hours))
                return CLI_EXIT_USAGE;
            break;
        case 'H':
            if (cli_int("rank train", "holdout-s", optarg, 1, 86400 * 365, &v))
                return CLI_EXIT_USAGE;
            cfg->holdout_ms = v * 1000;
            break;
        case 'h': fputs(rank_usage, stdout); return CLI_EXIT_HELP;
        default: return cli_usage_error("rank train", "unknown or incomplete flag");
        }
    }
    if (optind != argc)
        return cli_usage_error("rank train", "unexpected argument '%s'", argv[optind]);
    if (!*out) return cli_usage_error("rank train", "--out is required");
    if (!*in[0] == !(*in[1] || *in[2]) || (!*in[0] && !(*in[1] && *in[2])))
        return cli_usage_error("rank train",
                               "give --kafka-brokers, or both --exposures and --signals");
    return 0;
}

static int rank_train(int argc, char **argv) {
    const char *brokers = NULL, *exposures = NULL, *signals = NULL, *out = NULL;
    const char **in[3] = {&brokers, &exposures, &signals};
    ltr_train_config cfg = {0};
    double hours = 24;
    int rc = rank_flags(argc, argv, in, &out, &cfg, &hours);
    if (rc) return rc == CLI_EXIT_HELP ? 0 : rc;
    cfg.window_ms = (int64_t)(hours * 3600 * 1000);
    char err[512];
    ltr_data *d;
    ltr_model *m = NULL;
    ltr_train_result res;
    if (ltr_data_new(cfg.window_ms, &d) != AISLE_OK) return 1;
    report_sink sink = {d, rank_add_exposure, rank_add_signal};
    rc = report_read(brokers, exposures, signals, &sink) == 0 ? AISLE_OK : AISLE_EIO;
    if (rc == AISLE_OK) rc = ltr_train(d, &cfg, &m, &res, err, sizeof(err));
    if (rc == AISLE_OK) rc = ltr_model_save(m, out, err, sizeof(err));
    if (rc == AISLE_OK) {
        printf("trained on %zu pages (%zu items), held out the last %s: %zu pages (%zu items)\n",
               res.train_pages, res.train_rows, cfg.holdout_ms ? "stretch" : "day",
               res.test_pages, res.test_rows);
        if (res.skipped) printf("skipped %zu pages without the ranker's features\n", res.skipped);
        printf("NDCG@10 on the held-out pages: model %.4f, current ranking %.4f (%+.1f%%)\n",
               res.ndcg_model, res.ndcg_current,
               100 * (res.ndcg_model / res.ndcg_current - 1));
        printf("wrote %s (%u features)\n", out, res.n_features);
    } else if (rc != AISLE_EIO) {
        fprintf(stderr, "aisle rank train: %s\n", err);
    }
    ltr_model_release(m);
    ltr_data_free(d);
    return rc == AISLE_OK ? 0 : 1;
}

int rank_main(int argc, char **argv) {
    optind = 1;
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return rank_train(argc - 1, argv + 1);
    if (argc == 3 && strcmp(argv[1], "check") == 0) return rank_check(argv[2]);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return fputs(rank_usage, stdout), 0;
    return cli_usage_error("rank", "the commands are 'rank train' and 'rank check MODEL'");
}
