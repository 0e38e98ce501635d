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

int embed_cli_train(int argc, char **argv);
int embed_cli_eval(int argc, char **argv);
int embed_cli_split(int argc, char **argv);
/* aisle embed blend --model DIR --with DIR [--weight W] --out ROOT: one
 * snapshot scoring as the sum of two (embed/blend.h). */
int embed_cli_blend(int argc, char **argv);

/* "train", "eval", "split" or "blend" followed by its arguments (argv[0]
 * is the subcommand). */
int embed_cli_main(int argc, char **argv);

#endif
