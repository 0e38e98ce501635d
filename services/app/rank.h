/* rank: the `aisle rank` command: `rank train` learns a ranker model from
 * exposures and outcomes; `rank check` tells whether a model file loads. */
#ifndef AISLE_APP_RANK_H
#define AISLE_APP_RANK_H

/* argv[0] is "rank". Returns the exit status: 0; 1 when training or the
 * model failed; 2 for bad flags. */
int rank_main(int argc, char **argv);

#endif
