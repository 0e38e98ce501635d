/* Command-line entry points of the offline embedding job, called by the
 * aisle binary's dispatcher with argv[0] being the subcommand name:
 *
 *   aisle embed train --input FILE [--format lightgcn|tsv|csv]
 *                     [--catalog FILE] --out DIR [--method M] [--tune]
 *                     [--holdout FRAC --seed S] [method parameters] [--quiet]
 *   aisle embed eval  --train FILE (--test FILE | --holdout FRAC --seed S)
 *                     --model DIR [--format F] [--k 10,20,50] [--quiet]
 *   aisle embed split --input FILE --holdout FRAC --seed S --train-out F
 *                     --test-out F
 *   aisle embed blend --model DIR --with DIR [--weight W] --out ROOT
 *
 * All return a process exit status: 0 on success, 2 on usage errors, 1 on
 * anything else, with the reason on stderr. */
#ifndef AISLE_EMBED_CLI_H
#define AISLE_EMBED_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "embed/data.h"
#include "embed/model.h"

/* What a serving probe is given: the model as it will be served (after
 * --serve-dim), its external item ids by row, and a validation carve whose
 * users' profiles are their train rows and whose answers are their valid
 * rows; ivf_threshold is the catalog size at which the server's index
 * becomes IVF (its --ivf-threshold). */
typedef struct embed_serve_carve {
    const embed_model *model;
    const char *const *item_ids;
    const embed_data *train, *valid;
    size_t ivf_threshold;
    int quiet;
} embed_serve_carve;

/* What it chose: the IVF lists the server will build for this catalog and
 * the probe count to search them with (both 0 when the index stays exact),
 * with the validation Recall@20 of that count and of every list probed, over
 * `users` validation users. */
typedef struct embed_serve_choice {
    uint32_t lists, nprobe, users;
    double recall, recall_all;
} embed_serve_choice;

/* Serving probes run the server's own search and ranker, which embed/ may
 * not include (includes point down only): the aisle binary, which links
 * both, passes one in. Returns AISLE_OK or an AISLE_* code with err set. */
typedef int (*embed_serve_probe)(const embed_serve_carve *carve, embed_serve_choice *out,
                                 char *err, size_t errlen);

/* With a probe and a validation carve (--holdout, or --tune's), train also
 * records the serving setting the probe chooses in meta.txt (serve_nprobe,
 * serve_lists and their figures); with probe NULL, or no carve, it records
 * none and the server keeps its default. */
int embed_cli_train_probed(int argc, char **argv, embed_serve_probe probe);
int embed_cli_train(int argc, char **argv);
int embed_cli_eval(int argc, char **argv);
int embed_cli_split(int argc, char **argv);
/* aisle embed blend --model DIR --with DIR [--weight W] --out ROOT: one
 * snapshot scoring as the sum of two (embed/blend.h). */
int embed_cli_blend(int argc, char **argv);

/* "train", "eval", "split" or "blend" followed by its arguments (argv[0]
 * is the subcommand). */
int embed_cli_main(int argc, char **argv);
/* The same, with train's serving probe. */
int embed_cli_main_probed(int argc, char **argv, embed_serve_probe probe);

#endif
